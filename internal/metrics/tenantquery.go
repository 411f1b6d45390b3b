package metrics

import (
	"context"
	"errors"
	"sync"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/vispyr/vispyr/internal/metrics/fastrate"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// The Storage is itself a Queryable, ChunkQueryable, ExemplarQueryable and
// Appendable: every call reads or writes the TSDB of the tenant in its
// context. Queriers are opened lazily, since Prometheus's interfaces hand
// the context only to Select and the label calls. A tenant that never wrote
// reads as empty.
var (
	_ storage.SampleAndChunkQueryable = (*Storage)(nil)
	_ storage.ExemplarQueryable       = (*Storage)(nil)
	_ storage.Appendable              = (*Storage)(nil)
	_ fastrate.DisjointChunkQueryable = (*Storage)(nil)
	_ storage.AppendableV2            = (*Storage)(nil)
)

// Querier returns a querier over [mint, maxt] of the tenant in each call's context.
func (s *Storage) Querier(mint, maxt int64) (storage.Querier, error) {
	return &tenantQuerier{lazy: lazy[storage.Querier]{s: s, open: func(t *tenantDB) (storage.Querier, error) {
		return t.querier(mint, maxt)
	}, empty: storage.NoopQuerier}}, nil
}

// ChunkQuerier is Querier for chunks (remote read).
func (s *Storage) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	return &tenantChunkQuerier{lazy: lazy[storage.ChunkQuerier]{s: s, open: func(t *tenantDB) (storage.ChunkQuerier, error) {
		return t.chunkQuerier(mint, maxt)
	}, empty: storage.NoopChunkedQuerier}}, nil
}

// DisjointChunkQuerier is a chunk querier over [mint, maxt] of ctx's
// tenant when its TSDB's blocks, head and out-of-order head do not overlap
// there and no long-term block holds any of it (fastrate then reads rate
// windows from whole chunks); nil otherwise.
func (s *Storage) DisjointChunkQuerier(ctx context.Context, mint, maxt int64) storage.ChunkQuerier {
	t := s.lookup(pipeline.Tenant(ctx))
	if t == nil {
		return nil
	}
	if t.lt != nil {
		for _, m := range t.lt.Metas() {
			if m.MaxTime >= mint && m.MinTime <= maxt {
				return nil
			}
		}
	}
	if t.own == nil {
		return fastrate.DisjointChunkQuerier(t.db, mint, maxt)
	}
	return t.ownDisjointChunkQuerier(mint, maxt)
}

// ownDisjointChunkQuerier is DisjointChunkQuerier beside an own head: the
// TSDB's blocks must not overlap each other nor the own head, and the
// TSDB's head must hold no floats in the range (floats the own head refused
// went there). Its histograms may overlap anything: a series' histogram
// chunks send fastrate back to the iterators, which merge them.
func (t *tenantDB) ownDisjointChunkQuerier(mint, maxt int64) storage.ChunkQuerier {
	// Opened first: whatever compaction changes after, no two sources
	// overlapped when it took its blocks, or the checks below see one.
	q, err := t.chunkQuerier(mint, maxt)
	if err != nil {
		return nil
	}
	if t.own.floatsInDBHead(t.db, mint, maxt) || !fastrate.Disjoint(t.db, mint, maxt, t.own.head.MinTime()) {
		q.Close()
		return nil
	}
	return q
}

// ExemplarQuerier returns the exemplars of ctx's tenant.
func (s *Storage) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	t := s.lookup(pipeline.Tenant(ctx))
	if t == nil {
		return noExemplars{}, nil
	}
	q, err := t.db.ExemplarQuerier(ctx)
	if err != nil || t.own == nil {
		return q, err
	}
	oq, err := t.own.exemplars.ExemplarQuerier(ctx)
	if err != nil {
		return nil, err
	}
	return mergedExemplars{q, oq}, nil
}

