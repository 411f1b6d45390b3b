package longterm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/prometheus/prometheus/util/annotations"
)

// querier reads [mint, maxt] of the blocks it holds; Close lets them go.
type querier struct {
	blocks     []*block
	mint, maxt int64
}

var _ storage.Querier = (*querier)(nil)

func (q *querier) Close() error {
	for _, b := range q.blocks {
		b.readers.Done()
	}
	q.blocks = nil
	return nil
}

func (q *querier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	sets := make([]storage.SeriesSet, 0, len(q.blocks))
	for _, b := range q.blocks {
		p, err := tsdb.PostingsForMatchers(ctx, b.ix, ms...)
		if err != nil {
			return storage.ErrSeriesSet(err)
		}
		// Series refs follow the order the series were written in: sorted.
		ds, aggr := b.pick(hints)
		sets = append(sets, &blockSeriesSet{b: b, p: p, mint: mint, maxt: maxt, ds: ds, aggr: aggr})
	}
	if len(sets) == 1 {
		return sets[0]
	}
	return storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
}

// aggrAvg is avg_over_time's pseudo-aggregate: each window's sum / count.
const aggrAvg = numAggrs

// aggregateFor is the aggregate over which PromQL's function f answers as
// over the raw samples (downsample.go); false when there is none.
func aggregateFor(f string) (int, bool) {
	switch f {
	case "rate", "increase":
		return aggrCounter, true
	case "min_over_time":
		return aggrMin, true
	case "max_over_time":
		return aggrMax, true
	case "sum_over_time":
		return aggrSum, true
	case "avg_over_time":
		return aggrAvg, true
	}
	return 0, false
}

// pick chooses the coarsest of b's resolutions that a selection can read
// instead of the raw samples: its function must have an aggregate, and
// its range and the query's step must each span downsampleFactor windows
// (instant queries, step 0, always read the raw samples).
func (b *block) pick(h *storage.SelectHints) (*downsampled, int) {
	if h == nil {
		return nil, 0
	}
	aggr, ok := aggregateFor(h.Func)
	if !ok {
		return nil, 0
	}
	for _, d := range b.downsample {
		if h.Step >= downsampleFactor*d.res && h.Range >= downsampleFactor*d.res {
			return d, aggr
		}
	}
	return nil, 0
}

func (q *querier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var all [][]string
	for _, b := range q.blocks {
		var vals []string
		var err error
		if len(ms) == 0 {
			vals, err = b.ix.SortedLabelValues(ctx, name, hints)
		} else {
			vals, err = labelValuesFor(ctx, b.ix, name, ms)
		}
		if err != nil {
			return nil, nil, err
		}
		all = append(all, vals)
	}
	return limit(mergeSorted(all), hints), nil, nil
}

func (q *querier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var all [][]string
	for _, b := range q.blocks {
		var names []string
		var err error
		if len(ms) == 0 {
			names, err = b.ix.LabelNames(ctx)
		} else {
			var p index.Postings
			if p, err = tsdb.PostingsForMatchers(ctx, b.ix, ms...); err == nil {
				names, err = b.ix.LabelNamesFor(ctx, p)
			}
		}
		if err != nil {
			return nil, nil, err
		}
		all = append(all, names)
	}
	var lh *storage.LabelHints
	if hints != nil {
		lh = &storage.LabelHints{Limit: hints.Limit}
	}
	return limit(mergeSorted(all), lh), nil, nil
}

