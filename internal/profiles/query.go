package profiles

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/vispyr/vispyr/internal/limits"
)

// Selector picks series and a time range. Times are Unix nanoseconds, inclusive.
type Selector struct {
	Tenant     string
	Start, End int64
	// TypeID restricts to one profile type; "" means all.
	TypeID   string
	Matchers []*labels.Matcher
	// Memory is charged with what a merge or series query builds; the query
	// ends with its refusal. nil: no bound.
	Memory *limits.QueryMemory
}

// ErrQueryTimeout ends a merge or series query that outran Config.QueryTimeout.
var ErrQueryTimeout = errors.New("profile query timed out")

// Memory estimates: a call-tree node with its index entry and its share of
// the flame graph or pprof answer; a series point with its map entries and
// answer; a series' labels.
const (
	treeNodeBytes   = 192
	seriesPtBytes   = 96
	seriesHeadBytes = 512
)

// withTimeout bounds a query by Config.QueryTimeout; done turns the
// context's end into the error the API answers with.
func (s *Store) withTimeout(ctx context.Context) (context.Context, func(error) error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.QueryTimeout, ErrQueryTimeout)
	return ctx, func(err error) error {
		defer cancel()
		if err != nil && context.Cause(ctx) == ErrQueryTimeout {
			return fmt.Errorf("%w: it ran longer than profiles.query_timeout (%v)", ErrQueryTimeout, s.cfg.QueryTimeout)
		}
		return err
	}
}

var selectorParser = parser.NewParser(parser.Options{EnableUnquotedUTF8Names: true})

// ParseSelector parses a label selector such as `{service_name="x"}`; "" and "{}"
// select everything.
func ParseSelector(s string) ([]*labels.Matcher, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.ReplaceAll(s, " ", "") == "{}" {
		return nil, nil
	}
	ms, err := selectorParser.ParseMetricSelector(s)
	if err != nil {
		return nil, fmt.Errorf("parse label selector %q: %w", s, err)
	}
	return ms, nil
}

