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
// collecting all the time. It is Go's own headroom for a 16 MiB heap: at 64
// MiB, a store of 200,000 series (some 60 MB live) held as much again in
// garbage, a sixth of its RSS, while remote write and queries ran no faster
// than with 16 (bench/README.md, "memory").
//
// A collection costs in proportion to the live heap, and how often it comes
// to the garbage made over the headroom: a process that makes much garbage
// over a large head (rule evaluation every few seconds) spends a good part of
// its CPU collecting with that headroom. When the collector spends more than
// GCCPUBudget of one core, the headroom is scaled up (doubling until the
// collector would be within budget) to at most GCHeadroomMax, never past
// Go's default; once it spends less than a quarter of the budget, it halves
// back. Memory is spent for CPU only where CPU goes to collecting, and by a
// bounded amount.
const (
	GCHeadroomShare = 0.25
	GCHeadroomMin   = 16 << 20
	GCHeadroomMax   = 256 << 20
	GCCPUBudget     = 0.01 // of one core
)

// The collector's CPU is judged over gcWindow, by steps of gcStep: the
// window spans several evaluations of rules run every 15 s to a minute, so
// that their bursts and the quiet between them average out. A change of
// scale starts the window afresh.
const (
	gcWindow = 2 * time.Minute
	gcStep   = 30 * time.Second
	// gcMaxScale is the largest multiple of the base headroom.
	gcMaxScale = GCHeadroomMax / GCHeadroomMin
)

// GCPercent is the GOGC that leaves the base headroom above for live heap
// bytes, times scale but at most GCHeadroomMax (unless the base is more),
// never more than Go's default of 100.
func GCPercent(live uint64, scale int) int {
	if live == 0 {
		return 100
	}
	base := max(float64(live)*GCHeadroomShare, GCHeadroomMin)
	headroom := min(base*float64(scale), max(base, GCHeadroomMax))
	return min(100, max(int(100*GCHeadroomShare), int(100*headroom/float64(live))))
}

// gcScaler picks the headroom's scale from the collector's CPU seconds.
type gcScaler struct {
	scale   int
	samples []gcSample // one per step since the window started, oldest first
}

type gcSample struct {
	at  time.Time
	cpu float64 // the collector's CPU seconds so far
}

// observe takes the collector's CPU seconds at one step and says whether the
// scale changed.
func (s *gcScaler) observe(at time.Time, cpu float64) bool {
	s.samples = append(s.samples, gcSample{at, cpu})
	for len(s.samples) > 1 && at.Sub(s.samples[1].at) >= gcWindow {
		s.samples = s.samples[1:]
	}
	first := s.samples[0]
	span := at.Sub(first.at)
	if span < gcStep {
		return false
	}
	rate := (cpu - first.cpu) / span.Seconds() // of one core
	scale := s.scale
	switch {
	case rate > GCCPUBudget && s.scale < gcMaxScale:
		// The collector's work goes as 1/headroom at a given rate of garbage.
		for scale < gcMaxScale && rate*float64(s.scale)/float64(scale) > GCCPUBudget {
			scale *= 2
		}
	case rate < GCCPUBudget/4 && s.scale > 1 && span >= gcWindow:
		scale /= 2
	}
	if scale == s.scale {
		return false
	}
	s.scale, s.samples = scale, []gcSample{{at, cpu}}
	return true
}

// TuneGC sets GOGC to GCPercent of the live heap after every collection, and
// scales the headroom by the collector's CPU, until ctx ends. A GOGC
// environment variable is the operator's choice and turns it off.
func TuneGC(ctx context.Context, logger *slog.Logger) {
	if os.Getenv("GOGC") != "" {
		logger.Info("GOGC set in the environment; garbage collector headroom not tuned", "GOGC", os.Getenv("GOGC"))
		return
	}
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	go func() {
		// Reading the counters costs a microsecond; a collection of a
		// large heap takes far longer than the period.
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		var cycles uint64
		percent := 100
		scaler := gcScaler{scale: 1}
		var lastStep time.Time
		for {
			var now time.Time
			select {
			case <-ctx.Done():
				debug.SetGCPercent(100)
				return
			case now = <-tick.C:
			}
			metrics.Read(samples)
			rescaled := false
			if lastStep.IsZero() || now.Sub(lastStep) >= gcStep {
				lastStep = now
				if rescaled = scaler.observe(now, samples[2].Value.Float64()); rescaled {
					logger.Debug("garbage collector headroom rescaled", "scale", scaler.scale)
				}
			}
			if n := samples[0].Value.Uint64(); n != cycles || rescaled {
				cycles = n
				if p := GCPercent(samples[1].Value.Uint64(), scaler.scale); p != percent {
					percent = p
					debug.SetGCPercent(p)
				}
			}
		}
	}()
}
