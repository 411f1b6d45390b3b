// Package testpeer finds and talks to the real peer programs (prometheus,
// telemetrygen, minio, chromium, …) that Vispyr's tests run against.
//
// A missing peer skips the test on a developer machine but fails it in CI
// (CI=true), so that CI can never go green by silently testing nothing.
package testpeer

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// installHints says how to get each known peer; .ci/install.d installs them in CI.
var installHints = map[string]string{
	"prometheus":               "apt-get install -y prometheus",
	"promtool":                 "apt-get install -y prometheus (promtool ships with it)",
	"prometheus-node-exporter": "apt-get install -y prometheus-node-exporter",
	"victoria-metrics":         "apt-get install -y victoria-metrics",
	"victoria-logs":            ".ci/install.d/45-logs.sh (go install of VictoriaLogs' app/victoria-logs)",
	"jaeger":                   ".ci/install.d/35-jaeger.sh (cmd/jaeger of the Jaeger module v1.75.0, built as a tool of a scratch module)",
	"telemetrygen":             "go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0",
	"minio":                    "go install github.com/minio/minio@latest",
	"chromium":                 "apt-get install -y chromium",
	"node":                     "apt-get install -y nodejs",
	"nginx":                    "apt-get install -y nginx",
	"strace":                   "apt-get install -y strace",
	"sshd":                     ".ci/install.d/70-deploy.sh (apt-get install -y openssh-server)",
	"pebble":                   ".ci/install.d/70-deploy.sh",
	"pebble-challtestsrv":      ".ci/install.d/70-deploy.sh",
	"helm":                     ".ci/install.d/75-helm.sh (go install helm.sh/helm/v3/cmd/helm@v3.21.4)",
}

// Binary returns the absolute path of the peer program name, looked up on
// PATH and in $(go env GOPATH)/bin. When it is missing the test fails if the
// environment variable CI is "true" and is skipped otherwise, with a message
// saying how to install it.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if p, ok := Lookup(name); ok {
		return p
	}
	hint := installHints[name]
	if hint == "" {
		hint = "install it and put it on PATH"
	}
	msg := "peer binary %q not found on PATH or in $(go env GOPATH)/bin; install it with: %s (or run .ci/install.d/*.sh as root)"
	if os.Getenv("CI") == "true" {
		t.Fatalf(msg, name, hint)
	}
	t.Skipf(msg, name, hint)
	return ""
}

// Lookup is Binary without the testing side effects.
func Lookup(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, true
		}
		return p, true
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

var (
	goBinOnce sync.Once
	goBin     []string
)

// goBinDirs lists where `go install` puts binaries: $GOBIN, then each
// GOPATH entry's bin. It asks the go command once, falling back to ~/go/bin.
func goBinDirs() []string {
	goBinOnce.Do(func() {
		if gobin := os.Getenv("GOBIN"); gobin != "" {
			goBin = append(goBin, gobin)
		}
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
				gopath = strings.TrimSpace(string(out))
			}
		}
		if gopath == "" {
			if home, err := os.UserHomeDir(); err == nil {
				gopath = filepath.Join(home, "go")
			}
		}
		for _, p := range filepath.SplitList(gopath) {
			if p != "" {
				goBin = append(goBin, filepath.Join(p, "bin"))
			}
		}
	})
	return goBin
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no other test process will be handed (see freePort). A process outside
// the tests may still take it before the caller binds it; tests that start
// peers accept that small race because peers cannot be handed a listener.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	return port
}

// FreeAddr is FreePort as a 127.0.0.1:port address, for callers without a
// testing.TB (the benchmarks).
func FreeAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// WaitHTTP polls url with GET until it answers 200 or timeout passes, then
// fails the test naming the last status or error seen.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	if err := PollHTTP(context.Background(), url, timeout); err != nil {
		t.Fatalf("wait for %s: %v", url, err)
	}
}

// PollHTTP is WaitHTTP returning an error instead of failing a test.
func PollHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = &statusError{code: resp.StatusCode}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return last
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string {
	return "last status " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
}

// CPUTime is the CPU time (user and system) this process has used so far:
// benchmarks report CPU per unit of work beside the wall time, which a
// loaded machine stretches but CPU time much less.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