func (sel *Selector) matches(ls labels.Labels, minT, maxT int64) bool {
	if maxT < sel.Start || minT > sel.End {
		return false
	}
	if ls.Get(labelTenant) != sel.Tenant {
		return false
	}
	if sel.TypeID != "" && ls.Get(LabelProfileType) != sel.TypeID {
		return false
	}
	for _, m := range sel.Matchers {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// publicLabels drops the hidden tenant label.
func publicLabels(ls labels.Labels) labels.Labels {
	return labels.NewBuilder(ls).Del(labelTenant).Labels()
}

// forEachSeriesLabels calls fn with the public labels of every matching series, from
// the head and from block metadata (no block data is decoded).
func (s *Store) forEachSeriesLabels(sel *Selector, fn func(labels.Labels)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.memTables() {
		for _, sr := range t.series {
			if sel.matches(sr.labels, sr.minT, sr.maxT) {
				fn(publicLabels(sr.labels))
			}
		}
	}
	for _, b := range s.blocks {
		if b.meta.MaxT < sel.Start || b.meta.MinT > sel.End {
			continue
		}
		for _, sr := range b.meta.Series {
			if sel.matches(sr.ls, sr.MinT, sr.MaxT) {
				fn(publicLabels(sr.ls))
			}
		}
	}
}

// memTables returns the head and heads being flushed; callers hold s.mu.
func (s *Store) memTables() []*table {
	out := []*table{s.head}
	for _, f := range s.flushing {
		out = append(out, f.t)
	}
	return out
}

// forEachTable calls fn for the head and every block overlapping the selector's time
// range, decoding blocks through the cache.
func (s *Store) forEachTable(ctx context.Context, sel *Selector, fn func(*table) error) error {
	s.mu.RLock()
	mem := s.memTables()
	var blocks []*block
	for _, b := range s.blocks {
		if b.meta.MaxT >= sel.Start && b.meta.MinT <= sel.End {
			blocks = append(blocks, b)
		}
	}
	// The head is read under the lock (appends mutate it); blocks are immutable.
	for _, t := range mem {
		if err := fn(t); err != nil {
			s.mu.RUnlock()
			return err
		}
	}
	s.mu.RUnlock()
	for _, b := range blocks {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := b.load(sel, s.cache)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted by retention while we were queued
		}
		if err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

// ProfileTypes lists the profile type IDs with data in the selector's range.
func (s *Store) ProfileTypes(sel Selector) []ProfileType {
	seen := map[string]struct{}{}
	s.forEachSeriesLabels(&sel, func(ls labels.Labels) { seen[ls.Get(LabelProfileType)] = struct{}{} })
	var out []ProfileType
	for id := range seen {
		if pt, err := ParseProfileType(id); err == nil {
			out = append(out, pt)
		}
	}
	slices.SortFunc(out, func(a, b ProfileType) int { return compareStrings(a.ID(), b.ID()) })
	return out
}

// LabelNames lists the label names of matching series, sorted.
func (s *Store) LabelNames(sel Selector) []string {
	seen := map[string]struct{}{}
	s.forEachSeriesLabels(&sel, func(ls labels.Labels) {
		ls.Range(func(l labels.Label) { seen[l.Name] = struct{}{} })
	})
	return slices.Sorted(maps.Keys(seen))
}

// LabelValues lists the values of label name over matching series, sorted.
func (s *Store) LabelValues(sel Selector, name string) []string {
	seen := map[string]struct{}{}
	s.forEachSeriesLabels(&sel, func(ls labels.Labels) {
		if v := ls.Get(name); v != "" {
			seen[v] = struct{}{}
		}
	})
	return slices.Sorted(maps.Keys(seen))
}

// Series returns the distinct label sets of matching series, reduced to names when
// names is not empty.
func (s *Store) Series(sel Selector, names []string) []labels.Labels {
	seen := map[uint64]labels.Labels{}
	s.forEachSeriesLabels(&sel, func(ls labels.Labels) {
		if len(names) > 0 {
			ls = labels.NewBuilder(ls).Keep(names...).Labels()
		}
		seen[ls.Hash()] = ls
	})
	out := make([]labels.Labels, 0, len(seen))
	for _, ls := range seen {
		out = append(out, ls)
	}
	slices.SortFunc(out, labels.Compare)
	return out
}

// SampleFilter restricts merged samples to spans, traces or a call site; nil keeps
// all.
type SampleFilter struct {
	SpanIDs  map[uint64]struct{}
	TraceIDs map[string]struct{}
	// CallSite keeps only stacks that start (root first) with these function names.
	CallSite []string
}

// MergeTree merges every matching sample into one call tree.
//
// The tree's growth is charged to sel.Memory as each block is merged, so a
// merge passes its bound by at most one block's new stacks before it is
// refused.
func (s *Store) MergeTree(ctx context.Context, sel Selector, filter *SampleFilter) (_ *Tree, err error) {
	ctx, done := s.withTimeout(ctx)
	defer func() { err = done(err) }()
	tree := NewTree()
	err = s.forEachTable(ctx, &sel, func(t *table) error {
		before := len(tree.nodes)
		m := newTableMerger(tree, t)
		var site *callSite
		if filter != nil && len(filter.CallSite) > 0 {
			if site = newCallSite(t, filter.CallSite); site == nil {
				return nil // this table never saw that call site
			}
		}
		var traces map[uint32]bool
		if filter != nil && len(filter.TraceIDs) > 0 {
			traces = map[uint32]bool{}
			for i, n := range t.names {
				if _, ok := filter.TraceIDs[n]; ok {
					traces[uint32(i)] = true
				}
			}
		}
		for _, sr := range t.series {
			if !sel.matches(sr.labels, sr.minT, sr.maxT) {
				continue
			}
			for i := range sr.profiles {
				p := &sr.profiles[i]
				if p.t < sel.Start || p.t > sel.End {
					continue
				}
				for _, x := range p.samples {
					if filter != nil && !filter.keep(x, traces) {
						continue
					}
					if site != nil && !site.contains(x.node) {
						continue
					}
					m.add(x.node, x.value)
				}
			}
		}
		m.flush()
		return sel.Memory.Charge(int64(len(tree.nodes)-before) * treeNodeBytes)
	})
	if err != nil {
		return nil, err
	}
	tree.sum()
	return tree, nil
}

// callSite answers "is this node at or below the call site's node" with a memo,
// walking parents at most once per node.
type callSite struct {
	t    *table
	node uint32
	memo map[uint32]bool
}

// newCallSite finds the node of the root-first names in t, or nil if t has none.
func newCallSite(t *table, names []string) *callSite {
	ids := map[string]uint32{}
	for i, n := range t.names {
		ids[n] = uint32(i)
	}
	// Children are not indexed in blocks, so find each level by scanning nodes in
	// ID order: a child always comes after its parent.
	cur := uint32(0)
	for _, n := range names {
		want, ok := ids[n]
		if !ok {
			return nil
		}
		found := false
		for id := cur + 1; id < uint32(len(t.nodes)); id++ {
			if t.nodes[id].parent == cur && t.nodes[id].name == want {
				cur, found = id, true
				break
			}
		}
		if !found {
			return nil
		}
	}
	return &callSite{t: t, node: cur, memo: map[uint32]bool{cur: true, 0: false}}
}

func (c *callSite) contains(id uint32) bool {
	var path []uint32
	res := false
	for {
		if v, ok := c.memo[id]; ok {
			res = v
			break
		}
		path = append(path, id)
		id = c.t.nodes[id].parent
	}
	for _, p := range path {
		c.memo[p] = res
	}
	return res
}

func (f *SampleFilter) keep(x sampleRec, traces map[uint32]bool) bool {
	if len(f.SpanIDs) > 0 {
		if _, ok := f.SpanIDs[x.span]; !ok {
			return false
		}
	}
	if traces != nil && !traces[x.trace] {
		return false
	}
	return true
}

// Aggregation of points that fall in one step.
type Aggregation int

// Aggregations SelectSeries supports, as Pyroscope names them.
const (
	AggregateSum Aggregation = iota
	AggregateAvg
)

// Point is a value at a step-aligned time (nanoseconds).
type Point struct {
	T int64
	V float64
}

// SeriesPoints is one output series of SelectSeries.
type SeriesPoints struct {
	Labels labels.Labels
	Points []Point
}

// SelectSeries sums the total of every matching profile into buckets at
// sel.Start + k*step, one output series per distinct value of groupBy.
func (s *Store) SelectSeries(ctx context.Context, sel Selector, step int64, groupBy []string, agg Aggregation) (_ []SeriesPoints, err error) {
	if step <= 0 {
		return nil, fmt.Errorf("step must be positive")
	}
	ctx, done := s.withTimeout(ctx)
	defer func() { err = done(err) }()
	type acc struct {
		ls     labels.Labels
		sum    map[int64]float64
		counts map[int64]int
	}
	groups := map[uint64]*acc{}
	err = s.forEachTable(ctx, &sel, func(t *table) error {
		for _, sr := range t.series {
			if !sel.matches(sr.labels, sr.minT, sr.maxT) {
				continue
			}
			ls := labels.NewBuilder(sr.labels).Keep(groupBy...).Labels()
			g := groups[ls.Hash()]
			if g == nil {
				if err := sel.Memory.Charge(seriesHeadBytes); err != nil {
					return err
				}
				g = &acc{ls: ls, sum: map[int64]float64{}, counts: map[int64]int{}}
				groups[ls.Hash()] = g
			}
			for _, p := range sr.profiles {
				if p.t < sel.Start || p.t > sel.End {
					continue
				}
				// Like Pyroscope, a profile counts towards the first step boundary
				// at or after it (millisecond precision), so points close their step.
				tms := p.t / 1e6 * 1e6
				ts := tms
				if rem := (tms - sel.Start) % step; rem != 0 {
					ts += step - rem
				}
				if _, ok := g.sum[ts]; !ok && sel.Memory != nil {
					if err := sel.Memory.Charge(seriesPtBytes); err != nil {
						return err
					}
				}
				g.sum[ts] += float64(p.total)
				g.counts[ts]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]SeriesPoints, 0, len(groups))
	for _, g := range groups {
		if len(g.sum) == 0 {
			continue
		}
		sp := SeriesPoints{Labels: g.ls}
		for ts, v := range g.sum {
			if agg == AggregateAvg {
				v /= float64(g.counts[ts])
			}
			sp.Points = append(sp.Points, Point{T: ts, V: v})
		}
		sort.Slice(sp.Points, func(i, j int) bool { return sp.Points[i].T < sp.Points[j].T })
		out = append(out, sp)
	}
	slices.SortFunc(out, func(a, b SeriesPoints) int { return labels.Compare(a.Labels, b.Labels) })
	return out, nil
}

// Stats reports whether the tenant has any data and its time span (nanoseconds).
func (s *Store) Stats(tenant string) (ingested bool, oldest, newest int64) {
	sel := Selector{Tenant: tenant, Start: 0, End: 1<<63 - 1}
	oldest, newest = 1<<63-1, -1<<63
	s.mu.RLock()
	defer s.mu.RUnlock()
	visit := func(ls labels.Labels, minT, maxT int64) {
		if sel.matches(ls, minT, maxT) {
			ingested = true
			oldest, newest = min(oldest, minT), max(newest, maxT)
		}
	}
	for _, t := range s.memTables() {
		for _, sr := range t.series {
			visit(sr.labels, sr.minT, sr.maxT)
		}
	}
	for _, b := range s.blocks {
		for _, sr := range b.meta.Series {
			visit(sr.ls, sr.MinT, sr.MaxT)
		}
	}
	if !ingested {
		return false, 0, 0
	}
	return true, oldest, newest
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
