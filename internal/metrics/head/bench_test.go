package head

import (
	"flag"
	"testing"
	"time"

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
	fillAt(b, db, 0, time.Now().Add(-time.Duration(*benchRounds)*15*time.Second).UnixMilli())
}

func measure(b *testing.B, build func() any) {
	nodeshape.MeasureHeap(b, *benchSeries, *benchSeries**benchRounds, "sample", build)
}
