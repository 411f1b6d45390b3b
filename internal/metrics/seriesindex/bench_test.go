package seriesindex

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/vispyr/vispyr/internal/metrics/nodeshape"
)

var benchSeries = flag.Int("series", 1_000_000, "series BenchmarkBytesPerSeries adds")

// benchLabels is nodeshape's series s.
var benchLabels = nodeshape.Labels

// BenchmarkBytesPerSeries adds -series series, built one by one as a
// receiver would, and reports the live heap they leave (HeapAlloc after a
// collection, minus before) and the time per series, for this index and,
// on the same load in the same run, for Prometheus: a tsdb.Head holding one
// sample per series (what Vispyr's store runs today, isolation off as in
// Vispyr) and its index.MemPostings with the labels alone. labels-only is
// the cost of building the label sets, included in every other figure's
// time; seriesindex-existing adds the same series again (the path of every
// sample after a series' first), its B/series the garbage it leaves. Run it
// with -benchtime 1x.
func BenchmarkBytesPerSeries(b *testing.B) {
	n := *benchSeries
	b.Run("labels-only", func(b *testing.B) {
		measure(b, n, func() any {
			var sb labels.ScratchBuilder
			var keep labels.Labels
			for s := range n {
				keep = benchLabels(&sb, s)
			}
			return keep
		})
	})
	b.Run("seriesindex", func(b *testing.B) {
		measure(b, n, func() any {
			ix := New()
			var sb labels.ScratchBuilder
			for s := range n {
				ix.Add(benchLabels(&sb, s))
			}
			return ix
		})
	})
	b.Run("seriesindex-existing", func(b *testing.B) {
		ix := New()
		var sb labels.ScratchBuilder
		for s := range n {
			ix.Add(benchLabels(&sb, s))
		}
		measure(b, n, func() any {
			for s := range n {
				ix.Add(benchLabels(&sb, s))
			}
			return nil
		})
	})
	b.Run("prometheus-head", func(b *testing.B) {
		measure(b, n, func() any { return fillHead(b, n) })
	})
	b.Run("prometheus-postings+labels", func(b *testing.B) {
		measure(b, n, func() any {
			p := index.NewMemPostings()
			lsets := make([]labels.Labels, n)
			var sb labels.ScratchBuilder
			for s := range n {
				lsets[s] = benchLabels(&sb, s)
				p.Add(storage.SeriesRef(s+1), lsets[s])
			}
			return []any{p, lsets}
		})
	})
}

// measure reports the heap build's result holds and its time, per series,
// with the index's parts logged.
func measure(b *testing.B, n int, build func() any) {
	if ix, ok := nodeshape.MeasureHeap(b, n, n, "series", build).(*Index); ok {
		b.Logf("seriesindex parts, bytes per series: %s", ix.sizes(n))
	}
}

// fillHead appends one sample for each of n series to a new head, in
// commits of 5,000 as remote-write requests would.
func fillHead(b *testing.B, n int) *tsdb.Head {
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkDirRoot = b.TempDir()
	return fillHeadWith(b, n, opts)
}

// fillHeadWith is fillHead with opts (isolation off, as in Vispyr).
func fillHeadWith(b *testing.B, n int, opts *tsdb.HeadOptions) *tsdb.Head {
	opts.IsolationDisabled = true
	h, err := tsdb.NewHead(nil, nil, nil, nil, opts, nil)
	if err != nil {
		b.Fatalf("open head: %v", err)
	}
	b.Cleanup(func() { h.Close() })
	var sb labels.ScratchBuilder
	app := h.Appender(context.Background())
	for s := range n {
		if _, err := app.Append(0, benchLabels(&sb, s), 1000, 1); err != nil {
			b.Fatalf("append: %v", err)
		}
		if s%5000 == 4999 || s == n-1 {
			if err := app.Commit(); err != nil {
				b.Fatalf("commit: %v", err)
			}
			app = h.Appender(context.Background())
		}
	}
	return h
}

// sizes breaks the index's memory down by part, per series.
func (ix *Index) sizes(n int) string {
	var shardSlots, valueSlots, listCap int
	for i := range ix.shards {
		shardSlots += len(ix.shards[i].table)
	}
	for _, t := range ix.names {
		valueSlots += len(t.slots)
	}
	for _, l := range ix.lists {
		listCap += cap(l.data)
	}
	per := func(bytes int) string { return fmt.Sprintf("%.1f", float64(bytes)/float64(n)) }
	return fmt.Sprintf("symbol strings %s, symbol offsets %s, symbol table %s, series labels %s, "+
		"series offsets %s, series tables %s, value tables %s, postings lists %s (%d lists)",
		per(ix.syms.data.size()), per(4*cap(ix.syms.offs)), per(5*len(ix.syms.table)),
		per(ix.series.size()), per(4*cap(ix.offs)), per(5*shardSlots), per(4*valueSlots),
		per(listCap+32*cap(ix.lists)), len(ix.lists))
}

