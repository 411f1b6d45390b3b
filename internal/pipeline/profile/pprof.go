package profile

import (
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
)

// PprofBuilder assembles a pprof profile of one sample type from stacks of
// function names, as both the query API (a merged tree) and the profile
// forwarder (a stored profile) send them: one string per distinct text, one
// function and one location per distinct name (names are all Vispyr keeps,
// not addresses or lines).
type PprofBuilder struct {
	P    *googlev1.Profile
	strs map[string]int64
	locs map[string]uint64
}

// NewPprofBuilder starts a profile of type typ taken at timeNanos.
func NewPprofBuilder(typ ProfileType, timeNanos int64) *PprofBuilder {
	b := &PprofBuilder{
		P:    &googlev1.Profile{StringTable: []string{""}, TimeNanos: timeNanos, Mapping: []*googlev1.Mapping{{Id: 1, HasFunctions: true}}},
		strs: map[string]int64{"": 0},
		locs: map[string]uint64{},
	}
	b.P.SampleType = []*googlev1.ValueType{{Type: b.Str(typ.SampleType), Unit: b.Str(typ.SampleUnit)}}
	if typ.PeriodType != "" || typ.PeriodUnit != "" {
		b.P.PeriodType = &googlev1.ValueType{Type: b.Str(typ.PeriodType), Unit: b.Str(typ.PeriodUnit)}
	}
	return b
}

// Str is s's index in the string table, added on first use.
func (b *PprofBuilder) Str(s string) int64 {
	if i, ok := b.strs[s]; ok {
		return i
	}
	i := int64(len(b.P.StringTable))
	b.P.StringTable = append(b.P.StringTable, s)
	b.strs[s] = i
	return i
}

// Sample adds a sample of value for stack, given root first; pprof lists the
// leaf first.
func (b *PprofBuilder) Sample(stack []string, value int64) *googlev1.Sample {
	ids := make([]uint64, len(stack))
	for i, name := range stack {
		ids[len(stack)-1-i] = b.location(name)
	}
	s := &googlev1.Sample{LocationId: ids, Value: []int64{value}}
	b.P.Sample = append(b.P.Sample, s)
	return s
}

func (b *PprofBuilder) location(name string) uint64 {
	if id, ok := b.locs[name]; ok {
		return id
	}
	id := uint64(len(b.P.Location) + 1)
	n := b.Str(name)
	b.P.Function = append(b.P.Function, &googlev1.Function{Id: id, Name: n, SystemName: n})
	b.P.Location = append(b.P.Location, &googlev1.Location{Id: id, MappingId: 1, Line: []*googlev1.Line{{FunctionId: id}}})
	b.locs[name] = id
	return id
}
