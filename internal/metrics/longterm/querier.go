package longterm

import (
	"context"
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
		sets = append(sets, &blockSeriesSet{b: b, p: p, mint: mint, maxt: maxt})
	}
	if len(sets) == 1 {
		return sets[0]
	}
	return storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
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
		s.cur = &series{b: s.b, lset: s.builder.Labels(), off: uint64(s.chks[0].Ref), mint: s.mint, maxt: s.maxt}
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
	col, err := s.b.column(s.off)
	if err == nil {
		it.ts, it.vs, err = DecodeColumn(col, it.ts, it.vs)
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
	return storage.NewSeriesSetToChunkSet(q.Querier.Select(ctx, sortSeries, hints, ms...))
}
