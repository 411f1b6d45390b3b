package headchunks

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb"
)

// TestCountIsTheHeads appends the same samples to a buffer and to
// Prometheus's head and wants Count to add up to the head's
// prometheus_tsdb_head_chunks, and to the chunks Chunks lists, after
// appends (cuts, slots outgrown), Compact and Truncate.
func TestCountIsTheHeads(t *testing.T) {
	const series = 24
	for _, chunkRange := range []int64{testRange, 60000} {
		t.Run(strconv.FormatInt(chunkRange, 10), func(t *testing.T) {
			b := newBuffer(t, chunkRange)
			h, reg := newHeadWithMetrics(t, chunkRange)
			samples := shapes(rand.New(rand.NewPCG(2, uint64(chunkRange))), series, 700)
			appendBoth(t, b, h, samples)
			sameCount(t, "appended", b, reg, series)
			b.Compact()
			sameCount(t, "compacted", b, reg, series)
			mint := (h.MinTime() + h.MaxTime()) / 2
			if err := h.Truncate(mint); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Truncate(mint); err != nil {
				t.Fatal(err)
			}
			sameCount(t, "truncated", b, reg, series)
		})
	}
}

func newHeadWithMetrics(t *testing.T, chunkRange int64) (*tsdb.Head, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkRange = chunkRange
	opts.ChunkDirRoot = t.TempDir()
	h, err := tsdb.NewHead(reg, nil, nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, reg
}

// sameCount fails unless Count agrees with the head's chunk gauge and with
// the chunks and open chunks Chunks lists.
func sameCount(t *testing.T, when string, b *Buffer, reg *prometheus.Registry, series int) {
	t.Helper()
	open, closed := b.Count()
	listed, listedOpen := listChunks(b, series)
	if want := headChunks(t, reg); open+closed != want || open+closed != listed || open != listedOpen {
		t.Errorf("%s: %d open and %d closed chunks; the head has %d, Chunks lists %d (%d open)",
			when, open, closed, want, listed, listedOpen)
	}
	if closed == 0 {
		t.Errorf("%s: no closed chunk counted; the test wants some", when)
	}
}

// listChunks counts the chunks Chunks lists for series refs 1..series.
func listChunks(b *Buffer, series int) (all, open int) {
	for ref := uint32(1); ref <= uint32(series); ref++ {
		for _, m := range b.Chunks(ref, math.MinInt64, math.MaxInt64, nil) {
			all++
			if uint64(m.Ref)&openFlag != 0 {
				open++
			}
		}
	}
	return all, open
}

func headChunks(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "prometheus_tsdb_head_chunks" {
			return int(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	t.Fatal("the head has no prometheus_tsdb_head_chunks")
	return 0
}

// TestCountWhileAppending counts while series append, cut and outgrow
// their slots, Compact moves them and Truncate drops the oldest: an open
// chunk is always one slot, whatever is under way. The race detector and the count once all is done
// have the last word.
func TestCountWhileAppending(t *testing.T) {
	const series, samples = 64, 2000
	b := newBuffer(t, testRange)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for ts := int64(0); ts < samples*15000; ts += 15000 {
				for ref := uint32(w + 1); ref <= series; ref += 4 {
					if err := b.Append(ref, ts, float64(ts)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		hasFile := false
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			switch {
			case i%8 == 0:
				b.Compact()
			case i%8 == 4 && hasFile:
				if _, err := b.Truncate(3600 * 1000); err != nil {
					t.Error(err)
				}
			}
			open, closed := b.Count()
			if open < 0 || open > series || closed < 0 {
				t.Errorf("while appending: %d open, %d closed chunks of %d series", open, closed, series)
			}
			// Truncation waits for the first chunk file: the chunk files'
			// Truncate, finding none, may reset their sequence while the
			// first is being cut, and the next cut then fails.
			hasFile = hasFile || (closed > 0 && b.disk.IsQueueEmpty())
		}
	}()
	wg.Wait()
	close(stop)
	<-stopped
	open, closed := b.Count()
	if all, listedOpen := listChunks(b, series); open+closed != all || open != listedOpen || open != series || closed == 0 {
		t.Errorf("%d open and %d closed chunks, Chunks lists %d (%d open) of %d series", open, closed, all, listedOpen, series)
	}
}
