package headchunks

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
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
// appends to them. Each series has a sample every 15 s in one-minute chunk
// ranges (four samples a chunk) for four minutes, half of them only for the
// first two; the truncation, at two minutes, drops the first two chunks of
// each, keeps the third (closed) and fourth (open) of the others, and
// frees the open chunks of the half that stopped, whose slabs Compact then
// gives back. The writer meanwhile appends to the series that go on, a
// millisecond after their last sample and on, so that it cuts no chunk.
// It reports the longest an Append begun while Truncate ran took
// (append-wait-ms), and one begun while the Compact after it ran
// (compact-append-wait-ms), how many it made during the truncation
// (appended), and how long the two took (truncate-ms, compact-ms); alone
// is the same writer for half a second without either, the floor the
// machine (the scheduler, the collector) sets, and quiet the truncation
// with no writer, with the CPU time it took (truncate-cpu-ms), which other
// load on the machine changes less than its wall time. Run it with -benchtime 1x.
func BenchmarkTruncateAppendWait(b *testing.B) {
	b.Run("truncating", func(b *testing.B) {
		for range b.N {
			appendWaitDuring(b, func(buf *Buffer, phase *atomic.Int32) {
				start := time.Now()
				if _, err := buf.Truncate(2 * benchChunkRange); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "truncate-ms")
				phase.Store(1)
				start = time.Now()
				buf.Compact()
				b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "compact-ms")
			})
		}
	})
	b.Run("quiet", func(b *testing.B) {
		for range b.N {
			buf := fillForTruncate(b)
			runtime.LockOSThread() // so that the thread's CPU time is the truncation's
			start, cpu := time.Now(), threadCPU(b)
			if _, err := buf.Truncate(2 * benchChunkRange); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "truncate-ms")
			b.ReportMetric(float64((threadCPU(b)-cpu).Microseconds())/1000, "truncate-cpu-ms")
			runtime.UnlockOSThread()
		}
	})
	b.Run("alone", func(b *testing.B) {
		for range b.N {
			appendWaitDuring(b, func(*Buffer, *atomic.Int32) { time.Sleep(500 * time.Millisecond) })
		}
	})
}

const benchChunkRange = 60_000

// appendWaitDuring fills a buffer for BenchmarkTruncateAppendWait and runs
// during while the writer appends; during moves phase to 1 when it goes
// from truncating to compacting.
func appendWaitDuring(b *testing.B, during func(buf *Buffer, phase *atomic.Int32)) {
	n := uint32(*benchSeries)
	const step = 15_000
	buf := fillForTruncate(b)
	stop, done := make(chan struct{}), make(chan struct{})
	var phase atomic.Int32
	var wait [2]time.Duration
	appended := 0
	go func() {
		defer close(done)
		for ts := int64(4*benchChunkRange - step + 1); ; ts++ {
			for ref := uint32(1); ref <= n; ref += 2 {
				if ref%1024 == 1 && stopped(stop) {
					return
				}
				p, start := phase.Load(), time.Now() // a wait counts for the phase it began in
				if err := buf.Append(ref, ts, float64(ts)); err != nil {
					b.Error(err)
					return
				}
				wait[p] = max(wait[p], time.Since(start))
				if p == 0 {
					appended++
				}
			}
		}
	}()
	time.Sleep(10 * time.Millisecond) // the writer is running
	during(buf, &phase)
	close(stop)
	<-done
	b.ReportMetric(float64(wait[0].Microseconds())/1000, "append-wait-ms")
	b.ReportMetric(float64(wait[1].Microseconds())/1000, "compact-append-wait-ms")
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

// fillForTruncate fills a buffer as BenchmarkTruncateAppendWait describes.
func fillForTruncate(b *testing.B) *Buffer {
	n := uint32(*benchSeries)
	const step = 15_000
	buf := newBuffer(b, benchChunkRange)
	for ts := int64(0); ts < 4*benchChunkRange; ts += step {
		for ref := uint32(1); ref <= n; ref++ {
			if ref%2 == 1 || ts < 2*benchChunkRange {
				if err := buf.Append(ref, ts, float64(ts)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	runtime.GC()
	return buf
}

// threadCPU is the CPU time the calling thread has used (Linux).
func threadCPU(b *testing.B) time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
