package resultscache

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/stats"

	"github.com/vispyr/vispyr/internal/metrics/rangeparts"
)

// query is a range query served through the cache.
type query struct {
	e          *Engine
	q          storage.Queryable
	opts       promql.QueryOpts
	qs         string
	plan       plan
	start, end int64
	whole      promql.Query // the engine's query over the whole range

	closeOnce sync.Once
	live      rangeparts.Run
}

// Exec answers from the cached extent and runs the engine over the steps
// before and after it.
func (q *query) Exec(ctx context.Context) *promql.Result {
	ctx, cancel := q.live.Start(ctx)
	defer cancel()

	p := q.plan
	gen := q.e.store.generation(p.tenant)
	ext, dataMin := q.e.usable(q.e.store.get(p.key), p.tenant, q.start, q.end)
	var pre, post *result
	var hit promql.Matrix
	if ext == nil {
		// Nothing cached: the whole query, as built.
		if pre = q.run(ctx, q.whole); pre.Err != nil {
			return &pre.Result
		}
	} else {
		hit = ext.slice(max(q.start, ext.from), min(q.end, ext.to))
		if q.start < ext.from {
			if pre = q.runRange(ctx, q.start, ext.from-p.stepMs); pre.Err != nil {
				return &pre.Result
			}
		}
		if q.end > ext.to {
			if post = q.runRange(ctx, ext.to+p.stepMs, q.end); post.Err != nil {
				return &post.Result
			}
		}
	}
	parts := make([]promql.Matrix, 0, 3)
	var warnings annotations.Annotations
	for i, r := range []*result{pre, nil, post} {
		if i == 1 {
			parts = append(parts, hit)
			continue
		}
		if r == nil {
			continue
		}
		m, ok := r.Value.(promql.Matrix)
		if !ok {
			return &r.Result
		}
		parts = append(parts, m)
		warnings.Merge(r.Warnings)
	}
	if len(warnings) > 0 && ext != nil {
		// Annotations summarise every step (counts, time ranges): only the
		// whole query gives them exactly as without the cache.
		r := q.run(ctx, q.whole)
		q.e.m.record(r.steps, 0)
		return &r.Result
	}
	merged := rangeparts.Join(parts)
	computed := q.count(pre) + q.count(post)
	q.e.m.record(computed, (q.end-q.start)/p.stepMs+1-computed)
	// Results with warnings or infos are not kept, so that a cached step
	// never drops an annotation the uncached query would give.
	if computed > 0 && len(warnings) == 0 {
		q.keep(merged, ext, gen, dataMin)
	}
	return &promql.Result{Value: merged, Warnings: warnings}
}

// count is the steps a computed part covered.
func (q *query) count(r *result) int64 {
	if r == nil {
		return 0
	}
	return r.steps
}

// keep stores the steps from the request's start (older cached steps are
// let go, which bounds an extent by the requests that use it) up to the
// newest step outside the freshness window.
func (q *query) keep(merged promql.Matrix, ext *extent, gen uint64, dataMin int64) {
	p := q.plan
	cutoff := q.e.opts.Now().Add(-q.e.opts.Freshness).UnixMilli() - p.ahead
	cutoff = q.start + floorDiv(cutoff-q.start, p.stepMs)*p.stepMs
	to := q.end
	if ext != nil && ext.to > q.end {
		merged = rangeparts.Join([]promql.Matrix{merged, ext.slice(q.end+p.stepMs, ext.to)})
		to = ext.to
	}
	to = min(to, cutoff)
	if q.start > to {
		return
	}
	e := newExtent(rangeparts.Slice(merged, q.start, to), q.start, to, p)
	e.dataMin = dataMin
	q.e.store.put(p.key, p.tenant, gen, e)
}

// runRange runs the engine over steps from..to.
func (q *query) runRange(ctx context.Context, from, to int64) *result {
	sub, err := q.e.inner.NewRangeQuery(ctx, q.q, q.opts, q.qs, time.UnixMilli(from), time.UnixMilli(to),
		time.Duration(q.plan.stepMs)*time.Millisecond)
	if err != nil {
		return &result{Result: promql.Result{Err: err}}
	}
	r := q.runQuery(ctx, sub)
	r.steps = (to-from)/q.plan.stepMs + 1
	return r
}

// run executes the whole query built by NewRangeQuery.
func (q *query) run(ctx context.Context, whole promql.Query) *result {
	r := q.runQuery(ctx, whole)
	r.steps = (q.end-q.start)/q.plan.stepMs + 1
	q.closeWhole()
	return r
}

// runQuery executes an engine query and copies its result out of the
// engine's pooled memory, which its Close hands back.
func (q *query) runQuery(ctx context.Context, sub promql.Query) *result {
	if sub != q.whole {
		defer sub.Close()
	}
	res := sub.Exec(ctx)
	q.live.SetStats(sub.Stats())
	if m, ok := res.Value.(promql.Matrix); ok && res.Err == nil {
		res = &promql.Result{Value: rangeparts.Copy(m), Warnings: res.Warnings}
	}
	return &result{Result: *res}
}

// result is an engine result and the steps it covers.
type result struct {
	promql.Result
	steps int64
}

func floorDiv(a, b int64) int64 {
	d := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		d--
	}
	return d
}

// Close releases the engine query built up front (once: a second Close of
// an engine query would hand its memory back twice).
func (q *query) Close() { q.closeWhole() }

func (q *query) closeWhole() { q.closeOnce.Do(q.whole.Close) }

// Statement is the request's statement.
func (q *query) Statement() parser.Statement { return q.whole.Statement() }

// Stats are the statistics of the last engine query run (an empty set when
// every step came from the cache).
func (q *query) Stats() *stats.Statistics {
	return q.live.Stats(func() *stats.Statistics {
		return &stats.Statistics{Timers: stats.NewQueryTimers(), Samples: stats.NewQuerySamples(false)}
	})
}

// Cancel stops the engine query running.
func (q *query) Cancel() { q.live.Cancel() }

func (q *query) String() string { return q.qs }
