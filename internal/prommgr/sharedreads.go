package prommgr

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"
	"weak"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
)

// The rules of a group are evaluated at one timestamp and, as people write
// them, many read the same series: a rate, a sum of it, a quantile and an
// alert over one metric. Prometheus's engine decodes those samples once per
// rule; decoding them is most of the CPU that rule evaluation costs. Reads are
// shared instead: within one evaluation of one group, a selector that two or
// more rules use is read from the store once, kept decoded, and served to the
// other rules from memory, as is a narrower selector of the same metric (see
// readPlan). The sharing ends with the evaluation, so the next one reads the
// store again.
//
// A rule only shares when Prometheus's own dependency analysis of the group
// (rules.Rule.NoDependencyRules) says no earlier rule of the group writes a
// series it reads: a recording rule's output, or ALERTS of an alerting rule,
// is then never read from a copy taken before it was written. Groups whose
// dependencies cannot be told (a selector without a metric name) never share.

// maxSharedSamples bounds what one group evaluation keeps decoded (16 bytes
// a float sample): reads beyond it go to the store as without sharing.
const maxSharedSamples = 1 << 20

type groupReadsKey struct{}

// groupReads is the reads one group evaluation shares.
type groupReads struct {
	plan *readPlan

	// arenas are the arrays the group's last evaluation decoded into.
	arenas *readArenas

	mu      sync.Mutex
	reads   map[string][]*sharedRead
	samples int
}

// readArenas keep, from one evaluation to the next, the arrays shared reads
// decoded their float samples into, by selector and reach: the next read of
// the same selector decodes into the same array instead of growing a slice
// per series (that garbage, and the collector's work on it, was a fifth of
// what rule evaluation allocated). Only arrays are kept, never samples: each
// evaluation reads the store again.
type readArenas struct {
	mu   sync.Mutex
	free map[arenaKey]arena
	kept int // bytes of the arrays in free
}

// arena is the arrays of one read: its series, their float samples, and the
// series of the selects it served (sharedRead.slice).
type arena struct {
	series []promql.Series
	floats []promql.FPoint
	served []decodedSeries
}

func (a arena) size() int {
	return cap(a.series)*int(unsafe.Sizeof(promql.Series{})) + cap(a.floats)*int(unsafe.Sizeof(promql.FPoint{})) +
		cap(a.served)*int(unsafe.Sizeof(decodedSeries{}))
}

type arenaKey struct {
	selector string
	reach    int64 // ms
}

// maxKeptBytes bounds what readArenas keep between evaluations; reads beyond
// it allocate afresh.
const maxKeptBytes = 64 << 20

// take hands out k's arrays, emptied, if they are kept.
func (a *readArenas) take(k arenaKey) arena {
	a.mu.Lock()
	defer a.mu.Unlock()
	ar := a.free[k]
	delete(a.free, k)
	a.kept -= ar.size()
	clear(ar.series) // let go of the last read's labels
	clear(ar.served)
	return arena{series: ar.series[:0], floats: ar.floats[:0], served: ar.served[:0]}
}

// give keeps arena for k's next read, room permitting. Nothing may use it
// after: it is called once the group evaluation that read it is over.
func (a *readArenas) give(k arenaKey, ar arena) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.free[k]; ok { // two groups read k at once: keep one
		a.kept -= old.size()
		delete(a.free, k)
	}
	if ar.size() == 0 || a.kept+ar.size() > maxKeptBytes {
		return
	}
	a.free[k] = ar
	a.kept += ar.size()
}

// sharedRead is one selector's series over [mint, maxt], decoded. Start
// timestamps are not kept: the rules' engine does not use them
// (promql.EngineOpts.UseStartTimestamps is off).
type sharedRead struct {
	sorted     bool
	mint, maxt int64
	series     []promql.Series
	warnings   annotations.Annotations
	// arena holds series and the float samples of every one; key names it.
	arena arena
	key   arenaKey
	// mu guards arena.served, which the selects served from the read share.
	mu sync.Mutex
}

// shareGroupReads returns an evaluation function that evaluates a group as
// Prometheus does, with the reads its rules have in common shared; lookback
// is the rules' engine's lookback delta.
func shareGroupReads(lookback time.Duration) rules.GroupEvalIterationFunc {
	arenas := &readArenas{free: map[arenaKey]arena{}}
	plans := &readPlans{lookback: lookback}
	return func(ctx context.Context, g *rules.Group, ts time.Time) {
		plan := plans.of(g)
		if len(plan.reach) == 0 {
			rules.DefaultEvalIterationFunc(ctx, g, ts)
			return
		}
		reads := &groupReads{plan: plan, arenas: arenas, reads: map[string][]*sharedRead{}}
		rules.DefaultEvalIterationFunc(context.WithValue(ctx, groupReadsKey{}, reads), g, ts)
		// The group's rules are evaluated and their results hold copies of
		// what they read: the arrays can be decoded into again.
		for _, rs := range reads.reads {
			for _, r := range rs {
				arenas.give(r.key, r.arena)
			}
		}
	}
}

