package metrics

import (
	"context"
	"errors"
	"math"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// The query results cache (internal/metrics/resultscache) must forget what
// an old sample changes: every write path into the store reports the oldest
// timestamp each commit carried, per tenant. Scrapes and rule evaluations
// (prommgr) write through DefaultAppendable: a scraped sample keeps the
// timestamp its target exposes (honor_timestamps) and a rule with a
// query_offset records in the past, so they are watched too.

// WatchWrites calls fn after every commit with the commit's oldest sample
// timestamp (start timestamps included). fn must be cheap: it runs on the
// ingest path.
func (s *Storage) WatchWrites(fn func(tenant string, oldest int64)) { s.watch.Store(&fn) }

func (s *Storage) wrote(tenant string, oldest int64) {
	if fn := s.watch.Load(); fn != nil && oldest != math.MaxInt64 {
		(*fn)(tenant, oldest)
	}
}

// MinTime is the oldest timestamp the tenant holds (its first long-term
// block's, else its first TSDB block's, else its head's); it rises when
// retention drops data.
func (s *Storage) MinTime(tenant string) int64 {
	t := s.lookup(tenant)
	if t == nil {
		return math.MinInt64
	}
	return t.minTime()
}

type writeWatch = atomic.Pointer[func(tenant string, oldest int64)]

// oldestInRequest is the oldest sample, histogram or start timestamp of a
// remote-write request.
func oldestInRequest(req *remotewrite.Request) int64 {
	oldest := int64(math.MaxInt64)
	for i := range req.Len() {
		for _, smp := range req.Samples(i) {
			oldest = min(oldest, smp.T, nonZero(smp.ST))
		}
		if req.V2() {
			for _, h := range req.HistogramsV2(i) {
				oldest = min(oldest, h.Timestamp, nonZero(h.StartTimestamp))
			}
		} else {
			for _, h := range req.HistogramsV1(i) {
				oldest = min(oldest, h.Timestamp)
			}
		}
	}
	return oldest
}

func nonZero(ts int64) int64 {
	if ts == 0 {
		return math.MaxInt64
	}
	return ts
}

// watchedAppender reports the oldest timestamp it committed (the generator's
// span metrics).
type watchedAppender struct {
	storage.Appender
	s      *Storage
	tenant string
	oldest int64
}

func (a *watchedAppender) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	a.oldest = min(a.oldest, t)
	return a.Appender.Append(ref, l, t, v)
}

func (a *watchedAppender) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	a.oldest = min(a.oldest, t)
	return a.Appender.AppendHistogram(ref, l, t, h, fh)
}

func (a *watchedAppender) AppendSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64) (storage.SeriesRef, error) {
	a.oldest = min(a.oldest, st)
	return a.Appender.AppendSTZeroSample(ref, l, t, st)
}

func (a *watchedAppender) AppendHistogramSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	a.oldest = min(a.oldest, st)
	return a.Appender.AppendHistogramSTZeroSample(ref, l, t, st, h, fh)
}

func (a *watchedAppender) Commit() error {
	err := a.Appender.Commit()
	a.s.wrote(a.tenant, a.oldest)
	return err
}

// watchedAppenderV2 is watchedAppender for the V2 interface; it keeps
// AppendExemplars when the TSDB's appender has it.
type watchedAppenderV2 struct {
	storage.AppenderV2
	s      *Storage
	tenant string
	oldest int64
}

func (a *watchedAppenderV2) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	a.oldest = min(a.oldest, t, nonZero(st))
	return a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
}

func (a *watchedAppenderV2) AppendExemplars(ref storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	if ea, ok := a.AppenderV2.(storage.ExemplarAppenderV2); ok {
		return ea.AppendExemplars(ref, ls, es)
	}
	return ref, errors.New("append exemplars: the TSDB appender takes none")
}

func (a *watchedAppenderV2) Commit() error {
	err := a.AppenderV2.Commit()
	a.s.wrote(a.tenant, a.oldest)
	return err
}

// DefaultQueryable reads the default tenant's metrics, every head and tier
// of them, for scraping and rules.
func (s *Storage) DefaultQueryable() storage.Queryable { return storage.QueryableFunc(s.def.querier) }

// DefaultAppendable is the default tenant's TSDB for scraping and rules:
// its commits are watched like every other write path's.
func (s *Storage) DefaultAppendable() storage.AppendableV2 { return defaultAppendable{s} }

type defaultAppendable struct{ s *Storage }

func (d defaultAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return d.s.watchedAppenderV2(ctx, d.s.def)
}

func (s *Storage) watchedAppender(ctx context.Context, t *tenantDB) storage.Appender {
	app := t.appender(ctx)
	if s.watch.Load() == nil {
		return app
	}
	return &watchedAppender{Appender: app, s: s, tenant: t.id, oldest: math.MaxInt64}
}

func (s *Storage) watchedAppenderV2(ctx context.Context, t *tenantDB) storage.AppenderV2 {
	app := t.appenderV2(ctx)
	if s.watch.Load() == nil {
		return app
	}
	return &watchedAppenderV2{AppenderV2: app, s: s, tenant: t.id, oldest: math.MaxInt64}
}
