package limits

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The garbage collector lets the heap grow past the bytes live after the last
// collection by GCHeadroomShare of them, but at least GCHeadroomMin, before it
// collects again. Go's default (GOGC=100) lets it double: with a million
// series in the TSDB head that is a gigabyte held by garbage. VictoriaMetrics
// runs at GOGC=30 for the same reason; the floor keeps a small process from
// collecting all the time.
const (
	GCHeadroomShare = 0.25
	GCHeadroomMin   = 64 << 20
)

// GCPercent is the GOGC that leaves the headroom above for live heap bytes,
// never more than Go's default of 100.
func GCPercent(live uint64) int {
	if live == 0 {
		return 100
	}
	headroom := max(float64(live)*GCHeadroomShare, GCHeadroomMin)
	return min(100, max(int(100*GCHeadroomShare), int(100*headroom/float64(live))))
}

// TuneGC sets GOGC to GCPercent of the live heap after every collection until
// ctx ends. A GOGC environment variable is the operator's choice and turns it
// off.
func TuneGC(ctx context.Context, logger *slog.Logger) {
	if os.Getenv("GOGC") != "" {
		logger.Info("GOGC set in the environment; garbage collector headroom not tuned", "GOGC", os.Getenv("GOGC"))
		return
	}
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	go func() {
		// Reading the two counters costs a microsecond; a collection of a
		// large heap takes far longer than the period.
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		var cycles uint64
		percent := 100
		for {
			select {
			case <-ctx.Done():
				debug.SetGCPercent(100)
				return
			case <-tick.C:
			}
			metrics.Read(samples)
			if n := samples[0].Value.Uint64(); n != cycles {
				cycles = n
				if p := GCPercent(samples[1].Value.Uint64()); p != percent {
					percent = p
					debug.SetGCPercent(p)
				}
			}
		}
	}()
}