// readPlans are the groups' read plans, each worked out on the group's first
// evaluation: a group's rules never change (a reload that changes them makes
// a new group), so walking their expressions every evaluation would find the
// same. A plan is dropped when its group is garbage.
type readPlans struct {
	lookback time.Duration
	byGroup  sync.Map // weak.Pointer[rules.Group] → *readPlan
}

func (p *readPlans) of(g *rules.Group) *readPlan {
	key := weak.Make(g)
	if plan, ok := p.byGroup.Load(key); ok {
		return plan.(*readPlan)
	}
	plan, loaded := p.byGroup.LoadOrStore(key, planReads(g.Rules(), p.lookback))
	if !loaded {
		runtime.AddCleanup(g, func(k weak.Pointer[rules.Group]) { p.byGroup.Delete(k) }, key)
	}
	return plan.(*readPlan)
}

// readPlan is which selectors of a group's rules shared reads serve, and how.
// A selector is served by the read of a root selector whose every matcher one
// of its own implies: its series are then those of the root's read that its
// own matchers pick (`calls{service="a", status="error"}` from the read of
// `calls{service="a"}`). Of the selectors that could serve it, the root is
// the widest, so that the selectors of one metric share one read where they
// can.
type readPlan struct {
	// root of each selector served (by selectorKey), itself for a root.
	root map[string]string
	// matchers each root is read with.
	matchers map[string][]*labels.Matcher
	// reach of each root: the longest reach back in time of the uses it
	// serves (its longest range, or the lookback delta). Its first read
	// reaches that far, so the rules with shorter windows after it are served
	// from the same read. A head chunk decodes from its start whatever the
	// window, so the wider read costs little more than the narrow one.
	reach map[string]time.Duration
}

// selectorUse is how the rules that may share use one selector.
type selectorUse struct {
	matchers []*labels.Matcher
	count    int
	reach    time.Duration
}

// planReads plans the reads of rules that may share: roots whose reads
// serve two uses or more (reading a selector used once through a shared
// read would only cost more).
func planReads(rs []rules.Rule, lookback time.Duration) *readPlan {
	uses := selectorUses(rs, lookback)
	keys := slices.Sorted(maps.Keys(uses))
	root := map[string]string{}
	served := map[string]*selectorUse{} // by root: uses served and their reach
	for _, k := range keys {
		root[k] = widest(k, keys, uses)
		r := root[k]
		u := served[r]
		if u == nil {
			u = &selectorUse{matchers: uses[r].matchers}
			served[r] = u
		}
		u.count += uses[k].count
		u.reach = max(u.reach, uses[k].reach)
	}
	plan := &readPlan{root: map[string]string{}, matchers: map[string][]*labels.Matcher{}, reach: map[string]time.Duration{}}
	for k, r := range root {
		if served[r].count > 1 {
			plan.root[k] = r
			plan.matchers[r], plan.reach[r] = served[r].matchers, served[r].reach
		}
	}
	return plan
}

// widest is the selector that serves k: k's widest cover, climbing from k
// to a strictly wider cover until there is none (at each step the first in
// keys' order, so that the plan does not depend on a map's order).
func widest(k string, keys []string, uses map[string]*selectorUse) string {
	for r := k; ; {
		i := slices.IndexFunc(keys, func(c string) bool {
			return covers(uses[c].matchers, uses[r].matchers) && !covers(uses[r].matchers, uses[c].matchers)
		})
		if i < 0 {
			return r
		}
		r = keys[i]
	}
}

// selectorUses are the selectors (by selectorKey) of the rules that may
// share, with how often and how far back they read.
func selectorUses(rs []rules.Rule, lookback time.Duration) map[string]*selectorUse {
	uses := map[string]*selectorUse{}
	for _, r := range rs {
		if !r.NoDependencyRules() {
			continue
		}
		var window time.Duration // the range of the matrix selector being walked
		parser.Inspect(r.Query(), func(node parser.Node, _ []parser.Node) error {
			switch n := node.(type) {
			case *parser.MatrixSelector:
				window = n.Range
			case *parser.VectorSelector:
				k := selectorKey(n.LabelMatchers)
				u := uses[k]
				if u == nil {
					u = &selectorUse{matchers: n.LabelMatchers}
					uses[k] = u
				}
				u.count++
				d := window
				if d == 0 || n.Anchored || n.Smoothed {
					d += lookback
				}
				u.reach = max(u.reach, d)
				window = 0
			}
			return nil
		})
	}
	return uses
}

