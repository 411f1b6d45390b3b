package profiles

import (
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
)

// Pprof renders the tree as a pprof profile of one sample type: one function and
// one location per distinct name (the store keeps names, not addresses or lines).
func (t *Tree) Pprof(pt ProfileType, startNanos, endNanos int64) *googlev1.Profile {
	p := &googlev1.Profile{StringTable: []string{""}, TimeNanos: startNanos}
	if endNanos > startNanos {
		p.DurationNanos = endNanos - startNanos
	}
	strs := map[string]int64{"": 0}
	str := func(s string) int64 {
		if i, ok := strs[s]; ok {
			return i
		}
		i := int64(len(p.StringTable))
		p.StringTable = append(p.StringTable, s)
		strs[s] = i
		return i
	}
	p.SampleType = []*googlev1.ValueType{{Type: str(pt.SampleType), Unit: str(pt.SampleUnit)}}
	if pt.PeriodType != "" {
		p.PeriodType = &googlev1.ValueType{Type: str(pt.PeriodType), Unit: str(pt.PeriodUnit)}
		if pt.PeriodUnit == "nanoseconds" && pt.SampleUnit == "nanoseconds" {
			p.Period = 10_000_000 // 100 Hz, what the SDKs sample at
		} else {
			p.Period = 1
		}
	}
	p.Mapping = []*googlev1.Mapping{{Id: 1, HasFunctions: true}}
	locs := map[string]uint64{}
	loc := func(name string) uint64 {
		if id, ok := locs[name]; ok {
			return id
		}
		id := uint64(len(p.Location) + 1)
		p.Function = append(p.Function, &googlev1.Function{Id: id, Name: str(name), SystemName: str(name)})
		p.Location = append(p.Location, &googlev1.Location{Id: id, MappingId: 1, Line: []*googlev1.Line{{FunctionId: id}}})
		locs[name] = id
		return id
	}
	t.Walk(func(stack []string, self int64) {
		ids := make([]uint64, len(stack))
		for i, n := range stack {
			ids[len(stack)-1-i] = loc(n) // pprof lists the leaf first
		}
		p.Sample = append(p.Sample, &googlev1.Sample{LocationId: ids, Value: []int64{self}})
	})
	return p
}
