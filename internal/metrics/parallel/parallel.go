// Package parallel evaluates a PromQL range query as consecutive runs of
// steps at once, one goroutine each, and joins them: the engine evaluates a
// query on one goroutine, so a dashboard panel over hours of data would
// otherwise use one core however many the machine has.
//
// The answer is the engine's own, bit for bit. Each part is the engine
// evaluating the same query over fewer steps, which in a step-safe query
// (rangeparts.StepSafe) gives every step the same value as the whole query
// does, provided the series reach each aggregation in the same order: every
// part reads through a querier opened over the whole query's time range,
// so it sees the same blocks, merged and ordered as the whole query's are.
// Annotations and errors are taken from the whole query, run once more,
// since they summarise all steps; so is any query whose per-step
// statistics were asked for.
package parallel

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/stats"

	"github.com/vispyr/vispyr/internal/metrics/rangeparts"
)

// Options configure the split.
type Options struct {
	// Parts is the most parts a query is split into (the cores to use);
	// below 2 nothing is split.
	Parts int
	// MinSteps is the fewest steps of a part: shorter queries are split
	// into fewer parts, or run whole. Every part selects its series and
	// reads the chunks at its edges again, which a short part does not
	// repay.
	MinSteps int
}

// Engine is a promql.QueryEngine that runs long step-safe range queries of
// the engine it wraps in parts at once.
type Engine struct {
	inner promql.QueryEngine
	opts  Options
}

var _ promql.QueryEngine = (*Engine)(nil)

// New wraps inner.
func New(inner promql.QueryEngine, opts Options) *Engine {
	return &Engine{inner: inner, opts: opts}
}

// NewInstantQuery is the wrapped engine's.
func (e *Engine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	return e.inner.NewInstantQuery(ctx, q, opts, qs, ts)
}

// NewRangeQuery returns a query that runs in parts when it is long and
// step-safe, and the wrapped engine's query otherwise.
func (e *Engine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	// The whole query, built first: the engine validates the request and
	// answers errors exactly as without the split.
	whole, err := e.inner.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	if err != nil {
		return nil, err
	}
	stmt, ok := whole.Statement().(*parser.EvalStmt)
	if !ok || step <= 0 || step%time.Millisecond != 0 || (opts != nil && opts.EnablePerStepStats()) ||
		!rangeparts.StepSafe(stmt.Expr) {
		return whole, nil
	}
	// The engine's grid: whole milliseconds from the start's millisecond.
	steps := int((end.UnixMilli()-start.UnixMilli())/step.Milliseconds()) + 1
	n := min(e.opts.Parts, steps/max(e.opts.MinSteps, 1))
	if n < 2 {
		return whole, nil
	}
	mint, maxt := promql.FindMinMaxTime(stmt)
	return &query{e: e, whole: whole, q: pinned{q, mint, maxt}, opts: opts, qs: qs,
		start: start.UnixMilli(), step: step.Milliseconds(), steps: steps, parts: n}, nil
}

// pinned opens every querier over the whole query's time range, whatever
// range a part asks for: the blocks it merges, and so the order in which
// series reach the aggregations, are the whole query's. Each Select still
// reads only the chunks of its part (the engine's hints).
type pinned struct {
	storage.Queryable
	mint, maxt int64
}

func (p pinned) Querier(int64, int64) (storage.Querier, error) {
	return p.Queryable.Querier(p.mint, p.maxt)
}

// DisjointChunkQuerier is the storage's (fastrate.DisjointChunkQueryable)
// over the whole query's range, as Querier; nil when it has none.
func (p pinned) DisjointChunkQuerier(ctx context.Context, _, _ int64) storage.ChunkQuerier {
	d, ok := p.Queryable.(interface {
		DisjointChunkQuerier(ctx context.Context, mint, maxt int64) storage.ChunkQuerier
	})
	if !ok {
		return nil
	}
	return d.DisjointChunkQuerier(ctx, p.mint, p.maxt)
}

