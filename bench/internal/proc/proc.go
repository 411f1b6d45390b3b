// Package proc runs and measures benchmark targets as child processes: start,
// readiness, CPU and memory from /proc, disk usage, free ports.
package proc

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// Server is a target process started by the benchmark.
type Server struct {
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// Start runs bin with args, its output in logPath.
func Start(logPath, bin string, args ...string) (*Server, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{cmd: cmd, done: make(chan error, 1), log: logFile}
	go func() { s.done <- cmd.Wait(); logFile.Close() }()
	return s, nil
}

func (s *Server) Pid() int { return s.cmd.Process.Pid }

// WaitReady polls url until 200, failing early if the process exits.
func (s *Server) WaitReady(url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("exited before ready: %v (log %s)", err, s.log.Name())
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v (log %s)", timeout, s.log.Name())
}

// Kill ends the process at once (SIGKILL), without waiting.
func (s *Server) Kill() { _ = s.cmd.Process.Kill() }

// Stop sends sig and waits up to a minute for a clean exit.
func (s *Server) Stop(sig syscall.Signal) error {
	s.cmd.Process.Signal(sig)
	select {
	case err := <-s.done:
		return err
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		return fmt.Errorf("did not exit within a minute of %v", sig)
	}
}

// Memory reads VmRSS and VmHWM (peak RSS) of pid in bytes.
func Memory(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// CPUTime returns the user+system CPU time pid has used.
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime, stime are 14, 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

// DiskUsage is the space files under dir take on disk (allocated blocks, like
// du), split by group(rel): the name a file's path relative to dir counts under.
func DiskUsage(dir string, group func(rel string) string) (total int64, parts map[string]int64) {
	parts = map[string]int64{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		n := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n = st.Blocks * 512
		}
		rel, _ := filepath.Rel(dir, path)
		parts[group(rel)] += n
		total += n
		return nil
	})
	return total, parts
}

// FreeAddr returns a loopback address with a port nobody listens on and
// that no earlier call handed out.
func FreeAddr() (string, error) { return testpeer.FreeAddr() }

// BuildVispyr builds ./cmd/vispyr of the module the benchmark runs in into work/bin.
func BuildVispyr(work string) (string, error) {
	out := filepath.Join(work, "bin", "vispyr")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/vispyr")
	if root, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build vispyr: %w\n%s", err, b)
	}
	return out, nil
}

// Save writes what url answers (a profile, a /metrics page) to path,
// creating its directory; waiting at most timeout.
func Save(url, path string, timeout time.Duration) error {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", url, err)
	}
	return f.Close()
}

// CPUProfile saves a CPU profile of the next d (at least a second) from a
// Vispyr admin URL, whose /debug/pprof serves net/http/pprof.
func CPUProfile(admin, path string, d time.Duration) error {
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, max(int(d.Seconds()), 1))
	if err := Save(url, path, d+time.Minute); err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	return nil
}
