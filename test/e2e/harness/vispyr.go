package harness

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// Options change how Vispyr is started.
type Options struct {
	// Config, when set, is written to a file passed with --config.
	Config string
	// Args are extra command-line flags, after the harness's own.
	Args []string
	// Env are extra KEY=VALUE environment variables.
	Env []string
	// ReadyTimeout bounds the wait for /-/ready (default 60s: WAL replay).
	ReadyTimeout time.Duration
	// Command is the vispyr command to run: "serve" (default) or "gateway".
	Command string
	// Wrapper, when set, runs vispyr under another program (e.g. strace):
	// the command becomes Wrapper[0] Wrapper[1:]... vispyr args...
	Wrapper []string
	// DataDir, when set, is the data dir (default: a fresh temporary one).
	DataDir string
	// Live, when set, waits only until the process serves (/-/healthy), not
	// until it is ready: for starts where readiness is meant to stay false.
	Live bool
	// TLS, when set, is the client side of a Vispyr started with a `tls:`
	// section: URLs are https and HTTPClient uses it. Readiness is then
	// polled on the (plain) health port.
	TLS *tls.Config
}

// Vispyr is a running `vispyr serve` child process.
type Vispyr struct {
	t    testing.TB
	bin  string
	opts Options

	DataDir string
	logDir  string

	// Listen addresses (host:port), one free loopback port each.
	MetricsAddr         string // Prometheus API and remote write (:9090)
	OTLPGRPCAddr        string // :4317
	OTLPHTTPAddr        string // :4318
	AdminAddr           string // /metrics, /-/ready (:12345)
	HealthAddr          string // /health/status (:13133)
	TempoAddr           string // :3200
	LokiAddr            string // :3100
	FaroAddr            string // :12347
	PyroscopeAddr       string // :4040
	PyroscopeIngestAddr string // :9999
	UIAddr              string

	proc *Process
}

// Start runs `vispyr serve` on a fresh data dir and waits until it is ready.
// It is killed when the test ends.
func Start(t testing.TB, opts Options) *Vispyr {
	t.Helper()
	v := &Vispyr{t: t, bin: VispyrBinary(t), opts: opts, DataDir: opts.DataDir, logDir: t.TempDir()}
	if v.DataDir == "" {
		v.DataDir = t.TempDir()
	}
	if v.opts.ReadyTimeout == 0 {
		v.opts.ReadyTimeout = 60 * time.Second
	}
	t.Cleanup(func() {
		if v.proc != nil {
			v.proc.Kill9()
		}
		if t.Failed() {
			t.Logf("--- vispyr log (%s) ---\n%s", v.logDir, v.Tail(32<<10))
		}
	})
	// A port picked free can be taken by another test before vispyr binds
	// it; pick new ports and retry rather than fail on that race.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		v.pickPorts()
		if err = v.start(); err == nil {
			return v
		}
		if !strings.Contains(v.Tail(4<<10), "address already in use") {
			break
		}
	}
	t.Fatalf("start vispyr: %v", err)
	return nil
}

func (v *Vispyr) pickPorts() {
	// FreePort closes its probe listener, so the kernel may hand the same
	// port out twice within one pick; eleven listeners make that likely
	// enough to fail runs, so a port already taken here is drawn again.
	taken := map[int]bool{}
	addr := func() string {
		p := testpeer.FreePort(v.t)
		for taken[p] {
			p = testpeer.FreePort(v.t)
		}
		taken[p] = true
		return "127.0.0.1:" + strconv.Itoa(p)
	}
	v.MetricsAddr, v.OTLPGRPCAddr, v.OTLPHTTPAddr = addr(), addr(), addr()
	v.AdminAddr, v.HealthAddr, v.TempoAddr = addr(), addr(), addr()
	v.PyroscopeAddr, v.PyroscopeIngestAddr, v.UIAddr = addr(), addr(), addr()
	v.LokiAddr, v.FaroAddr = addr(), addr()
}

// Args returns the command line the harness passes to `vispyr`.
func (v *Vispyr) Args() []string {
	cmd := v.opts.Command
	if cmd == "" {
		cmd = "serve"
	}
	args := []string{cmd,
		"--data-dir=" + v.DataDir,
		"--metrics.listen-address=" + v.MetricsAddr,
		"--otlp.grpc-address=" + v.OTLPGRPCAddr,
		"--otlp.http-address=" + v.OTLPHTTPAddr,
		"--admin.listen-address=" + v.AdminAddr,
		"--health.listen-address=" + v.HealthAddr,
		"--tempo.listen-address=" + v.TempoAddr,
		"--loki.listen-address=" + v.LokiAddr,
		"--faro.listen-address=" + v.FaroAddr,
		"--pyroscope.listen-address=" + v.PyroscopeAddr,
		"--pyroscope.ingest-address=" + v.PyroscopeIngestAddr,
		"--ui.listen-address=" + v.UIAddr,
	}
	if v.opts.Config != "" {
		args = append(args, "--config="+filepath.Join(v.logDir, "vispyr.yaml"))
	}
	return append(args, v.opts.Args...)
}