func labelValuesFor(ctx context.Context, ix *index.Reader, name string, ms []*labels.Matcher) ([]string, error) {
	p, err := tsdb.PostingsForMatchers(ctx, ix, ms...)
	if err != nil {
		return nil, err
	}
	seen := map[string]struct{}{}
	var b labels.ScratchBuilder
	var chks []chunks.Meta
	for p.Next() {
		if err := ix.Series(p.At(), &b, &chks); err != nil {
			return nil, err
		}
		if v := b.Labels().Get(name); v != "" {
			seen[v] = struct{}{}
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	vals := make([]string, 0, len(seen))
	for v := range seen {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	return vals, nil
}

func mergeSorted(lists [][]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func limit(vals []string, hints *storage.LabelHints) []string {
	if hints != nil && hints.Limit > 0 && len(vals) > hints.Limit {
		return vals[:hints.Limit]
	}
	return vals
}

// blockSeriesSet yields the series of one block that have samples in
// [mint, maxt]; their columns are decoded only when iterated.
type blockSeriesSet struct {
	b          *block
	p          index.Postings
	mint, maxt int64
	ds         *downsampled // nil: the raw samples
	aggr       int
	builder    labels.ScratchBuilder
	chks       []chunks.Meta
	cur        *series
	err        error
}

func (s *blockSeriesSet) Next() bool {
	for s.err == nil && s.p.Next() {
		if s.err = s.b.ix.Series(s.p.At(), &s.builder, &s.chks); s.err != nil {
			return false
		}
		if len(s.chks) != 1 || s.chks[0].MaxTime < s.mint || s.chks[0].MinTime > s.maxt {
			continue
		}
		s.cur = &series{b: s.b, lset: s.builder.Labels(), off: uint64(s.chks[0].Ref), mint: s.mint, maxt: s.maxt, ds: s.ds, aggr: s.aggr}
		return true
	}
	if s.err == nil {
		s.err = s.p.Err()
	}
	return false
}

func (s *blockSeriesSet) At() storage.Series                { return s.cur }
func (s *blockSeriesSet) Err() error                        { return s.err }
func (s *blockSeriesSet) Warnings() annotations.Annotations { return nil }

type series struct {
	b          *block
	lset       labels.Labels
	off        uint64
	mint, maxt int64
	ds         *downsampled
	aggr       int
}

func (s *series) Labels() labels.Labels { return s.lset }

func (s *series) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	ci, ok := it.(*columnIterator)
	if !ok {
		ci = &columnIterator{}
	}
	ci.reset(s)
	return ci
}

// columnIterator iterates one decoded column, clipped to [mint, maxt]:
// Prometheus's list iterator over the samples, with the decode error.
type columnIterator struct {
	chunkenc.Iterator
	ts      []int64
	vs      []float64
	samples floatSamples
	err     error
}

func (it *columnIterator) reset(s *series) {
	it.err = nil
	var err error
	raw := s.ds == nil
	if !raw {
		err = it.decodeAggregate(s)
		raw = errors.Is(err, errNoAggregate) // a gauge keeps no counter points
	}
	if raw {
		var col []byte
		if col, err = s.b.column(s.off); err == nil {
			it.ts, it.vs, err = DecodeColumn(col, it.ts, it.vs)
		}
	}
	it.samples = it.samples[:0]
	if err != nil {
		it.err = err
	} else {
		lo := sort.Search(len(it.ts), func(i int) bool { return it.ts[i] >= s.mint })
		hi := sort.Search(len(it.ts), func(i int) bool { return it.ts[i] > s.maxt })
		for i := lo; i < hi; i++ {
			it.samples = append(it.samples, floatSample{t: it.ts[i], f: it.vs[i]})
		}
	}
	if it.Iterator == nil {
		it.Iterator = storage.NewListSeriesIterator(it.samples)
		return
	}
	it.Iterator.(interface{ Reset(storage.Samples) }).Reset(it.samples)
}

// decodeAggregate decodes the series' aggregate at its resolution.
func (it *columnIterator) decodeAggregate(s *series) error {
	p, err := s.ds.payload(s.off)
	if err != nil {
		return fmt.Errorf("long-term block %s: %w", s.b.dir, err)
	}
	if s.aggr != aggrAvg {
		it.ts, it.vs, err = readAggregate(p, s.aggr, it.ts, it.vs)
		return err
	}
	if it.ts, it.vs, err = readAggregate(p, aggrSum, it.ts, it.vs); err != nil {
		return err
	}
	_, counts, err := readAggregate(p, aggrCount, nil, nil)
	if err != nil || len(counts) != len(it.vs) {
		return errors.Join(err, errCorrupt)
	}
	for i, c := range counts {
		it.vs[i] /= c
	}
	return nil
}

func (it *columnIterator) Err() error { return it.err }

type floatSamples []floatSample

func (s floatSamples) Get(i int) chunks.Sample { return &s[i] }
func (s floatSamples) Len() int                { return len(s) }

type floatSample struct {
	t int64
	f float64
}

func (s *floatSample) T() int64                      { return s.t }
func (s *floatSample) ST() int64                     { return 0 }
func (s *floatSample) F() float64                    { return s.f }
func (s *floatSample) H() *histogram.Histogram       { return nil }
func (s *floatSample) FH() *histogram.FloatHistogram { return nil }
func (s *floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s *floatSample) Copy() chunks.Sample           { c := *s; return &c }

// ChunkQuerier is Querier for chunks (remote read); nil when no block overlaps.
func (s *Store) ChunkQuerier(mint, maxt int64) storage.ChunkQuerier {
	q := s.Querier(mint, maxt)
	if q == nil {
		return nil
	}
	return chunkQuerier{q}
}

type chunkQuerier struct{ storage.Querier }

func (q chunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	if hints != nil {
		// Remote read hands out samples, not a function's answer: raw ones.
		h := *hints
		h.Func = ""
		hints = &h
	}
	return storage.NewSeriesSetToChunkSet(q.Querier.Select(ctx, sortSeries, hints, ms...))
}
