package head

import (
	"context"
	"flag"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/metrics/nodeshape"
)

var (
	benchSeries = flag.Int("series", 1_000_000, "series BenchmarkBytesPerSeries fills")
	benchRounds = flag.Int("rounds", 8, "samples per series, 15 s apart")
)

// BenchmarkBytesPerSeries fills a head with -series series of nodeshape's
// load, -rounds samples each, round by round in commits of 5,000 samples as
// remote-write requests arrive (the first round by labels, later ones by
// the refs the first returned, as Vispyr's series cache does), and reports
// the live heap left per series (HeapAlloc after a collection, minus
// before) and the time per sample: for this head (after a Compact, which
// the store runs now and then) and, in the same run, for Prometheus's head
// with isolation off, as Vispyr runs it today. Run it with -benchtime 1x.
func BenchmarkBytesPerSeries(b *testing.B) {
	b.Run("own-head", func(b *testing.B) {
		measure(b, func() any {
			h := newOwn(b)
			fill(b, h)
			h.Compact()
			return h
		})
	})
	b.Run("prometheus-head", func(b *testing.B) {
		measure(b, func() any {
			h := newPrometheus(b)
			fill(b, h)
			return h
		})
	})
}

func fill(b *testing.B, db storage.Appendable) {
	n := *benchSeries
	rng := rand.New(rand.NewPCG(1, 2))
	values := make([]float64, n)
	refs := make([]storage.SeriesRef, n)
	var sb labels.ScratchBuilder
	start := time.Now().Add(-time.Duration(*benchRounds) * 15 * time.Second).UnixMilli()
	for r := range *benchRounds {
		app := db.Appender(context.Background())
		for s := range n {
			var lset labels.Labels
			if refs[s] == 0 {
				lset = nodeshape.Labels(&sb, s)
			}
			values[s] = nodeshape.Next(s, values[s], rng)
			ref, err := app.Append(refs[s], lset, start+int64(r)*15000, values[s])
			if err != nil {
				b.Fatal(err)
			}
			refs[s] = ref
			if s%5000 == 4999 || s == n-1 {
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
				app = db.Appender(context.Background())
			}
		}
	}
}

func measure(b *testing.B, build func() any) {
	var before, after runtime.MemStats
	n := *benchSeries
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		kept := build()
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "B/series")
		b.ReportMetric(float64(took.Nanoseconds())/float64(n**benchRounds), "ns/sample")
		runtime.KeepAlive(kept)
	}
}
