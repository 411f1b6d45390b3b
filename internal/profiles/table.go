package profiles

import (
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// table is the in-memory form shared by the head and decoded blocks: a de-duplicated
// function-name table, a stack tree in which every stack is one node (its leaf), and
// series holding profiles whose samples point at nodes. Node parents always have
// lower IDs than their children, which lets queries fold values bottom-up in one pass.
type table struct {
	names []string // names[0] == "" (root and "no trace")
	nodes []node   // nodes[0] is the root

	series []*series

	minT, maxT int64 // nanoseconds, over all profiles
	samples    int

	// Lookup maps: present only while the table is a head being appended to.
	nameIdx   map[string]uint32
	nodeIdx   map[node]uint32
	seriesIdx map[uint64][]uint32
}

type node struct {
	parent uint32
	name   uint32
}

type series struct {
	labels     labels.Labels
	typeID     string
	minT, maxT int64
	profiles   []profileRec
}

type profileRec struct {
	t       int64 // nanoseconds
	total   int64
	samples []sampleRec // sorted by node
}

type sampleRec struct {
	node  uint32
	trace uint32 // index into names, 0 = none
	value int64
	span  uint64
}

func newTable() *table {
	return &table{
		names:     []string{""},
		nodes:     []node{{}},
		nameIdx:   map[string]uint32{"": 0},
		nodeIdx:   map[node]uint32{},
		seriesIdx: map[uint64][]uint32{},
		minT:      1<<63 - 1,
		maxT:      -1 << 63,
	}
}

func (t *table) empty() bool { return t.samples == 0 && len(t.series) == 0 }

func (t *table) name(s string) uint32 {
	if id, ok := t.nameIdx[s]; ok {
		return id
	}
	id := uint32(len(t.names))
	t.names = append(t.names, s)
	t.nameIdx[s] = id
	return id
}

func (t *table) child(parent, name uint32) uint32 {
	k := node{parent: parent, name: name}
	if id, ok := t.nodeIdx[k]; ok {
		return id
	}
	id := uint32(len(t.nodes))
	t.nodes = append(t.nodes, k)
	t.nodeIdx[k] = id
	return id
}

func (t *table) getSeries(ls labels.Labels) *series {
	h := ls.Hash()
	for _, i := range t.seriesIdx[h] {
		if labels.Equal(t.series[i].labels, ls) {
			return t.series[i]
		}
	}
	s := &series{labels: ls, typeID: ls.Get(LabelProfileType), minT: 1<<63 - 1, maxT: -1 << 63}
	t.seriesIdx[h] = append(t.seriesIdx[h], uint32(len(t.series)))
	t.series = append(t.series, s)
	return s
}

// append adds every profile of b, translating its names and stacks into the table.
func (t *table) append(b *Batch) {
	names := make([]uint32, len(b.Names))
	for i, n := range b.Names {
		names[i] = t.name(n)
	}
	stacks := make([]uint32, len(b.Stacks))
	for i, s := range b.Stacks {
		id := uint32(0)
		for _, n := range s {
			id = t.child(id, names[n])
		}
		stacks[i] = id
	}
	for i := range b.Profiles {
		p := &b.Profiles[i]
		if len(p.Samples) == 0 {
			continue
		}
		rec := profileRec{t: p.TimeNanos, samples: make([]sampleRec, 0, len(p.Samples))}
		for _, s := range p.Samples {
			var trace uint32
			if s.TraceID != "" {
				trace = t.name(s.TraceID)
			}
			rec.samples = append(rec.samples, sampleRec{node: stacks[s.Stack], trace: trace, value: s.Value, span: s.SpanID})
		}
		rec.samples = compactSamples(rec.samples)
		for _, s := range rec.samples {
			rec.total = addSat(rec.total, s.value)
		}
		t.addProfile(t.getSeries(p.Labels), rec)
	}
}

func (t *table) addProfile(s *series, rec profileRec) {
	s.profiles = append(s.profiles, rec)
	s.minT, s.maxT = min(s.minT, rec.t), max(s.maxT, rec.t)
	t.minT, t.maxT = min(t.minT, rec.t), max(t.maxT, rec.t)
	t.samples += len(rec.samples)
}

// compactSamples sorts by node and sums samples that share node, span and trace,
// which is what a profile with many identical stacks (or per-label splits) needs.
func compactSamples(ss []sampleRec) []sampleRec {
	slices.SortFunc(ss, func(a, b sampleRec) int {
		switch {
		case a.node != b.node:
			return cmpU32(a.node, b.node)
		case a.span != b.span:
			if a.span < b.span {
				return -1
			}
			return 1
		default:
			return cmpU32(a.trace, b.trace)
		}
	})
	out := ss[:0]
	for _, s := range ss {
		if s.value == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].node == s.node && out[n-1].span == s.span && out[n-1].trace == s.trace {
			out[n-1].value = addSat(out[n-1].value, s.value)
			continue
		}
		out = append(out, s)
	}
	return out
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// stack returns the root-first function names of node id.
func (t *table) stack(id uint32, dst []string) []string {
	dst = dst[:0]
	for id != 0 {
		n := t.nodes[id]
		dst = append(dst, t.names[n.name])
		id = n.parent
	}
	slices.Reverse(dst)
	return dst
}
