package traces

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// The head's byte estimate is what max_head_bytes limits and what
// vispyr_traces_head_bytes shows: it must track the heap the head really holds, or
// the budget never pushes back before the process runs out of memory.
func TestHeadBytesTrackRealHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~100 MB")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now()
	for _, tc := range []struct {
		name            string
		batches, traces int
		spansPer        int
	}{
		{"100 traces of 10 spans per request", 150, 100, 10},
		{"1000 single-span traces per request", 100, 1000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHead()
			before := heapInUse()
			for range tc.batches {
				rows, err := spanrow.FromTraces(genBatch(rng, tc.traces, tc.spansPer, now), nil)
				if err != nil {
					t.Fatal(err)
				}
				h.add("t", rows, traceOrder(rows))
			}
			real := heapInUse() - before
			_, est := h.size()
			runtime.KeepAlive(h)
			ratio := float64(est) / float64(real)
			t.Logf("%d spans: estimate %.1f MB, heap %.1f MB (%.0f B/span real), ratio %.2f",
				tc.batches*tc.traces*tc.spansPer, float64(est)/1e6, float64(real)/1e6,
				float64(real)/float64(tc.batches*tc.traces*tc.spansPer), ratio)
			if ratio < 0.85 || ratio > 1.15 {
				t.Errorf("head estimate %d bytes is %.2f× the %d bytes it really holds", est, ratio, real)
			}
		})
	}
}

// Once a head is written to blocks its memory is returned: a block in the store
// costs its bloom filter, meta and Parquet footer, plus its indexes while the index
// cache holds them (bounded apart), not its spans or the buffers it was encoded in.
func TestFlushedBlocksDoNotHoldMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200k spans")
	}
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Config{})
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	const blocks, batches = 5, 40
	start := heapInUse()
	var first, firstCached, headBytes int64 // after the first block, once encoders and pools exist
	for i := range blocks {
		for range batches {
			if err := s.ConsumeTraces(ctx, genBatch(rng, 100, 10, time.Now())); err != nil {
				t.Fatal(err)
			}
		}
		headBytes = s.memBytes.Load()
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first, firstCached = heapInUse(), s.indexes.Used()
		}
	}
	end := heapInUse()
	cached := s.indexes.Used()
	perBlock := (end - first - (cached - firstCached)) / (blocks - 1)
	runtime.KeepAlive(s)
	t.Logf("each block of %d spans holds %d KB once written besides %d KB of cached indexes; %.1f MB in all, a head was %.1f MB",
		batches*1000, perBlock>>10, (cached-firstCached)/(blocks-1)>>10, float64(end-start)/1e6, float64(headBytes)/1e6)
	if end-start > headBytes/2 {
		t.Errorf("%d blocks written from heads of %d bytes hold %d bytes of heap", blocks, headBytes, end-start)
	}
	if perBlock > 256<<10 {
		t.Errorf("each written block of %d spans holds %d KB of heap", batches*1000, perBlock>>10)
	}
}
