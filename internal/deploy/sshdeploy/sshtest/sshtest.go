// Package sshtest gives tests a loopback-only host to deploy to over SSH: a
// network namespace joined to this one by a veth pair, running Debian's sshd.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// Sandbox is a host for the tests: a network namespace joined to this one by a
// veth pair, running sshd on port 22 of its own address. It shares this
// machine's filesystem, so deploys into it use a root prefix.
type Sandbox struct {
	NS         string
	HostIP     string // the namespace's address, where sshd listens
	PeerIP     string // this side of the veth pair
	Subnet     string
	Identity   string // client private key file
	KnownHosts string // holds the host's key for HostIP
}

// sandboxes counts the sandboxes this process made, to give each its own subnet.
var sandboxes atomic.Int64

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// New creates the namespace and starts sshd in it; everything goes when the
// test ends. It skips where namespaces cannot be made (not root, no ip).
func New(t *testing.T) *Sandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the SSH deploy test creates a network namespace (ip netns add): run it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the SSH deploy test needs iproute2's ip to create a network namespace")
	}
	sshd := testpeer.Binary(t, "sshd")
	k := int(sandboxes.Add(1))
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, k)
	s := &Sandbox{NS: "vsp-deploy-" + id}
	// A /30 of its own: sandboxes of one process (parallel tests) differ by
	// the counter, those of different processes by the pid.
	n := (os.Getpid()*16 + k) % 16384
	third, fourth := n/64, n%64*4
	s.Subnet = fmt.Sprintf("10.231.%d.%d/30", third, fourth)
	s.PeerIP, s.HostIP = fmt.Sprintf("10.231.%d.%d", third, fourth+1), fmt.Sprintf("10.231.%d.%d", third, fourth+2)
	va, vb := "vspa"+id, "vspb"+id
	if out, err := exec.Command("ip", "netns", "add", s.NS).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		// Every process still in the namespace was started by this test (sshd,
		// or Vispyr through a deploy): stop them before the namespace goes.
		if out, err := exec.Command("ip", "netns", "pids", s.NS).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_ = exec.Command("ip", "link", "del", va).Run()
		_ = exec.Command("ip", "netns", "del", s.NS).Run()
	})
	run(t, "ip", "link", "add", va, "type", "veth", "peer", "name", vb)
	run(t, "ip", "link", "set", vb, "netns", s.NS)
	run(t, "ip", "addr", "add", s.PeerIP+"/30", "dev", va)
	run(t, "ip", "link", "set", va, "up")
	run(t, "ip", "-n", s.NS, "addr", "add", s.HostIP+"/30", "dev", vb)
	run(t, "ip", "-n", s.NS, "link", "set", vb, "up")
	run(t, "ip", "-n", s.NS, "link", "set", "lo", "up")

	dir := t.TempDir()
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	s.Identity = filepath.Join(dir, "id_ed25519")
	must(t, os.WriteFile(s.Identity, pem.EncodeToMemory(block), 0o600))
	sshPub, _ := ssh.NewPublicKey(pub)
	must(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(sshPub), 0o600))
	hostPubText, err := os.ReadFile(hostKey + ".pub")
	must(t, err)
	hostPub, _, _, _, err := ssh.ParseAuthorizedKey(hostPubText)
	must(t, err)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	must(t, os.WriteFile(s.KnownHosts, []byte(knownhosts.Line([]string{s.HostIP}, hostPub)+"\n"), 0o600))
	cfg := fmt.Sprintf(`Port 22
ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile %s
`, s.HostIP, hostKey, filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	cfgFile := filepath.Join(dir, "sshd_config")
	must(t, os.WriteFile(cfgFile, []byte(cfg), 0o600))
	// sshd refuses to start without its privilege separation directory.
	must(t, os.MkdirAll("/run/sshd", 0o755))
	cmd := exec.Command("ip", "netns", "exec", s.NS, sshd, "-D", "-e", "-f", cfgFile)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	// Session processes of connections still open hold the log pipe.
	cmd.WaitDelay = time.Second
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	signer, err := ssh.NewSignerFromKey(priv)
	must(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := ssh.Dial("tcp", s.HostIP+":22", &ssh.ClientConfig{User: "root",
			Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(hostPub), Timeout: 2 * time.Second})
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd in the namespace did not answer: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
