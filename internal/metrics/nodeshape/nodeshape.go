// Package nodeshape is the node_exporter-like load the metrics benchmarks
// share (bench/internal/rwload and the in-process benchmarks of the head's
// parts): how series s is named and how its values move.
package nodeshape

import (
	"math/rand/v2"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
)

// Labels builds series s into b, sorted by name: 200 metric names, 1,000
// series an instance, job "bench", 4 CPU modes and a label unique per
// series.
func Labels(b *labels.ScratchBuilder, s int) labels.Labels {
	b.Reset()
	b.Add("__name__", "bench_metric_"+strconv.Itoa(s%200))
	b.Add("instance", Instance(s))
	b.Add("job", "bench")
	b.Add("mode", [...]string{"idle", "user", "system", "iowait"}[s%4])
	b.Add("series", strconv.Itoa(s))
	return b.Labels()
}

// Instance is series s's instance label: host-NN:9100, two digits at least.
func Instance(s int) string {
	n := strconv.Itoa(s / 1000)
	if len(n) < 2 {
		n = "0" + n
	}
	return "host-" + n + ":9100"
}

// Next is series s's next value after v, a quarter of the series each:
// integer counters growing by random steps (bytes, packets), two-decimal
// counters (CPU seconds), two-decimal gauges, and gauges that rarely change
// (memory totals, up).
func Next(s int, v float64, rng *rand.Rand) float64 {
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
