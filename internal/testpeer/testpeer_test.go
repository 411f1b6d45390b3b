package testpeer

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLookupFindsExecutableOnPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "vispyr-fake-peer")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	got, ok := Lookup("vispyr-fake-peer")
	if !ok || got != exe {
		t.Fatalf("Lookup = %q, %v; want %q, true", got, ok, exe)
	}
	if _, ok := Lookup("vispyr-no-such-peer-xyz"); ok {
		t.Fatal("Lookup found a binary that does not exist")
	}
}

func TestLookupFindsGoInstalledBinary(t *testing.T) {
	dirs := goBinDirs()
	if len(dirs) == 0 {
		t.Skip("no GOPATH")
	}
	// Put a fake peer into the first go bin dir and take it off PATH.
	exe := filepath.Join(dirs[0], "vispyr-fake-goinstalled")
	if err := os.MkdirAll(dirs[0], 0o755); err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Skip(err)
	}
	defer os.Remove(exe)
	t.Setenv("PATH", t.TempDir())
	if got, ok := Lookup("vispyr-fake-goinstalled"); !ok || got != exe {
		t.Fatalf("Lookup = %q, %v; want %q from the go bin dir", got, ok, exe)
	}
}

// fakeTB records Skipf/Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

func TestBinaryMissingSkipsLocallyAndFailsInCI(t *testing.T) {
	t.Setenv("CI", "")
	tb := &fakeTB{TB: t}
	Binary(tb, "telemetrygen-does-not-exist")
	if !tb.skipped || tb.failed {
		t.Fatalf("outside CI: skipped=%v failed=%v, want skip", tb.skipped, tb.failed)
	}
	t.Setenv("CI", "true")
	tb = &fakeTB{TB: t}
	Binary(tb, "prometheus-does-not-exist")
	if !tb.failed {
		t.Fatal("in CI a missing peer must fail the test")
	}
}

func TestBinaryMessageSaysHowToInstall(t *testing.T) {
	t.Setenv("CI", "true")
	// Any known peer that is not installed here will do.
	for name, hint := range installHints {
		if _, ok := Lookup(name); ok {
			continue
		}
		tb := &fakeTB{TB: t}
		Binary(tb, name)
		if !tb.failed || !strings.Contains(tb.msg, hint) {
			t.Fatalf("missing %s: failed=%v message %q, want a failure saying %q", name, tb.failed, tb.msg, hint)
		}
		return
	}
	t.Skip("every known peer is installed")
}

func TestFreePortIsBindable(t *testing.T) {
	p := FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("FreePort %d not bindable: %v", p, err)
	}
	l.Close()
}

func TestWaitHTTPWaitsFor200(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	WaitHTTP(t, srv.URL, 5*time.Second)
	if calls.Load() < 3 {
		t.Fatalf("returned after %d calls, before the server was ready", calls.Load())
	}
}

func TestPollHTTPTimesOutWithLastStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	err := PollHTTP(context.Background(), srv.URL, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v, want one naming status 503", err)
	}
}

// A port handed out lies below the ephemeral range, where no bind(":0") or
// outgoing connection takes it, and its lock refuses every other claim, as
// it does another test process's.
func TestFreePortClaimed(t *testing.T) {
	if ephemeralLow()-portsFrom < minRange {
		t.Skip("no room below the ephemeral range; ports come from the kernel")
	}
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if p < portsFrom || p >= ephemeralLow() {
			t.Fatalf("port %d outside [%d, %d)", p, portsFrom, ephemeralLow())
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		lock, err := claim(filepath.Join(os.TempDir(), "vispyr-test-ports"), p)
		if err != nil {
			t.Fatal(err)
		}
		if lock != nil {
			lock.Close()
			t.Fatalf("port %d: a second claim took its lock", p)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d handed out but not bindable: %v", p, err)
		}
		l.Close()
	}
}