// BenchmarkPostingsForMatchers answers the same matchers over 100,000
// series of the benchmark's shape from this index and, as the store does
// today, from Prometheus's head (tsdb.PostingsForMatchers, expanded).
func BenchmarkPostingsForMatchers(b *testing.B) {
	const n = 100_000
	ix := New()
	var sb labels.ScratchBuilder
	for s := range n {
		ix.Add(benchLabels(&sb, s))
	}
	h := fillHead(b, n)
	hix, err := h.Index()
	if err != nil {
		b.Fatalf("head index: %v", err)
	}
	defer hix.Close()
	m := labels.MustNewMatcher
	for _, c := range []struct {
		name string
		ms   []*labels.Matcher
	}{
		{"name", []*labels.Matcher{m(labels.MatchEqual, "__name__", "bench_metric_7")}},
		{"name,instance", []*labels.Matcher{m(labels.MatchEqual, "__name__", "bench_metric_7"),
			m(labels.MatchEqual, "instance", "host-42:9100")}},
		{"name,mode!=", []*labels.Matcher{m(labels.MatchEqual, "__name__", "bench_metric_7"),
			m(labels.MatchNotEqual, "mode", "idle")}},
		{"job,regexp-set", []*labels.Matcher{m(labels.MatchEqual, "job", "bench"),
			m(labels.MatchRegexp, "__name__", "bench_metric_(1|2|3)")}},
		{"name-regexp,series-regexp", []*labels.Matcher{m(labels.MatchRegexp, "__name__", "bench_metric_1.*"),
			m(labels.MatchRegexp, "series", "1.*")}},
	} {
		want := len(ix.PostingsForMatchers(c.ms...))
		b.Run(c.name+"/seriesindex", func(b *testing.B) {
			for b.Loop() {
				if got := len(ix.PostingsForMatchers(c.ms...)); got != want {
					b.Fatalf("%d series, want %d", got, want)
				}
			}
		})
		b.Run(c.name+"/seriesindex-reader", func(b *testing.B) {
			r := headReader{ix.Reader()}
			for b.Loop() {
				p, err := tsdb.PostingsForMatchers(context.Background(), r, c.ms...)
				if err != nil {
					b.Fatal(err)
				}
				refs, err := index.ExpandPostings(p)
				if err != nil || len(refs) != want {
					b.Fatalf("%d series (%v), want %d", len(refs), err, want)
				}
			}
		})
		b.Run(c.name+"/prometheus-head", func(b *testing.B) {
			for b.Loop() {
				p, err := tsdb.PostingsForMatchers(context.Background(), hix, c.ms...)
				if err != nil {
					b.Fatal(err)
				}
				refs, err := index.ExpandPostings(p)
				if err != nil || len(refs) != want {
					b.Fatalf("%d series (%v), want %d", len(refs), err, want)
				}
			}
		})
	}
}

// BenchmarkAddExisting adds series an index already holds (100,000 of the
// benchmark's shape, label sets built beforehand) from b's parallel
// goroutines: run with -cpu 1,2 to see whether lookups scale across cores.
func BenchmarkAddExisting(b *testing.B) {
	const n = 100_000
	ix := New()
	lsets := make([]labels.Labels, n)
	var sb labels.ScratchBuilder
	for s := range n {
		lsets[s] = benchLabels(&sb, s)
		ix.Add(lsets[s])
	}
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		s := int(next.Add(7919))
		for pb.Next() {
			if _, created := ix.Add(lsets[s%n]); created {
				b.Fatal("created an existing series")
			}
			s++
		}
	})
}

// BenchmarkReaderWalks times the IndexReader calls that walk every series,
// on 100,000 series of the benchmark's shape, for Reader and Prometheus's
// head: all postings sorted by labels (what compaction writes a block
// from), sharded (a query split in 4), and the symbols.
func BenchmarkReaderWalks(b *testing.B) {
	const n = 100_000
	ix := New()
	var sb labels.ScratchBuilder
	for s := range n {
		ix.Add(benchLabels(&sb, s))
	}
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkDirRoot = b.TempDir()
	opts.EnableSharding = true
	h := fillHeadWith(b, n, opts)
	hix, err := h.Index()
	if err != nil {
		b.Fatalf("head index: %v", err)
	}
	for _, r := range []struct {
		name string
		ir   tsdb.IndexReader
	}{{"seriesindex-reader", headReader{ix.Reader()}}, {"prometheus-head", hix}} {
		b.Run("sorted-all/"+r.name, func(b *testing.B) {
			for b.Loop() {
				expandN(b, tsdb.AllSortedPostings(context.Background(), r.ir), n)
			}
		})
		b.Run("sharded-1-of-4/"+r.name, func(b *testing.B) {
			for b.Loop() {
				k, v := index.AllPostingsKey()
				all, _ := r.ir.Postings(context.Background(), k, v)
				expandN(b, r.ir.ShardedPostings(all, 1, 4), -1)
			}
		})
		b.Run("symbols/"+r.name, func(b *testing.B) {
			for b.Loop() {
				for it := r.ir.Symbols(); it.Next(); {
				}
			}
		})
	}
}

