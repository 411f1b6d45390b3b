package wal

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func replayAll(t *testing.T, dir string) map[string]int {
	t.Helper()
	got := map[string]int{}
	if err := Replay(dir, discard(), func(seq int, rec []byte) error {
		got[string(rec)] = seq
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestConcurrentAppendsAndCut appends from many goroutines while cutting, then
// checks every acknowledged record replays exactly once, in a segment consistent
// with the cut it raced.
func TestConcurrentAppendsAndCut(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, discard())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]int{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				rec := fmt.Sprintf("g%d-%d", g, i)
				seq, err := w.Append([]byte(rec))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[rec] = seq
				mu.Unlock()
			}
		}()
	}
	cutSeq, err := w.Cut()
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// No Close: replay must work on what is on disk right now.
	got := replayAll(t, dir)
	if len(got) != len(acked) {
		t.Fatalf("replayed %d records, acknowledged %d", len(got), len(acked))
	}
	for rec, seq := range acked {
		if got[rec] != seq {
			t.Errorf("%s acknowledged in segment %d, replayed from %d", rec, seq, got[rec])
		}
	}
	if err := w.Truncate(cutSeq); err != nil {
		t.Fatal(err)
	}
	for rec, seq := range replayAll(t, dir) {
		if seq < cutSeq {
			t.Errorf("%s still replayed from truncated segment %d", rec, seq)
		}
	}
	w.Close()
	if _, err := w.Append([]byte("late")); err != ErrClosed {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
}

// TestCorruptRecordTruncated flips a byte in the last record: replay keeps the
// records before it and truncates the segment so new appends follow good data.
func TestCorruptRecordTruncated(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, discard())
	if err != nil {
		t.Fatal(err)
	}
	w.Append([]byte("first"))
	w.Append([]byte("second"))
	w.Close()
	path := filepath.Join(dir, "00000001.wal")
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 0xff
	os.WriteFile(path, data, 0o644)
	got := replayAll(t, dir)
	if _, ok := got["first"]; !ok || len(got) != 1 {
		t.Fatalf("replayed %v, want only first", got)
	}
	if fi, _ := os.Stat(path); fi.Size() != int64(headerSize+len("first")) {
		t.Errorf("segment not truncated to the good prefix: %d bytes", fi.Size())
	}
}
