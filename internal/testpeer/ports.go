package testpeer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Ports are drawn at random from below the kernel's ephemeral range, and
// each is claimed with a lock file held for the life of the test process.
//
// The ephemeral range is where bind(":0") and every outgoing connection take
// their ports, so a port drawn there can be taken by anyone while the server
// meant for it is down: a peer restarted on the same address (as the outage
// tests do, with the address written in another process's configuration)
// then fails to bind, or the test moves it elsewhere and its senders lose it.
// Below that range only another test's draw could take it, and the lock file
// stops that across the packages `go test ./...` runs at once.
const (
	portsFrom = 10000 // the lowest port drawn; below are well-known services
	minRange  = 2000  // fewer ports than this below the ephemeral range: draw inside it
)

// handedOut holds every port freePort returned in this process, and the
// lock files that claim them, held open: closing one releases its lock.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
	locks []*os.File
}{ports: map[int]bool{}}

func freePort() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	lo, hi := portsFrom, ephemeralLow()
	if hi-lo < minRange {
		return kernelPort()
	}
	dir := filepath.Join(os.TempDir(), "vispyr-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("make port lock dir: %w", err)
	}
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if handedOut.ports[port] {
			continue
		}
		lock, err := claim(dir, port)
		if err != nil {
			return 0, err
		}
		if lock == nil {
			continue // another test process holds it
		}
		if !bindable(port) {
			lock.Close()
			continue
		}
		handedOut.ports[port] = true
		handedOut.locks = append(handedOut.locks, lock)
		return port, nil
	}
	return 0, errors.New("no free port below the ephemeral range after 1000 draws")
}

// claim takes port's lock file without waiting: nil when another process
// holds it.
func claim(dir string, port int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open port lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock port %d: %w", port, err)
	}
	return f, nil
}

// bindable reports whether nothing listens on port now (a service outside
// the tests, or one started before the lock files).
func bindable(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	return l.Close() == nil
}

// ephemeralLow is the lowest port of the kernel's ephemeral range (0 when
// unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// kernelPort asks the kernel for a port, never handing one out twice in this
// process: the kernel may give a just-released port again, and two listeners
// of one server under test would then collide.
func kernelPort() (int, error) {
	for range 1000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("release free port: %w", err)
		}
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port that was not handed out before")
}