// covers says whether every series ms selects is one root selects: each of
// root's matchers is implied by one of ms.
func covers(root, ms []*labels.Matcher) bool {
	for _, r := range root {
		if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return implies(m, r) }) {
			return false
		}
	}
	return true
}

// implies says whether every label value m matches, r matches: the same
// matcher, or m an equality whose value r matches.
func implies(m, r *labels.Matcher) bool {
	if m.Name != r.Name {
		return false
	}
	return m.Type == r.Type && m.Value == r.Value || m.Type == labels.MatchEqual && r.Matches(m.Value)
}

// matchesAll says whether lset is selected by ms.
func matchesAll(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// selectorKey names a set of label matchers whatever their order.
func selectorKey(ms []*labels.Matcher) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.String()
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

// sharingQueryable is the store as the rules' PromQL engine sees it.
type sharingQueryable struct {
	db storage.Queryable
}

func (s sharingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &sharingQuerier{db: s.db, mint: mint, maxt: maxt}, nil
}

// sharingQuerier answers from the group evaluation's shared reads where it
// may, and from the store otherwise. Store queriers are opened on first use
// and closed with it.
type sharingQuerier struct {
	db         storage.Queryable
	mint, maxt int64
	under      storage.Querier
	opened     []storage.Querier
}

func (q *sharingQuerier) store() (storage.Querier, error) {
	if q.under == nil {
		u, err := q.open(q.mint, q.maxt)
		if err != nil {
			return nil, err
		}
		q.under = u
	}
	return q.under, nil
}

// open opens a store querier over [mint, maxt], closed with q.
func (q *sharingQuerier) open(mint, maxt int64) (storage.Querier, error) {
	u, err := q.db.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	q.opened = append(q.opened, u)
	return u, nil
}

func (q *sharingQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	under, err := q.store()
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	reads, _ := ctx.Value(groupReadsKey{}).(*groupReads)
	if reads == nil || hints == nil || !rules.FromOriginContext(ctx).NoDependencyRules {
		return under.Select(ctx, sortSeries, hints, ms...)
	}
	key := selectorKey(ms)
	root, ok := reads.plan.root[key]
	if !ok {
		return under.Select(ctx, sortSeries, hints, ms...)
	}
	// The selector's own matchers pick its series out of the root's read,
	// unless it is the root.
	var pick []*labels.Matcher
	if root != key {
		pick = ms
	}
	if r := reads.find(root, sortSeries, hints.Start, hints.End); r != nil {
		return r.slice(hints.Start, hints.End, pick)
	}
	if reads.spent() {
		return under.Select(ctx, sortSeries, hints, ms...)
	}
	// Read the root as far back as its longest use in the group, through a
	// store querier opened that far back.
	wide := *hints
	wide.Start = min(hints.Start, hints.End-reads.plan.reach[root].Milliseconds())
	wideStore := under
	if wide.Start < q.mint {
		if wideStore, err = q.open(wide.Start, q.maxt); err != nil {
			return storage.ErrSeriesSet(err)
		}
	}
	r, err := reads.load(wideStore.Select(ctx, sortSeries, &wide, reads.plan.matchers[root]...), arenaKey{selector: root, reach: wide.End - wide.Start}, sortSeries, wide.Start, wide.End)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if r == nil { // over budget: the store answers as without sharing
		return under.Select(ctx, sortSeries, hints, ms...)
	}
	reads.add(root, r)
	return r.slice(hints.Start, hints.End, pick)
}

func (q *sharingQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	under, err := q.store()
	if err != nil {
		return nil, nil, err
	}
	return under.LabelValues(ctx, name, hints, ms...)
}

func (q *sharingQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	under, err := q.store()
	if err != nil {
		return nil, nil, err
	}
	return under.LabelNames(ctx, hints, ms...)
}

func (q *sharingQuerier) Close() error {
	var err error
	for _, u := range q.opened {
		if e := u.Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// find returns a read of key that covers [mint, maxt], if one was made.
func (g *groupReads) find(key string, sorted bool, mint, maxt int64) *sharedRead {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.reads[key] {
		if r.sorted == sorted && r.mint <= mint && maxt <= r.maxt {
			return r
		}
	}
	return nil
}

func (g *groupReads) add(key string, r *sharedRead) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reads[key] = append(g.reads[key], r)
}

// spent says whether the evaluation's budget is used up.
func (g *groupReads) spent() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.samples >= maxSharedSamples
}

// reserve takes n samples from the evaluation's budget, if it has them.
func (g *groupReads) reserve(n int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.samples+n > maxSharedSamples {
		g.samples = maxSharedSamples // the budget is spent; no later read tries
		return false
	}
	g.samples += n
	return true
}

// load decodes ss; nil if the budget runs out part way (what was decoded is
// dropped). The float samples of all its series share one array: the one the
// last read of the same selector and reach decoded into, if it was kept.
func (g *groupReads) load(ss storage.SeriesSet, key arenaKey, sorted bool, mint, maxt int64) (*sharedRead, error) {
	ar := g.arenas.take(key)
	r := &sharedRead{sorted: sorted, mint: mint, maxt: maxt, key: key, series: ar.series, arena: arena{served: ar.served}}
	floats := ar.floats
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		// Not copied: the labels a store querier hands out outlive it (the
		// head's are its series', a block's are built afresh for each), as
		// Prometheus's own rules rely on when a rule's result is a selector's
		// series.
		d := promql.Series{Metric: s.Labels()}
		first := len(floats)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt == chunkenc.ValFloat {
				t, f := it.At()
				floats = append(floats, promql.FPoint{T: t, F: f})
				continue
			}
			t, h := it.AtFloatHistogram(nil)
			d.Histograms = append(d.Histograms, promql.HPoint{T: t, H: h})
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		if len(floats) > first {
			// Capped, so that nothing appended to one series' samples can
			// overwrite the next one's.
			d.Floats = floats[first:len(floats):len(floats)]
		}
		r.series = append(r.series, d)
		if !g.reserve(len(d.Floats) + len(d.Histograms)) {
			return nil, nil
		}
	}
	if err := ss.Err(); err != nil {
		return nil, err
	}
	r.warnings, r.arena.series, r.arena.floats = ss.Warnings(), r.series, floats
	return r, nil
}

