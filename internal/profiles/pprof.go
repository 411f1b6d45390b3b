package profiles

import (
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"

	"github.com/vispyr/vispyr/internal/pipeline/profile"
)

// Pprof renders the tree as a pprof profile of one sample type: one function and
// one location per distinct name (the store keeps names, not addresses or lines).
func (t *Tree) Pprof(pt ProfileType, startNanos, endNanos int64) *googlev1.Profile {
	b := profile.NewPprofBuilder(pt, startNanos)
	p := b.P
	if endNanos > startNanos {
		p.DurationNanos = endNanos - startNanos
	}
	if pt.PeriodType != "" {
		if pt.PeriodUnit == "nanoseconds" && pt.SampleUnit == "nanoseconds" {
			p.Period = 10_000_000 // 100 Hz, what the SDKs sample at
		} else {
			p.Period = 1
		}
	}
	t.Walk(func(stack []string, self int64) { b.Sample(stack, self) })
	return p
}
