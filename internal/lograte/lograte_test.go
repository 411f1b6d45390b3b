package lograte

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A flood of one message yields one line per interval, and the next line
// written counts what was left out; other messages are not held back.
func TestFloodIsCountedNotWritten(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewTextHandler(&buf, nil), time.Hour)
	logger := slog.New(h).With("component", "remote-write")
	for i := range 10_000 {
		logger.Error("Out of order sample from remote write", "i", i)
	}
	logger.Warn("Out of order sample from remote write")
	logger.Error("storing remote write request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3 (one per message and level):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "i=0") || !strings.Contains(lines[0], "component=remote-write") {
		t.Errorf("first line: %s", lines[0])
	}

	// Once the interval has passed, the next line says how many were dropped.
	hd := h.(*handler)
	hd.s.every = 0
	logger.Error("Out of order sample from remote write", "i", "last")
	last := buf.String()[strings.LastIndex(strings.TrimSpace(buf.String()), "\n")+1:]
	if !strings.Contains(last, "suppressed=9999") {
		t.Errorf("line after the interval does not count the suppressed ones: %s", last)
	}
}
