// Package fastrate answers the `sum by/without (...) (rate|increase(x[w]))`
// of dashboard range queries (alone, or under topk, histogram_quantile,
// other aggregations and binary operators) at a fraction of the engine's
// cost, with the engine's answer bit for bit.
//
// The engine computes each step's rate from a fresh copy of the window's
// samples and walks all of them for counter resets: with 15 s samples and
// a 5 m window, twenty per step per series. Here each series is read once
// (with the engine's own iterator calls, so a merged series yields the
// same samples), and a window's increase is last − first plus the value
// before each reset in it, in the engine's order, so it costs O(1) when
// nothing reset and rounds as the engine's loop does. The extrapolation
// is the engine's expressions in its order, and the sum is its Kahan sum
// over the series in the order the engine's selector returns them.
//
// It also answers `count|sum by/without (...) (x)` of an instant vector
// selector, the engine's `count({__name__=~".+"})` costing it a matrix of
// every series' value at every step before it counts them: here each
// series is read once, through the engine's own memoized iterator with
// the engine's calls (the latest sample in each step's lookback, none if
// it is a staleness marker), and counted or Kahan-summed into its group
// as it is read.
//
// Everything around the sum stays the engine's: the query is rewritten
// with each such sum replaced by a placeholder selector, which the engine
// evaluates through a querier that computes the sum when selected, as a
// series per group with a point at every step it has a value and a
// staleness marker at the others, so the engine reads exactly those
// values. The engine thus still runs the query: the query tracker's
// limits, the timeout, the result's sort and the operators around the sum
// are its own. Whatever this package does not reproduce falls back to the
// engine answering the original query: histograms, annotations (the
// rewritten query's positions would differ), storage warnings and errors,
// the sample limit, per-step statistics, start timestamps, `@`.
package fastrate

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/stats"

	"github.com/vispyr/vispyr/internal/metrics/rangeparts"
)

// Options mirror the wrapped engine's.
type Options struct {
	// MaxSamples is the engine's EngineOpts.MaxSamples: a query that could
	// reach it is left to the engine, which answers with its error.
	MaxSamples int
	// Parser parses queries as the engine does; nil: the default parser.
	Parser parser.Parser
}

// Engine is a promql.QueryEngine that computes the rate sums of range
// queries itself and leaves the rest to the engine it wraps.
type Engine struct {
	inner promql.QueryEngine
	opts  Options
}

var _ promql.QueryEngine = (*Engine)(nil)

// New wraps inner.
func New(inner promql.QueryEngine, opts Options) *Engine {
	if opts.Parser == nil {
		opts.Parser = parser.NewParser(parser.Options{})
	}
	return &Engine{inner: inner, opts: opts}
}

// NewInstantQuery is the wrapped engine's.
func (e *Engine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	return e.inner.NewInstantQuery(ctx, q, opts, qs, ts)
}

// NewRangeQuery returns a query whose rate sums this package computes, or
// the wrapped engine's query when it has none.
func (e *Engine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	// The original query, built first: the engine validates the request
	// and answers errors as it would alone; it also answers when this
	// package falls back.
	whole, err := e.inner.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	if err != nil {
		return nil, err
	}
	stmt, ok := whole.Statement().(*parser.EvalStmt)
	if !ok || step <= 0 || step%time.Millisecond != 0 || !rangeparts.StepSafe(stmt.Expr) ||
		(opts != nil && (opts.EnablePerStepStats() || (opts.UseStartTimestamps() != nil && *opts.UseStartTimestamps()))) {
		return whole, nil
	}
	rewritten, targets := rewrite(e.opts.Parser, qs)
	if len(targets) == 0 {
		return whole, nil
	}
	for i := range targets { // the engine's, or the query's own
		targets[i].lookback = stmt.LookbackDelta.Milliseconds()
	}
	mint, maxt := promql.FindMinMaxTime(stmt)
	fq := &query{whole: whole, maxSamples: e.opts.MaxSamples}
	src := &source{Queryable: q, mint: mint, maxt: maxt, targets: targets, q: fq,
		grid: grid{start: timeMilliseconds(start), end: timeMilliseconds(end), interval: step.Milliseconds()}}
	fast, err := e.inner.NewRangeQuery(ctx, src, opts, rewritten, start, end, step)
	if err != nil {
		return whole, nil
	}
	fq.fast = fast
	return fq, nil
}

// query runs the rewritten query, or the original one when the rewritten
// one falls back.
type query struct {
	whole, fast promql.Query
	maxSamples  int

	closeOnce sync.Once
	live      rangeparts.Run
	fellBack  bool // the original query answered

	mu      sync.Mutex
	samples int64 // the targets' windows' samples, as the engine counts them
	points  int64 // the placeholders' points the engine counted instead
	peaks   int   // the sum of the most samples the engine would hold for each target
	// read counts the rate targets by how their samples were read, for
	// tests: whole chunks, or the series' iterators.
	read struct{ chunks, iterators int }
}

// Exec runs the rewritten query; the original when it falls back or has
// annotations (whose positions are the rewritten query's).
func (q *query) Exec(ctx context.Context) *promql.Result {
	ctx, cancel := q.live.Start(ctx)
	defer cancel()
	res := q.fast.Exec(ctx)
	if res.Err == nil && len(res.Warnings) == 0 && q.underLimit() {
		q.live.SetStats(q.fastStats())
		return res
	}
	if res.Err != nil && !errors.Is(res.Err, errFallback) {
		var timeout promql.ErrQueryTimeout
		var canceled promql.ErrQueryCanceled
		if errors.As(res.Err, &timeout) || errors.As(res.Err, &canceled) || ctx.Err() != nil {
			return res // the request's end: the original would meet it too
		}
	}
	q.fellBack = true
	res = q.whole.Exec(ctx)
	q.live.SetStats(q.whole.Stats())
	return res
}

