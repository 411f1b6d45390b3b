package headchunks

import (
	"context"
	"flag"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

var (
	benchSeries = flag.Int("series", 1_000_000, "series BenchmarkBytesPerSeries fills")
	benchRounds = flag.Int("rounds", 8, "samples per series, 15 s apart")
)

// nodeValue is series s's next value after v, in the four kinds
// bench/internal/rwload's node_exporter-like load mixes: integer counters,
// two-decimal counters, two-decimal gauges and gauges that rarely change.
func nodeValue(s int, v float64, rng *rand.Rand) float64 {
	switch s % 4 {
	case 0:
		return v + float64(rng.IntN(1000))
	case 1:
		return v + float64(rng.IntN(1500))/100
	case 2:
		return float64(rng.IntN(100000)) / 100
	}
	if v == 0 || rng.IntN(100) == 0 {
		return float64(rng.IntN(1 << 30))
	}
	return v
}

// BenchmarkBytesPerSeries fills -series series with -rounds samples each,
// round by round as scrapes arrive, and reports the live heap left per
// series (HeapAlloc after a collection, minus before) and the time per
// sample: for Buffer alone (the samples' part of a head; seriesindex's
// bench gives the labels' part) and, in the same run, for Prometheus's whole
// head (labels and samples, isolation off as in Vispyr). Run it with
// -benchtime 1x.
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
	b.Run("prometheus-head", func(b *testing.B) {
		measure(b, n, rounds, func() any {
			opts := tsdb.DefaultHeadOptions()
			opts.ChunkDirRoot = b.TempDir()
			opts.IsolationDisabled = true
			h, err := tsdb.NewHead(nil, nil, nil, nil, opts, nil)
			if err != nil {
				b.Fatal(err)
			}
			refs := make([]uint64, n)
			var sb labels.ScratchBuilder
			app := h.Appender(context.Background())
			fill(n, rounds, func(s int, t int64, v float64) {
				var lset labels.Labels
				if refs[s] == 0 {
					sb.Reset()
					sb.Add("__name__", "bench_metric_"+strconv.Itoa(s%200))
					sb.Add("series", strconv.Itoa(s))
					lset = sb.Labels()
				}
				ref, err := app.Append(storage.SeriesRef(refs[s]), lset, t, v)
				if err != nil {
					b.Fatal(err)
				}
				refs[s] = uint64(ref)
				if s%5000 == 4999 {
					if err := app.Commit(); err != nil {
						b.Fatal(err)
					}
					app = h.Appender(context.Background())
				}
			})
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			return h
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
			values[s] = nodeValue(s, values[s], rng)
			add(s, start+int64(r)*15000, values[s])
		}
	}
}

// measure runs build b.N times and reports, for the last run, the heap its
// result holds per series and its time per sample.
func measure(b *testing.B, n, rounds int, build func() any) {
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		kept := build()
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "B/series")
		b.ReportMetric(float64(took.Nanoseconds())/float64(n*rounds), "ns/sample")
		runtime.KeepAlive(kept)
	}
}
