package traces

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// Traces whose spans are spread over several blocks (and partly sent twice) come out
// of a compaction whole and without duplicates, from one block that answers a
// lookup of every one of them.
func TestCompactionMergesTracesAcrossBlocks(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Config{})
	defer s.Close()
	const traces, cuts = 300, 4
	base := time.Now()
	want := map[[16]byte]map[pcommon.SpanID]bool{}
	for cut := range cuts {
		td := ptrace.NewTraces()
		for i := range traces {
			// Trace i has spans in every block when i%4 == 0, otherwise in block
			// i%cuts only; every trace also repeats span 0 in each of its blocks, as a
			// retrying client or a WAL replayed after a cut would.
			if i%4 != 0 && i%cuts != cut {
				continue
			}
			spansOf(td, i, "svc", 0, 1, base)
			spansOf(td, i, "svc", 1+cut*3, 3, base)
		}
		if err := s.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		collectSpanIDs(td, want)
	}
	if n := s.blockCount(); n != cuts {
		t.Fatalf("%d blocks before compaction, want %d", n, cuts)
	}
	s.compact(ctx)
	s.mu.RLock()
	blocks := s.blocks[tenantDir(pipeline.DefaultTenant)]
	s.mu.RUnlock()
	if len(blocks) != 1 {
		t.Fatalf("%d blocks after compaction, want 1", len(blocks))
	}
	b := blocks[0]
	total := 0
	for _, ids := range want {
		total += len(ids)
	}
	if b.Meta.Spans != total || b.Meta.Traces != len(want) || b.Meta.Level != 1 {
		t.Fatalf("compacted block has %d spans in %d traces at level %d, want %d in %d at level 1",
			b.Meta.Spans, b.Meta.Traces, b.Meta.Level, total, len(want))
	}
	for i := range traces {
		id := tid(i)
		rows, err := b.Trace(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameSpans(rows, want[id]); err != "" {
			t.Fatalf("trace %d in the compacted block: %s", i, err)
		}
		mustFind(t, s, pipeline.DefaultTenant, i, len(want[id]))
	}
	var prev []byte
	err := b.Scan(ctx, func(spans []spanrow.Span) bool {
		if prev != nil && string(spans[0].TraceID[:]) <= string(prev) {
			t.Errorf("trace %x follows %x", spans[0].TraceID, prev)
		}
		prev = append(prev[:0], spans[0].TraceID[:]...)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

func collectSpanIDs(td ptrace.Traces, into map[[16]byte]map[pcommon.SpanID]bool) {
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				id := [16]byte(sp.TraceID())
				if into[id] == nil {
					into[id] = map[pcommon.SpanID]bool{}
				}
				into[id][sp.SpanID()] = true
			}
		}
	}
}

// sameSpans describes how rows differ from the wanted span set, or returns "".
func sameSpans(rows []spanrow.Span, want map[pcommon.SpanID]bool) string {
	if len(rows) != len(want) {
		return fmt.Sprintf("has %d spans, want %d", len(rows), len(want))
	}
	for i := range rows {
		if !want[pcommon.SpanID(rows[i].SpanID)] {
			return "holds an unknown span"
		}
		if i > 0 && !spanrow.Less(&rows[i-1], &rows[i]) {
			return "spans are not in block order or repeat"
		}
	}
	return ""
}

// BenchmarkCompaction merges blocks of 100k spans (traces split across all of them)
// up to the default compaction_max_block_spans, and reports the live heap the merge
// added at its peak: with streaming it is about the encoded output, not the spans.
func BenchmarkCompaction(b *testing.B) {
	for _, inputs := range []int{4, 10} {
		b.Run(fmt.Sprintf("%dx100k", inputs), func(b *testing.B) { benchmarkCompaction(b, inputs) })
	}
}

func benchmarkCompaction(b *testing.B, inputs int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	var peakMB float64
	for range b.N {
		b.StopTimer()
		s := openStore(b, b.TempDir(), Config{})
		for range inputs {
			for range 100 {
				if err := s.ConsumeTraces(ctx, genBatch(rng, 100, 10, time.Now())); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		before := liveHeap()
		stop := watchLiveHeap()
		b.StartTimer()
		s.compact(ctx)
		b.StopTimer()
		peak := stop()
		if n := s.blockCount(); n != 1 {
			b.Fatalf("%d blocks after compaction", n)
		}
		peakMB = max(peakMB, float64(peak-min(peak, before))/1e6)
		s.Close()
	}
	b.ReportMetric(peakMB, "peak-live-MB")
}

// watchLiveHeap samples the live heap until stop, which returns the highest value
// seen. The GC runs after every 5% of growth meanwhile, so that the live heap (known
// only as of each collection) is sampled often.
func watchLiveHeap() (stop func() uint64) {
	gcPercent := debug.SetGCPercent(5)
	done := make(chan struct{})
	var peak uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			peak = max(peak, liveHeap())
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		debug.SetGCPercent(gcPercent)
		return peak
	}
}

func liveHeap() uint64 {
	sample := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(sample)
	return sample[0].Value.Uint64()
}

// BenchmarkHeadCut writes a head of 500k spans to a block and reports the live heap
// the write added on top of the head at its peak: the head is written one trace at
// a time, so this is the encoded block, not a sorted copy of the spans.
func BenchmarkHeadCut(b *testing.B) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 10))
	var peakMB, headMB float64
	for range b.N {
		b.StopTimer()
		s := openStore(b, b.TempDir(), Config{MaxBlockSpans: 1_000_000, MaxHeadBytes: 1 << 30})
		for range 500 {
			if err := s.ConsumeTraces(ctx, genBatch(rng, 100, 10, time.Now())); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		before := liveHeap()
		headMB = float64(s.memBytes.Load()) / 1e6
		stop := watchLiveHeap()
		b.StartTimer()
		if err := s.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		peak := stop()
		peakMB = max(peakMB, float64(peak-min(peak, before))/1e6)
		s.Close()
	}
	b.ReportMetric(headMB, "head-MB")
	b.ReportMetric(peakMB, "peak-added-live-MB")
}