func (v *Vispyr) start() error {
	if v.opts.Config != "" {
		if err := os.WriteFile(filepath.Join(v.logDir, "vispyr.yaml"), []byte(v.opts.Config), 0o644); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
	}
	bin, args := v.bin, v.Args()
	if len(v.opts.Wrapper) > 0 {
		bin, args = v.opts.Wrapper[0], append(append(v.opts.Wrapper[1:len(v.opts.Wrapper):len(v.opts.Wrapper)], v.bin), args...)
	}
	p, err := startProcess(v.logDir, "vispyr", bin, args, v.opts.Env)
	if err != nil {
		return err
	}
	v.proc = p
	return v.waitReady()
}

// waitReady polls the admin /-/ready until 200, failing fast if the process
// exits first.
func (v *Vispyr) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), v.opts.ReadyTimeout)
	defer cancel()
	go func() {
		select {
		case <-v.proc.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	readyURL := v.AdminURL("/-/ready")
	if v.opts.Live {
		readyURL = v.AdminURL("/-/healthy")
	}
	if v.opts.TLS != nil {
		readyURL = "http://" + v.HealthAddr + "/health/status"
	}
	err := testpeer.PollHTTP(ctx, readyURL, v.opts.ReadyTimeout)
	if exited, werr := v.proc.Exited(); exited {
		return fmt.Errorf("vispyr exited before ready (%v); last log lines:\n%s", werr, v.Tail(4<<10))
	}
	if err != nil {
		return fmt.Errorf("not ready after %v: %w", v.opts.ReadyTimeout, err)
	}
	return nil
}

// Kill9 kills the process with SIGKILL, as a crash or OOM kill would.
func (v *Vispyr) Kill9() { v.proc.Kill9() }

// Stop asks for a graceful shutdown (SIGTERM) and returns the exit error.
func (v *Vispyr) Stop() error { return v.proc.Stop(30 * time.Second) }

// Restart starts vispyr again on the same data dir and ports (killing it
// first if it still runs) and waits until it is ready. Should another
// process have taken one of the ports meanwhile, it moves to new ones.
func (v *Vispyr) Restart() {
	v.t.Helper()
	v.proc.Kill9()
	err := v.start()
	if err != nil && strings.Contains(v.Tail(4<<10), "address already in use") {
		v.pickPorts()
		err = v.start()
	}
	if err != nil {
		v.t.Fatalf("restart vispyr: %v", err)
	}
}

// RestartLive restarts like Restart but waits only until the process serves
// (/-/healthy), for a start where it is meant not to be ready.
func (v *Vispyr) RestartLive() {
	v.t.Helper()
	live := v.opts.Live
	v.opts.Live = true
	defer func() { v.opts.Live = live }()
	v.Restart()
}

// Alive reports whether the process is still running.
func (v *Vispyr) Alive() bool {
	exited, _ := v.proc.Exited()
	return !exited
}

// Pid returns the process id.
func (v *Vispyr) Pid() int { return v.proc.Pid() }

// Process returns the current child process.
func (v *Vispyr) Process() *Process { return v.proc }

// Tail returns the last n bytes of vispyr's log (all runs).
func (v *Vispyr) Tail(n int) string {
	if v.proc == nil {
		return ""
	}
	return v.proc.Tail(n)
}

// MetricsURL is the Prometheus API / remote-write base URL plus path.
func (v *Vispyr) MetricsURL(path string) string { return v.scheme() + v.MetricsAddr + path }

// AdminURL is the admin server's URL plus path.
func (v *Vispyr) AdminURL(path string) string { return v.scheme() + v.AdminAddr + path }

// OTLPHTTPURL is the OTLP/HTTP receiver's URL plus path.
func (v *Vispyr) OTLPHTTPURL(path string) string { return v.scheme() + v.OTLPHTTPAddr + path }

// URL is addr's base URL (http:// or https://) plus path.
func (v *Vispyr) URL(addr, path string) string { return v.scheme() + addr + path }

func (v *Vispyr) scheme() string {
	if v.opts.TLS != nil {
		return "https://"
	}
	return "http://"
}

// HTTPClient speaks to every listener (with Options.TLS when set).
func (v *Vispyr) HTTPClient() *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if v.opts.TLS != nil {
		c.Transport = &http.Transport{TLSClientConfig: v.opts.TLS.Clone(), ForceAttemptHTTP2: true}
	}
	return c
}

// CheckServing fails the test unless vispyr is alive and answers /-/ready.
func (v *Vispyr) CheckServing(t testing.TB) {
	t.Helper()
	if !v.Alive() {
		_, err := v.proc.Exited()
		t.Fatalf("vispyr exited: %v", err)
	}
	resp, err := v.HTTPClient().Get(v.AdminURL("/-/ready"))
	if err != nil {
		t.Fatalf("vispyr not serving: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("vispyr /-/ready = %d", resp.StatusCode)
	}
}

// HostPort splits addr and returns its port.
func HostPort(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
