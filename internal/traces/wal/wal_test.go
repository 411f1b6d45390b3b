package wal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func openReplay(t *testing.T, dir string, logger *slog.Logger) (*WAL, [][]byte) {
	t.Helper()
	w, err := Open(dir, 1<<20, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	if err := w.Replay(func(p []byte) error { got = append(got, bytes.Clone(p)); return nil }); err != nil {
		t.Fatal(err)
	}
	return w, got
}

func TestConcurrentAppendsSurviveReopenWithoutClose(t *testing.T) {
	dir := t.TempDir()
	w, _ := openReplay(t, dir, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if err := w.Append(context.Background(), []byte(fmt.Sprintf("g%d-r%d-%s", g, i, strings.Repeat("x", 2000)))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	// Do not Close: a crash leaves the log as it is. A second WAL on the same dir
	// must see every acknowledged record.
	w2, got := openReplay(t, dir, slog.New(slog.DiscardHandler))
	defer w2.Close()
	defer w.Close()
	if len(got) != 1600 {
		t.Fatalf("replayed %d records, want 1600", len(got))
	}
	seen := map[string]bool{}
	for _, p := range got {
		seen[string(p[:bytes.IndexByte(p, 'x')])] = true
	}
	if len(seen) != 1600 {
		t.Fatalf("replayed %d distinct records, want 1600", len(seen))
	}
	segs, _ := w2.Segments()
	if len(segs) < 3 {
		t.Fatalf("3.2MB of records in 1MB segments made only %d segments", len(segs))
	}
}

func TestTornTailIsDroppedAndLogged(t *testing.T) {
	dir := t.TempDir()
	w, _ := openReplay(t, dir, slog.New(slog.DiscardHandler))
	for i := 0; i < 3; i++ {
		if err := w.Append(context.Background(), []byte(fmt.Sprintf("record-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	segs, _ := w.Segments()
	last := filepath.Join(dir, fmt.Sprintf("%08d", segs[len(segs)-1]))
	// a crash in the middle of writing a 4th record leaves half of it
	half := AppendRecord(nil, []byte("record-3-never-acknowledged"))[:10]
	f, _ := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(half)
	f.Close()

	var logs bytes.Buffer
	w2, got := openReplay(t, dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if len(got) != 3 || string(got[2]) != "record-2" {
		t.Fatalf("replayed %q", got)
	}
	if !strings.Contains(logs.String(), "damaged record") {
		t.Fatalf("torn record was not logged: %s", logs.String())
	}
	// the log keeps working after the repair
	if err := w2.Append(context.Background(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	w2.Close()
	_, got = openReplay(t, dir, slog.New(slog.DiscardHandler))
	if len(got) != 4 || string(got[3]) != "after" {
		t.Fatalf("after repair replayed %q", got)
	}
}

func TestTruncateBeforeRotation(t *testing.T) {
	dir := t.TempDir()
	w, _ := openReplay(t, dir, slog.New(slog.DiscardHandler))
	w.Append(context.Background(), []byte("old"))
	seg, err := w.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	w.Append(context.Background(), []byte("new"))
	if err := w.TruncateBefore(seg); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, got := openReplay(t, dir, slog.New(slog.DiscardHandler))
	if len(got) != 1 || string(got[0]) != "new" {
		t.Fatalf("after truncation replayed %q, want only \"new\"", got)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, []byte("hello")))
	f.Add(AppendRecord(AppendRecord(nil, []byte("a")), []byte{}))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			p, n, err := DecodeRecord(b)
			if err != nil {
				return
			}
			if n != len(p)+headerSize || n > len(b) {
				t.Fatalf("bad size %d for payload %d of input %d", n, len(p), len(b))
			}
			if again := AppendRecord(nil, p); !bytes.Equal(again, b[:n]) {
				t.Fatalf("re-encode differs")
			}
			b = b[n:]
		}
	})
}