// query is a range query run in parts.
type query struct {
	e     *Engine
	whole promql.Query
	q     storage.Queryable
	opts  promql.QueryOpts
	qs    string
	start int64 // ms
	step  int64 // ms
	steps int
	parts int

	closeOnce sync.Once
	live      rangeparts.Run
}

// part is one part's outcome, its matrix copied out of the engine's memory.
type part struct {
	res   *promql.Result
	stats *stats.Statistics
}

// Exec runs the parts at once and joins them; it runs the whole query
// instead when a part has annotations or fails for any reason but the
// request's end (a timeout or cancellation the whole query would meet too).
func (q *query) Exec(ctx context.Context) *promql.Result {
	ctx, cancel := q.live.Start(ctx)
	defer cancel()

	parts := make([]part, q.parts)
	var wg sync.WaitGroup
	for i := range parts {
		from, to := q.bounds(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[i] = q.run(ctx, from, to)
		}()
	}
	wg.Wait()

	mats := make([]promql.Matrix, 0, len(parts))
	for _, p := range parts {
		if err := p.res.Err; err != nil && ended(ctx, err) {
			return p.res
		}
		m, ok := p.res.Value.(promql.Matrix)
		if p.res.Err != nil || len(p.res.Warnings) > 0 || !ok {
			return q.runWhole(ctx)
		}
		mats = append(mats, m)
	}
	q.live.SetStats(merge(parts))
	return &promql.Result{Value: rangeparts.Join(mats)}
}

// bounds are part i's first and last steps: the steps split as evenly as
// they go, earlier parts taking one more.
func (q *query) bounds(i int) (from, to time.Time) {
	per, extra := q.steps/q.parts, q.steps%q.parts
	first := i*per + min(i, extra)
	n := per
	if i < extra {
		n++
	}
	return time.UnixMilli(q.start + int64(first)*q.step), time.UnixMilli(q.start + int64(first+n-1)*q.step)
}

// run evaluates the steps from..to with the wrapped engine.
func (q *query) run(ctx context.Context, from, to time.Time) part {
	sub, err := q.e.inner.NewRangeQuery(ctx, q.q, q.opts, q.qs, from, to, time.Duration(q.step)*time.Millisecond)
	if err != nil {
		return part{res: &promql.Result{Err: err}}
	}
	defer sub.Close()
	res := sub.Exec(ctx)
	if m, ok := res.Value.(promql.Matrix); ok && res.Err == nil {
		res = &promql.Result{Value: rangeparts.Copy(m), Warnings: res.Warnings}
	}
	return part{res: res, stats: sub.Stats()}
}

// runWhole runs the query as built, unsplit.
func (q *query) runWhole(ctx context.Context) *promql.Result {
	res := q.whole.Exec(ctx)
	q.live.SetStats(q.whole.Stats())
	return res
}

// ended reports whether err is the request's own end: its deadline, the
// engine's timeout or a cancellation.
func ended(ctx context.Context, err error) bool {
	var timeout promql.ErrQueryTimeout
	var canceled promql.ErrQueryCanceled
	return ctx.Err() != nil || errors.As(err, &timeout) || errors.As(err, &canceled) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// merge sums the parts' sample counts, peaks too: the parts run at once.
func merge(parts []part) *stats.Statistics {
	out := &stats.Statistics{Timers: parts[0].stats.Timers, Samples: stats.NewQuerySamples(false)}
	for _, p := range parts {
		s := p.stats.Samples
		if s == nil {
			continue
		}
		out.Samples.TotalSamples += s.TotalSamples
		out.Samples.SamplesRead += s.SamplesRead
		out.Samples.PeakSamples += s.PeakSamples
	}
	return out
}

// Close releases the whole query built up front.
func (q *query) Close() { q.closeOnce.Do(q.whole.Close) }

// Statement is the whole query's.
func (q *query) Statement() parser.Statement { return q.whole.Statement() }

// Stats are the parts' sample counts summed, or the whole query's when it ran.
func (q *query) Stats() *stats.Statistics {
	return q.live.Stats(q.whole.Stats)
}

// Cancel stops the parts (or the whole query) running.
func (q *query) Cancel() { q.live.Cancel() }

func (q *query) String() string { return q.qs }