// expandN walks p and fails unless it holds n refs (any number for -1).
func expandN(b *testing.B, p index.Postings, n int) {
	got := 0
	for p.Next() {
		got++
	}
	if p.Err() != nil || n >= 0 && got != n {
		b.Fatalf("%d refs (%v), want %d", got, p.Err(), n)
	}
}

// BenchmarkDelete adds -series series, then removes a tenth of them
// (every tenth ref: no arena copy), four more tenths (the arena is copied,
// tables shrink) and four more (the symbols are renumbered), reporting
// each Delete's time and the live heap per series left after it. Run it
// with -benchtime 1x.
func BenchmarkDelete(b *testing.B) {
	n := *benchSeries
	for range b.N {
		ix := New()
		var sb labels.ScratchBuilder
		for s := range n {
			ix.Add(benchLabels(&sb, s))
		}
		heap := liveHeap()
		b.ReportMetric(float64(heap)/float64(n), "B/series-before")
		for _, step := range []struct {
			name string
			drop func(ref uint32) bool
		}{
			{"tenth", func(ref uint32) bool { return ref%10 == 0 }},
			{"half", func(ref uint32) bool { return ref%10 < 5 }},
			{"nine-tenths", func(ref uint32) bool { return ref%10 < 9 }},
		} {
			start := time.Now()
			removed := ix.Delete(step.drop)
			b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-"+step.name)
			b.ReportMetric(float64(liveHeap())/float64(ix.Len()), "B/series-after-"+step.name)
			b.Logf("%s: removed %d, %d left", step.name, removed, ix.Len())
		}
		runtime.KeepAlive(ix)
	}
}

// liveHeap is HeapAlloc after a collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkDeletePause adds 2×-series series of the benchmark's shape and
// removes the first -series, as a head truncation after a redeploy does:
// alone, reporting the Delete's time (delete-ms), and while a goroutine
// adds new series and looks up live ones, reporting also the longest an
// Add (add-wait-ms) and a Lookup (lookup-wait-ms) took meanwhile, what
// appends to a head wait. Run it with -benchtime 1x.
func BenchmarkDeletePause(b *testing.B) {
	n := *benchSeries
	b.Run("alone", func(b *testing.B) {
		for range b.N {
			ix := filled(b, 2*n)
			start := time.Now()
			if removed := ix.Delete(func(ref uint32) bool { return ref <= uint32(n) }); removed != n {
				b.Fatalf("removed %d series, want %d", removed, n)
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds()), "delete-ms")
		}
	})
	b.Run("with-writer", func(b *testing.B) {
		for range b.N {
			ix := filled(b, 2*n)
			stop, done := make(chan struct{}), make(chan struct{})
			var addWait, lookupWait time.Duration
			go func() {
				defer close(done)
				addWait, lookupWait = addAndLookUp(ix, n, stop)
			}()
			start := time.Now()
			removed := ix.Delete(func(ref uint32) bool { return ref <= uint32(n) })
			took := time.Since(start)
			close(stop)
			<-done
			if removed != n {
				b.Fatalf("removed %d series, want %d", removed, n)
			}
			b.ReportMetric(float64(took.Milliseconds()), "delete-ms")
			b.ReportMetric(float64(addWait.Milliseconds()), "add-wait-ms")
			b.ReportMetric(float64(lookupWait.Milliseconds()), "lookup-wait-ms")
		}
	})
}

// filled returns an index holding n series of the benchmark's shape, with
// b's timer stopped meanwhile and the heap collected.
func filled(b *testing.B, n int) *Index {
	b.StopTimer()
	defer b.StartTimer()
	ix := New()
	var sb labels.ScratchBuilder
	for s := range n {
		ix.Add(benchLabels(&sb, s))
	}
	runtime.GC()
	return ix
}

// addAndLookUp adds series from 2n on and looks up series n to 2n, one
// each in turn, until stop closes, and returns the longest each took.
func addAndLookUp(ix *Index, n int, stop chan struct{}) (addWait, lookupWait time.Duration) {
	var sb labels.ScratchBuilder
	for s := 2 * n; ; s++ {
		select {
		case <-stop:
			return addWait, lookupWait
		default:
		}
		lset := benchLabels(&sb, s)
		start := time.Now()
		ix.Add(lset)
		addWait = max(addWait, time.Since(start))
		lset = benchLabels(&sb, n+s%n)
		start = time.Now()
		if _, ok := ix.Lookup(lset); !ok {
			panic(fmt.Sprintf("live series %s not found", lset))
		}
		lookupWait = max(lookupWait, time.Since(start))
	}
}
