package head

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// samplesOf reads every sample timestamp of series name.
func samplesOf(t *testing.T, h *Head, name string) []int64 {
	t.Helper()
	ref, ok := h.index.Lookup(labels.FromStrings("__name__", name))
	if !ok {
		return nil
	}
	var ts []int64
	for _, m := range h.samples.Chunks(ref, math.MinInt64, math.MaxInt64, nil) {
		chk, err := h.samples.Chunk(m)
		if err != nil {
			t.Fatal(err)
		}
		it := chk.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts = append(ts, it.AtT())
		}
	}
	return ts
}

// TestTruncateWALKeepsWhatTheHeadNeeds writes a WAL of many segments,
// checkpoints it twice with restarts between, and finds after each restart
// every sample from the checkpoint's mint on, the series removed before the
// checkpoint gone, and the segments below the checkpoint removed.
func TestTruncateWALKeepsWhatTheHeadNeeds(t *testing.T) {
	dir := t.TempDir()
	open := func() *Head {
		h, err := New(Options{ChunkDir: filepath.Join(dir, "chunks_head"), WALDir: filepath.Join(dir, "wal"),
			WALSegmentSize: 4 << 10, ChunkRange: 3600 * 1000, OnWriteError: func(err error) { t.Error(err) }})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := open()
	ctx := context.Background()
	const rounds = 3000
	appendRounds(t, h, 0, 200, false, "gone")
	appendRounds(t, h, 0, rounds, false, "a", "b")
	for i, mint := range []int64{1000 * 1000, 2000 * 1000} {
		if i == 0 {
			removeSeries(h, "gone")
		}
		if err := h.TruncateWAL(ctx, mint); err != nil {
			t.Fatal(err)
		}
		h.Close()
		h = open()
		for _, name := range []string{"a", "b"} {
			ts := samplesOf(t, h, name)
			if len(ts) == 0 || ts[len(ts)-1] != (rounds-1)*1000 {
				t.Fatalf("checkpoint %d: series %s ends at %v after the restart", i, name, ts[len(ts)-1:])
			}
			if kept := int64(len(ts)); ts[0] > mint || ts[0] == 0 || kept < rounds-mint/1000 {
				t.Fatalf("checkpoint %d: series %s keeps %d samples from %d; want all from %d on, and not the first", i, name, kept, ts[0], mint)
			}
			for j := 1; j < len(ts); j++ {
				if ts[j] != ts[j-1]+1000 {
					t.Fatalf("checkpoint %d: series %s jumps from %d to %d", i, name, ts[j-1], ts[j])
				}
			}
		}
		if got := samplesOf(t, h, "gone"); got != nil {
			t.Fatalf("checkpoint %d: the removed series came back with %d samples", i, len(got))
		}
		cp, n, err := lastCheckpoint(filepath.Join(dir, "wal"))
		if err != nil || cp == "" {
			t.Fatalf("no checkpoint (%v)", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "wal", strconv.Itoa(100000000 + n - 1)[1:])); !os.IsNotExist(err) {
			t.Fatalf("checkpoint %d: segment %d, below it, is still there (%v)", i, n-1, err)
		}
	}
	h.Close()
}

// appendRounds appends to each series named a sample at second r for r in
// [from, to), ten rounds a commit, and with exemplars an exemplar with
// each.
func appendRounds(t *testing.T, h *Head, from, to int, exemplars bool, names ...string) {
	t.Helper()
	for r := from; r < to; r += 10 {
		app := h.Appender(context.Background())
		for rr := r; rr < r+10; rr++ {
			for _, name := range names {
				l := labels.FromStrings("__name__", name)
				ref, err := app.Append(0, l, int64(rr)*1000, float64(rr))
				if err != nil {
					t.Fatal(err)
				}
				if !exemplars {
					continue
				}
				if _, err := app.AppendExemplar(ref, l, traceExemplar(strconv.Itoa(rr), int64(rr)*1000, float64(rr))); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// removeSeries removes the series named from the index, as the head's
// truncation would.
func removeSeries(h *Head, name string) {
	ref, _ := h.index.Lookup(labels.FromStrings("__name__", name))
	h.index.Delete(func(r uint32) bool { return r == ref })
}
