package metrics

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// A long start-up keeps saying it is still replaying, and stops saying so
// once the store is open.
func TestLogOpeningReportsProgressUntilStopped(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	lines := func() int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(buf.String(), "metrics store still replaying")
	}
	stop := logOpening(logger, time.Now(), 5*time.Millisecond)
	for deadline := time.Now().Add(10 * time.Second); lines() < 2; {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("no progress lines in 10 s: %q", buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	n := lines()
	time.Sleep(50 * time.Millisecond)
	if got := lines(); got != n {
		t.Errorf("%d progress lines after the store opened", got-n)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