// Appender appends to ctx's tenant's TSDB, and its own head if it has one
// (the generator writes span metrics with the tenant of the spans).
func (s *Storage) Appender(ctx context.Context) storage.Appender {
	t, err := s.tenant(pipeline.Tenant(ctx))
	if err != nil {
		return errAppender{err}
	}
	return s.watchedAppender(ctx, t)
}

// AppenderV2 is Appender for the V2 interface.
func (s *Storage) AppenderV2(ctx context.Context) storage.AppenderV2 {
	t, err := s.tenant(pipeline.Tenant(ctx))
	if err != nil {
		return errAppenderV2{err}
	}
	return s.watchedAppenderV2(ctx, t)
}

// lazy opens one querier per tenant on first use and closes them all.
type lazy[Q storage.LabelQuerier] struct {
	s     *Storage
	open  func(*tenantDB) (Q, error)
	empty func() Q

	mu     sync.Mutex
	opened map[*tenantDB]Q
}

func (l *lazy[Q]) get(ctx context.Context) (Q, error) {
	t := l.s.lookup(pipeline.Tenant(ctx))
	if t == nil {
		return l.empty(), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if q, ok := l.opened[t]; ok {
		return q, nil
	}
	q, err := l.open(t)
	if err != nil {
		return q, err
	}
	if l.opened == nil {
		l.opened = map[*tenantDB]Q{}
	}
	l.opened[t] = q
	return q, nil
}

func (l *lazy[Q]) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q, err := l.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	return q.LabelValues(ctx, name, hints, ms...)
}

func (l *lazy[Q]) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q, err := l.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	return q.LabelNames(ctx, hints, ms...)
}

func (l *lazy[Q]) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, q := range l.opened {
		errs = append(errs, q.Close())
	}
	l.opened = nil
	return errors.Join(errs...)
}

type tenantQuerier struct{ lazy[storage.Querier] }

// Select asks the TSDB for sorted series for the series API too (its
// hint's Func "series"): for one matcher set the API asks for them unsorted
// and answers in the order it gets. The TSDB's blocks hand them out in label
// order but its head in the order the series were created, so the same
// series would come back in another order once the head is written to blocks
// (after a restart with a background replay, or a head compaction), and a
// limit would keep other series. The PromQL engine sorts what it returns
// itself, so its selections stay unsorted, without the cost.
func (q *tenantQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	inner, err := q.get(ctx)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if hints != nil && hints.Func == seriesLookup {
		sortSeries = true
	}
	return inner.Select(ctx, sortSeries, hints, ms...)
}

// seriesLookup is the Func of the hints of the series API's selections.
const seriesLookup = "series"

type tenantChunkQuerier struct{ lazy[storage.ChunkQuerier] }

func (q *tenantChunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	inner, err := q.get(ctx)
	if err != nil {
		return storage.ErrChunkSeriesSet(err)
	}
	return inner.Select(ctx, sortSeries, hints, ms...)
}

type noExemplars struct{}

func (noExemplars) Select(int64, int64, ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	return []exemplar.QueryResult{}, nil
}

// errAppender fails every call with the error that kept the tenant's TSDB
// from opening (an invalid tenant ID: 400).
type errAppender struct{ err error }

func (a errAppender) Append(storage.SeriesRef, labels.Labels, int64, float64) (storage.SeriesRef, error) {
	return 0, a.err
}
func (errAppender) SetOptions(*storage.AppendOptions) {}
func (a errAppender) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, a.err
}
func (a errAppender) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, a.err
}
func (a errAppender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, a.err
}
func (a errAppender) UpdateMetadata(storage.SeriesRef, labels.Labels, metadata.Metadata) (storage.SeriesRef, error) {
	return 0, a.err
}
func (a errAppender) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, a.err
}
func (a errAppender) Commit() error   { return a.err }
func (a errAppender) Rollback() error { return nil }

// errAppenderV2 is errAppender for the V2 interface.
type errAppenderV2 struct{ err error }

func (a errAppenderV2) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AOptions) (storage.SeriesRef, error) {
	return 0, a.err
}
func (a errAppenderV2) Commit() error   { return a.err }
func (a errAppenderV2) Rollback() error { return nil }
