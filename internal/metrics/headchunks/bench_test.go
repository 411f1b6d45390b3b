package headchunks

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/metrics/nodeshape"
)

var (
	benchSeries = flag.Int("series", 1_000_000, "series BenchmarkBytesPerSeries fills")
	benchRounds = flag.Int("rounds", 8, "samples per series, 15 s apart")
)

// BenchmarkBytesPerSeries fills -series series with -rounds samples each,
// round by round as scrapes arrive, and reports the live heap left per
// series (HeapAlloc after a collection, minus before) and the time per
// sample, for Buffer alone: the samples' part of a head (seriesindex's
// bench gives the labels' part; the head package's bench compares the two
// together with Prometheus's head). Run it with -benchtime 1x.
func BenchmarkBytesPerSeries(b *testing.B) {
	n, rounds := *benchSeries, *benchRounds
	b.Run("headchunks", func(b *testing.B) {
		measure(b, n, rounds, func() any {
			buf := newBuffer(b, testRange)
			fill(n, rounds, func(s int, t int64, v float64) {
				if err := buf.Append(uint32(s+1), t, v); err != nil {
					b.Fatal(err)
				}
			})
			before := buf.Bytes()
			buf.Compact()
			b.Logf("Buffer.Bytes: %.1f B/series, %.1f before Compact", float64(buf.Bytes())/float64(n), float64(before)/float64(n))
			return buf
		})
	})
}

// fill calls add for rounds rounds of one sample per series.
func fill(n, rounds int, add func(s int, t int64, v float64)) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := make([]float64, n)
	start := time.Now().Add(-time.Duration(rounds) * 15 * time.Second).UnixMilli()
	for r := range rounds {
		for s := range n {
			values[s] = nodeshape.Next(s, values[s], rng)
			add(s, start+int64(r)*15000, values[s])
		}
	}
}

// measure reports the heap build's result holds per series and its time
// per sample.
func measure(b *testing.B, n, rounds int, build func() any) {
	nodeshape.MeasureHeap(b, n, n*rounds, "sample", build)
}

// BenchmarkAppend times a round of one sample per series, in ref order as
// a remote-write request brings them, to a buffer already holding ten
// rounds: sample by sample (Append) and a window at a time (Batch), side
// by side, for a head that fits in the CPU's caches and two that do not.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{20_000, 200_000, 1_000_000} {
		for _, mode := range []string{"each", "batch"} {
			b.Run(fmt.Sprintf("series=%d/%s", n, mode), func(b *testing.B) { benchAppend(b, n, mode == "batch") })
		}
	}
}

func benchAppend(b *testing.B, n int, batched bool) {
	buf := newBuffer(b, testRange)
	rng := rand.New(rand.NewPCG(1, 2))
	values := make([]float64, n)
	start := time.Now().Add(-24 * time.Hour).UnixMilli()
	round := 0
	next := func() {
		for s := range values {
			values[s] = nodeshape.Next(s, values[s], rng)
		}
		round++
	}
	appendRound := func() {
		t := start + int64(round)*15000
		if !batched {
			for s, v := range values {
				if err := buf.Append(uint32(s+1), t, v); err != nil {
					b.Fatal(err)
				}
			}
			return
		}
		bt := buf.Batch()
		for s, v := range values {
			bt.Add(uint32(s+1), t, v)
		}
		bt.Flush()
		if bt.Err != nil {
			b.Fatal(bt.Err)
		}
	}
	for range 10 {
		next()
		appendRound()
	}
	for b.Loop() {
		b.StopTimer()
		next()
		b.StartTimer()
		appendRound()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sample")
}

// BenchmarkTruncateAppendWait truncates -series series while a writer
// appends to them: each series has a sample every 15 s in one-minute chunk
// ranges (so four samples a chunk) for three minutes, and the truncation
// drops the first minute's chunk of each, keeping the second and the open
// third, while the writer appends the series' next samples, round after
// round, each first one cutting the open chunk. It reports the longest an
// Append took meanwhile (append-wait-ms), how many it made (appended) and
// how long the truncation took (truncate-ms); alone is the same writer for
// half a second without truncation, the floor that the machine (the
// scheduler, the collector, the chunk files' write queue) sets. Run it
// with -benchtime 1x.
func BenchmarkTruncateAppendWait(b *testing.B) {
	const chunkRange = 60_000
	b.Run("truncating", func(b *testing.B) {
		for range b.N {
			appendWaitDuring(b, chunkRange, func(buf *Buffer) {
				start := time.Now()
				if _, err := buf.Truncate(chunkRange); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(start).Milliseconds()), "truncate-ms")
			})
		}
	})
	b.Run("alone", func(b *testing.B) {
		for range b.N {
			appendWaitDuring(b, chunkRange, func(*Buffer) { time.Sleep(500 * time.Millisecond) })
		}
	})
}

// appendWaitDuring fills a buffer for BenchmarkTruncateAppendWait and runs
// during while the writer appends.
func appendWaitDuring(b *testing.B, chunkRange int64, during func(*Buffer)) {
	n := uint32(*benchSeries)
	const step = 15_000
	buf := newBuffer(b, chunkRange)
	for ts := int64(0); ts < 3*chunkRange; ts += step {
		for ref := uint32(1); ref <= n; ref++ {
			if err := buf.Append(ref, ts, float64(ts)); err != nil {
				b.Fatal(err)
			}
		}
	}
	runtime.GC()
	stop, done := make(chan struct{}), make(chan struct{})
	var wait time.Duration
	appended := 0
	go func() {
		defer close(done)
		for ts := 3 * chunkRange; ; ts += step {
			for ref := uint32(1); ref <= n; ref++ {
				if ref%1024 == 0 && stopped(stop) {
					return
				}
				start := time.Now()
				if err := buf.Append(ref, ts, float64(ts)); err != nil {
					b.Error(err)
					return
				}
				wait = max(wait, time.Since(start))
				appended++
			}
		}
	}()
	time.Sleep(10 * time.Millisecond) // the writer is running
	during(buf)
	close(stop)
	<-done
	b.ReportMetric(float64(wait.Microseconds())/1000, "append-wait-ms")
	b.ReportMetric(float64(appended), "appended")
}

// BenchmarkCount times Count on a buffer of -series series, against a
// count of the open chunks series by series under the same locks: what
// appends would wait for if Count went by the series.
func BenchmarkCount(b *testing.B) {
	buf := newBuffer(b, testRange)
	fill(*benchSeries, *benchRounds, func(s int, t int64, v float64) {
		if err := buf.Append(uint32(s+1), t, v); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("Count", func(b *testing.B) {
		for b.Loop() {
			if open, _ := buf.Count(); open != *benchSeries {
				b.Fatalf("%d open chunks of %d series", open, *benchSeries)
			}
		}
	})
	b.Run("by series", func(b *testing.B) {
		for b.Loop() {
			if open := openBySeries(buf); open != *benchSeries {
				b.Fatalf("%d open chunks of %d series", open, *benchSeries)
			}
		}
	})
}

// openBySeries counts the series with an open chunk, every stripe held.
func openBySeries(b *Buffer) (open int) {
	for i := range b.stripes {
		b.stripes[i].Lock()
	}
	defer func() {
		for i := range b.stripes {
			b.stripes[i].Unlock()
		}
	}()
	for _, page := range *b.pages.Load() {
		if page == nil {
			continue
		}
		for i := range page {
			if page[i].loc != 0 {
				open++
			}
		}
	}
	return open
}
