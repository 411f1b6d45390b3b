package prommgr

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

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
// other rules from memory. The sharing ends with the evaluation, so the next
// one reads the store again.
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
	// shared are the selectors used twice or more by rules that may share,
	// each with the longest reach back in time of its uses (its longest
	// range, or the lookback delta): its first read reaches that far, so the
	// rules with shorter windows after it are served from the same read. A
	// head chunk decodes from its start whatever the window, so the wider
	// read costs little more than the narrow one.
	shared map[string]time.Duration

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

// arena is the arrays of one read: its series and their float samples.
type arena struct {
	series []promql.Series
	floats []promql.FPoint
}

func (a arena) size() int {
	return cap(a.series)*int(unsafe.Sizeof(promql.Series{})) + cap(a.floats)*int(unsafe.Sizeof(promql.FPoint{}))
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
	return arena{series: ar.series[:0], floats: ar.floats[:0]}
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
}

// shareGroupReads returns an evaluation function that evaluates a group as
// Prometheus does, with the reads its rules have in common shared; lookback
// is the rules' engine's lookback delta.
func shareGroupReads(lookback time.Duration) rules.GroupEvalIterationFunc {
	arenas := &readArenas{free: map[arenaKey]arena{}}
	return func(ctx context.Context, g *rules.Group, ts time.Time) {
		shared := sharedSelectors(g.Rules(), lookback)
		if len(shared) == 0 {
			rules.DefaultEvalIterationFunc(ctx, g, ts)
			return
		}
		reads := &groupReads{shared: shared, arenas: arenas, reads: map[string][]*sharedRead{}}
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

// sharedSelectors are the selectors (by label matchers) that occur at least
// twice in the rules that may share, with the longest reach of their uses;
// reading a selector used once through the cache would only cost more.
func sharedSelectors(rs []rules.Rule, lookback time.Duration) map[string]time.Duration {
	count := map[string]int{}
	reach := map[string]time.Duration{}
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
				count[k]++
				d := window
				if d == 0 || n.Anchored || n.Smoothed {
					d += lookback
				}
				reach[k] = max(reach[k], d)
				window = 0
			}
			return nil
		})
	}
	shared := map[string]time.Duration{}
	for k, n := range count {
		if n > 1 {
			shared[k] = reach[k]
		}
	}
	return shared
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
	reach, ok := reads.shared[key]
	if !ok {
		return under.Select(ctx, sortSeries, hints, ms...)
	}
	if r := reads.find(key, sortSeries, hints.Start, hints.End); r != nil {
		return r.slice(hints.Start, hints.End)
	}
	if reads.spent() {
		return under.Select(ctx, sortSeries, hints, ms...)
	}
	// Read as far back as the selector's longest use in the group, through
	// a store querier opened that far back.
	wide := *hints
	wide.Start = min(hints.Start, hints.End-reach.Milliseconds())
	wideStore := under
	if wide.Start < q.mint {
		if wideStore, err = q.open(wide.Start, q.maxt); err != nil {
			return storage.ErrSeriesSet(err)
		}
	}
	r, err := reads.load(wideStore.Select(ctx, sortSeries, &wide, ms...), arenaKey{selector: key, reach: wide.End - wide.Start}, sortSeries, wide.Start, wide.End)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if r == nil { // over budget: the store answers as without sharing
		return under.Select(ctx, sortSeries, hints, ms...)
	}
	reads.add(key, r)
	return r.slice(hints.Start, hints.End)
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
	r := &sharedRead{sorted: sorted, mint: mint, maxt: maxt, key: key, series: ar.series}
	floats := ar.floats
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		d := promql.Series{Metric: s.Labels().Copy()}
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
	r.warnings, r.arena = ss.Warnings(), arena{series: r.series, floats: floats}
	return r, nil
}

// slice is the read narrowed to [mint, maxt], as the store would answer a
// Select over that range: samples outside it trimmed, series without any
// left out.
func (r *sharedRead) slice(mint, maxt int64) storage.SeriesSet {
	set := &decodedSet{warnings: r.warnings, series: make([]promql.Series, 0, len(r.series))}
	for _, s := range r.series {
		d := promql.Series{Metric: s.Metric, Floats: within(s.Floats, floatT, mint, maxt), Histograms: within(s.Histograms, histogramT, mint, maxt)}
		if len(d.Floats)+len(d.Histograms) > 0 {
			set.series = append(set.series, d)
		}
	}
	return set
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
	series   []promql.Series
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

func (s *decodedSet) At() storage.Series                { return promql.NewStorageSeries(s.series[s.i-1]) }
func (s *decodedSet) Err() error                        { return nil }
func (s *decodedSet) Warnings() annotations.Annotations { return s.warnings }