// slice is the read narrowed to [mint, maxt], and to the series pick selects
// if it is given, as the store would answer a Select over that range: samples
// outside it trimmed, series without any left out.
func (r *sharedRead) slice(mint, maxt int64, pick []*labels.Matcher) storage.SeriesSet {
	picked := func(s promql.Series) bool { return pick == nil || matchesAll(s.Metric, pick) }
	n := len(r.series)
	if pick != nil { // a few of many, often: an array of the size needed
		n = 0
		for _, s := range r.series {
			if picked(s) {
				n++
			}
		}
	}
	// The set's series are carved from one array the read's selects share,
	// kept in its arena for the next evaluation.
	r.mu.Lock()
	defer r.mu.Unlock()
	served := r.arena.served
	if cap(served)-len(served) < n { // a new array; sets served before keep the old one
		served = make([]decodedSeries, 0, max(2*cap(served), n))
	}
	first := len(served)
	for _, s := range r.series {
		if !picked(s) {
			continue
		}
		d := promql.Series{Metric: s.Metric, Floats: within(s.Floats, floatT, mint, maxt), Histograms: within(s.Histograms, histogramT, mint, maxt)}
		if len(d.Floats)+len(d.Histograms) > 0 {
			served = append(served, decodedSeries{d})
		}
	}
	r.arena.served = served
	return &decodedSet{warnings: r.warnings, series: served[first:len(served):len(served)]}
}

// within is the part of points, in time order, from mint to maxt.
func within[P any](points []P, ts func(P) int64, mint, maxt int64) []P {
	lo := sort.Search(len(points), func(i int) bool { return ts(points[i]) >= mint })
	hi := sort.Search(len(points), func(i int) bool { return ts(points[i]) > maxt })
	if lo >= hi {
		return nil
	}
	return points[lo:hi:hi]
}

func floatT(p promql.FPoint) int64     { return p.T }
func histogramT(p promql.HPoint) int64 { return p.T }

// decodedSet is a storage.SeriesSet over decoded series.
type decodedSet struct {
	series   []decodedSeries
	i        int
	warnings annotations.Annotations
}

func (s *decodedSet) Next() bool {
	if s.i >= len(s.series) {
		return false
	}
	s.i++
	return true
}

func (s *decodedSet) At() storage.Series                { return &s.series[s.i-1] }
func (s *decodedSet) Err() error                        { return nil }
func (s *decodedSet) Warnings() annotations.Annotations { return s.warnings }

// decodedSeries is a storage.Series of a decodedSet, one of an array rather
// than one allocation each (promql.NewStorageSeries), with the same iterator.
type decodedSeries struct{ promql.Series }

func (s *decodedSeries) Labels() labels.Labels { return s.Metric }

func (s *decodedSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	return promql.NewStorageSeries(s.Series).Iterator(it)
}