// underLimit reports whether the original query stays under the engine's
// sample limit, conservatively: each target's own count is exact, but
// beside it the engine holds what the rest of the query holds (other
// selectors, other targets' results), which the rewritten query's peak
// bounds. Over it, the engine answers the original, or refuses it.
func (q *query) underLimit() bool {
	s := q.fast.Stats()
	if s == nil || s.Samples == nil {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return s.Samples.PeakSamples+q.peaks <= q.maxSamples
}

// fastStats are the rewritten query's statistics with the samples of the
// targets' windows counted as the engine counts them, in place of the
// placeholders' points.
func (q *query) fastStats() *stats.Statistics {
	s := q.fast.Stats()
	if s == nil || s.Samples == nil {
		return s
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := *s
	samples := *s.Samples
	samples.TotalSamples += q.samples - q.points
	out.Samples = &samples
	return &out
}

func (q *query) counted(c computed, rate bool) {
	var points int64 // the engine counts the values it selects
	for _, s := range c.series {
		for _, p := range s.Floats {
			if !value.IsStaleNaN(p.F) {
				points++
			}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.samples += c.samples
	q.points += points
	q.peaks += c.peak
	switch {
	case rate && c.chunks:
		q.read.chunks++
	case rate:
		q.read.iterators++
	}
}

// Close releases both queries.
func (q *query) Close() {
	q.closeOnce.Do(func() {
		q.fast.Close()
		q.whole.Close()
	})
}

// Statement is the original query's.
func (q *query) Statement() parser.Statement { return q.whole.Statement() }

// Stats are those of the query that answered.
func (q *query) Stats() *stats.Statistics { return q.live.Stats(q.whole.Stats) }

// Cancel stops the query running.
func (q *query) Cancel() { q.live.Cancel() }

func (q *query) String() string { return q.whole.String() }

// source is the storage the rewritten query reads: the original's, whose
// querier covers the original query's time range (the placeholders'
// lookback is not the targets' range: the blocks merged, and so the order
// series reach the sums, must be the original's), plus the placeholders.
type source struct {
	storage.Queryable
	mint, maxt int64
	targets    []target
	grid       grid
	q          *query
}

func (s *source) Querier(int64, int64) (storage.Querier, error) {
	inner, err := s.Queryable.Querier(s.mint, s.maxt)
	if err != nil {
		return nil, err
	}
	return &querier{Querier: inner, src: s}, nil
}

type querier struct {
	storage.Querier
	src *source

	mu sync.Mutex
	cq storage.ChunkQuerier // opened on a rate target's first Select
}

// chunkQuerier is the storage's chunk querier over the querier's time
// range when its sources are disjoint there, or nil.
func (q *querier) chunkQuerier(ctx context.Context) storage.ChunkQuerier {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cq == nil {
		d, ok := q.src.Queryable.(DisjointChunkQueryable)
		if !ok {
			return nil
		}
		q.cq = d.DisjointChunkQuerier(ctx, q.src.mint, q.src.maxt)
	}
	return q.cq
}

// warned reports whether the querier the engine reads through adds
// warnings to every answer (the storage's, such as a WAL still replaying),
// asked with a selector no series matches.
func (q *querier) warned(ctx context.Context) bool {
	set := q.Querier.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, placeholderLabel, "none"))
	for set.Next() {
	}
	return len(set.Warnings()) > 0 || set.Err() != nil
}

// Close closes the storage's queriers.
func (q *querier) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	err := q.Querier.Close()
	if q.cq != nil {
		err = errors.Join(err, q.cq.Close())
	}
	return err
}

// Select answers a placeholder with its target's sums, computed when the
// engine expands it; other selectors from storage.
func (q *querier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	if len(ms) != 1 || ms[0].Name != placeholderLabel {
		return q.Querier.Select(ctx, sorted, hints, ms...)
	}
	i, err := strconv.Atoi(ms[0].Value)
	if err != nil || i < 0 || i >= len(q.src.targets) {
		return storage.ErrSeriesSet(errFallback)
	}
	return &lazySet{compute: func() ([]promql.Series, error) {
		t := &q.src.targets[i]
		var cq storage.ChunkQuerier
		if !t.instant && !q.warned(ctx) {
			cq = q.chunkQuerier(ctx)
		}
		c, err := t.compute(ctx, q.Querier, cq, q.src.grid, q.src.q.maxSamples)
		if err != nil {
			return nil, err
		}
		q.src.q.counted(c, !t.instant)
		return c.series, nil
	}}
}

// lazySet computes its series on the first Next.
type lazySet struct {
	compute func() ([]promql.Series, error)
	series  []promql.Series
	i       int
	done    bool
	err     error
}

func (s *lazySet) Next() bool {
	if !s.done {
		s.done = true
		s.series, s.err = s.compute()
		return s.err == nil && len(s.series) > 0
	}
	if s.err != nil || s.i+1 >= len(s.series) {
		return false
	}
	s.i++
	return true
}

func (s *lazySet) At() storage.Series                { return promql.NewStorageSeries(s.series[s.i]) }
func (s *lazySet) Err() error                        { return s.err }
func (s *lazySet) Warnings() annotations.Annotations { return nil }

// timeMilliseconds is the engine's conversion of the query's times.
func timeMilliseconds(t time.Time) int64 { return t.UnixNano() / int64(time.Millisecond) }
