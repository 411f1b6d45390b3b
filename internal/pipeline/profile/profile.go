// Package profile is the data that flows between the profile receivers (Pyroscope
// /ingest and push) and what stands behind them (the profile store, a forwarder):
// decoded profiles with de-duplicated function names and stacks, and the binary
// form a WAL or a durable queue keeps them in.
package profile

import (
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// Well-known label names, as Pyroscope names them.
const (
	LabelServiceName = "service_name"
	LabelProfileType = "__profile_type__"
	LabelMetricName  = "__name__"
)

// Batch is one decoded ingest request: profiles that share a function-name table and
// a stack table. Stacks are root-first indices into Names.
type Batch struct {
	Tenant   string
	Names    []string
	Stacks   [][]uint32
	Profiles []Profile
}

// Profile is the samples of one series (one profile type) at one time.
type Profile struct {
	Labels    labels.Labels // includes __name__, service_name and __profile_type__
	TimeNanos int64
	Samples   []Sample
}

// Sample is a value for one stack, optionally tied to the span that was running.
type Sample struct {
	Stack   uint32 // index into Batch.Stacks
	Value   int64
	SpanID  uint64 // 0 when the sample carries no span_id
	TraceID string // hex trace_id label, "" when absent
}

// ProfileType is the decoded form of a profile type ID
// `name:sample_type:sample_unit:period_type:period_unit`.
type ProfileType struct {
	Name, SampleType, SampleUnit, PeriodType, PeriodUnit string
}

// ID returns the profile type ID as Pyroscope spells it.
func (t ProfileType) ID() string {
	return t.Name + ":" + t.SampleType + ":" + t.SampleUnit + ":" + t.PeriodType + ":" + t.PeriodUnit
}

// ParseProfileType splits a profile type ID into its five parts.
func ParseProfileType(id string) (ProfileType, error) {
	p := strings.Split(id, ":")
	if len(p) != 5 {
		return ProfileType{}, fmt.Errorf("profile type %q: want 5 colon-separated parts, got %d", id, len(p))
	}
	return ProfileType{Name: p[0], SampleType: p[1], SampleUnit: p[2], PeriodType: p[3], PeriodUnit: p[4]}, nil
}

// Validate checks that the batch refers only to names and stacks it holds, so the
// store never indexes out of range on data a client sent.
func (b *Batch) Validate() error {
	for i, s := range b.Stacks {
		for _, n := range s {
			if int(n) >= len(b.Names) {
				return fmt.Errorf("stack %d: name index %d out of range", i, n)
			}
		}
	}
	for i := range b.Profiles {
		p := &b.Profiles[i]
		if p.Labels.Get(LabelProfileType) == "" {
			return fmt.Errorf("profile %d: missing %s label", i, LabelProfileType)
		}
		for _, s := range p.Samples {
			if int(s.Stack) >= len(b.Stacks) {
				return fmt.Errorf("profile %d: stack index %d out of range", i, s.Stack)
			}
		}
	}
	return nil
}

// NumSamples counts samples over all profiles, for size limits and metrics.
func (b *Batch) NumSamples() int {
	n := 0
	for i := range b.Profiles {
		n += len(b.Profiles[i].Samples)
	}
	return n
}
