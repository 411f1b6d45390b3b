// Package resultscache caches the results of PromQL range queries, as
// VictoriaMetrics' rollup result cache and Prometheus query frontends do: a
// dashboard that refreshes every few seconds recomputes only the steps it has
// not seen, not the hours before them.
//
// A result is kept per tenant, normalized query, step, grid phase (start
// modulo step) and lookback delta, as one contiguous extent of evaluation
// steps. A request that overlaps the extent runs the engine only over the
// steps on either side and merges. Steps whose input data may still change
// are never kept: those within the freshness window of now (late samples
// still show), and, once the store reports a write older than that window or
// drops data (retention), every step whose input could include it.
//
// Only step-safe queries are cached: each step's value must depend on
// nothing but the data around that step, so no `@` modifier (it pins
// evaluation to the request's start or end). Offsets, negative ones
// included, and subqueries (whose inner grid is aligned to absolute time)
// are step-safe; their reach into the past and future is taken into account.
package resultscache

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/metrics/rangeparts"
)

// Options configure the cache.
type Options struct {
	// MaxBytes bounds the results kept (estimated in-memory size); 0 turns
	// the cache off.
	MaxBytes int64
	// Freshness is how far back from now steps are never cached, so samples
	// that arrive a little late still show.
	Freshness time.Duration
	// LookbackDelta is the engine's default lookback delta (a query may set
	// its own).
	LookbackDelta time.Duration
	// Tenant names the tenant of a query's context.
	Tenant func(context.Context) string
	// MinTime is the oldest timestamp the tenant's store holds; when it
	// rises (retention dropped data) the steps that read the dropped data
	// are forgotten. Nil: data is never dropped.
	MinTime func(tenant string) int64
	// Now is the clock (tests set it); nil: time.Now.
	Now func() time.Time
}

// Engine is a promql.QueryEngine that answers range queries from the cache
// where it can and from the engine it wraps for the rest.
type Engine struct {
	inner  promql.QueryEngine
	opts   Options
	parser parser.Parser
	store  *store
	m      *cacheMetrics
}

var _ promql.QueryEngine = (*Engine)(nil)

// New wraps inner. Every query the cache cannot serve goes to inner as is.
func New(inner promql.QueryEngine, opts Options, reg prometheus.Registerer) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := newMetrics(reg)
	return &Engine{inner: inner, opts: opts, parser: parser.NewParser(parser.Options{}),
		store: newStore(opts.MaxBytes, m), m: m}
}

// NewInstantQuery is the wrapped engine's.
func (e *Engine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	return e.inner.NewInstantQuery(ctx, q, opts, qs, ts)
}

// NewRangeQuery returns a query served through the cache when the query is
// step-safe, and the wrapped engine's query otherwise.
func (e *Engine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	plan, ok := e.plan(qs, opts, start, step)
	if !ok {
		if e.opts.MaxBytes > 0 {
			e.m.requests.WithLabelValues("uncacheable").Inc()
		}
		return e.inner.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	}
	// Build the whole query once: the engine validates it and answers
	// errors exactly as without a cache; it runs only if nothing is cached.
	whole, err := e.inner.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	if err != nil {
		return nil, err
	}
	plan.tenant = e.opts.Tenant(ctx)
	plan.key = plan.tenant + "\x00" + plan.key
	// The engine evaluates at start + k*step up to end: the last such step
	// is the range's end on the cache's grid.
	s, last := start.UnixMilli(), end.UnixMilli()
	last = s + floorDiv(last-s, plan.stepMs)*plan.stepMs
	return &query{e: e, q: q, opts: opts, qs: qs, plan: plan, start: s, end: last, whole: whole}, nil
}

// Uncached is the steps of a range query the cache holds no answer for, as
// ranges of steps: those Exec would have the engine compute if it ran now;
// the whole range when the query is not cacheable or nothing is cached. The
// query guard charges a request for those alone. (When the computed steps
// give annotations Exec runs the whole query again, which Uncached cannot
// foresee.)
func (e *Engine) Uncached(ctx context.Context, qs string, start, end time.Time, step time.Duration) [][2]time.Time {
	whole := [][2]time.Time{{start, end}}
	p, ok := e.plan(qs, nil, start, step)
	if !ok {
		return whole
	}
	p.tenant = e.opts.Tenant(ctx)
	s := start.UnixMilli()
	last := s + floorDiv(end.UnixMilli()-s, p.stepMs)*p.stepMs
	ext, _ := e.usable(e.store.peek(p.tenant+"\x00"+p.key), p.tenant, s, last)
	if ext == nil {
		return whole
	}
	var out [][2]time.Time
	if s < ext.from {
		out = append(out, [2]time.Time{start, time.UnixMilli(ext.from - p.stepMs)})
	}
	if last > ext.to {
		out = append(out, [2]time.Time{time.UnixMilli(ext.to + p.stepMs), end})
	}
	return out
}

// usable is the part of a cached extent that can answer steps from..to of
// tenant's query now (nil: none), and the store's oldest timestamp.
func (e *Engine) usable(ext *extent, tenant string, from, to int64) (*extent, int64) {
	dataMin := int64(math.MinInt64)
	if e.opts.MinTime != nil {
		dataMin = e.opts.MinTime(tenant)
	}
	if ext != nil {
		ext = ext.afterDataMin(dataMin)
	}
	if ext != nil && (ext.to < from || ext.from > to) {
		ext = nil
	}
	return ext, dataMin
}

// Invalidate forgets, for tenant, every cached step whose input may hold a
// sample at or after ts: the store calls it when it accepts a sample older
// than the freshness window (a late or out-of-order write) or deletes data.
func (e *Engine) Invalidate(tenant string, ts int64) {
	if e.opts.MaxBytes <= 0 || ts >= e.opts.Now().Add(-e.opts.Freshness).UnixMilli() {
		return
	}
	e.store.invalidate(tenant, ts)
}

// plan decides whether a query is step-safe and how far from each step its
// input reaches.
type plan struct {
	key           string
	tenant        string
	stepMs        int64
	behind, ahead int64 // a step t reads data in [t-behind, t+ahead]
}

func (e *Engine) plan(qs string, opts promql.QueryOpts, start time.Time, step time.Duration) (plan, bool) {
	if e.opts.MaxBytes <= 0 || step <= 0 || step%time.Millisecond != 0 {
		return plan{}, false
	}
	expr, err := e.parser.ParseExpr(qs)
	if err != nil || !rangeparts.StepSafe(expr) {
		return plan{}, false
	}
	lookback := e.opts.LookbackDelta
	if opts != nil && opts.LookbackDelta() > 0 {
		lookback = opts.LookbackDelta()
	}
	useST := opts != nil && opts.UseStartTimestamps() != nil && *opts.UseStartTimestamps()
	stepMs := step.Milliseconds()
	phase := ((start.UnixMilli() % stepMs) + stepMs) % stepMs
	behind, ahead := reach(expr, lookback)
	key := expr.String() + "\x00" + step.String() + "\x00" + time.Duration(phase*int64(time.Millisecond)).String() +
		"\x00" + lookback.String()
	if useST {
		key += "\x00st"
	}
	return plan{key: key, stepMs: stepMs, behind: behind, ahead: ahead}, true
}

// reach is how far before and after a step the query's selectors read:
// ranges, lookback, offsets (negative ones read ahead) and subqueries.
func reach(expr parser.Expr, lookback time.Duration) (behind, ahead int64) {
	t := time.UnixMilli(1 << 40)
	mint, maxt := promql.FindMinMaxTime(&parser.EvalStmt{Expr: expr, Start: t, End: t, LookbackDelta: lookback})
	if mint == 0 && maxt == 0 {
		return 0, 0 // no selector: no data read
	}
	return max(t.UnixMilli()-mint, 0), max(maxt-t.UnixMilli(), 0)
}

type cacheMetrics struct {
	requests      *prometheus.CounterVec
	steps         *prometheus.CounterVec
	bytes         prometheus.Gauge
	entries       prometheus.Gauge
	evictions     prometheus.Counter
	invalidations prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *cacheMetrics {
	f := promauto.With(reg)
	return &cacheMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_metrics_results_cache_requests_total",
			Help: "Range queries by how the results cache served them: hit (every step cached), partial, miss, uncacheable.",
		}, []string{"result"}),
		steps: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_metrics_results_cache_steps_total",
			Help: "Evaluation steps of cacheable range queries, served from the cache (hit) or computed (miss).",
		}, []string{"result"}),
		bytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "vispyr_metrics_results_cache_bytes",
			Help: "Estimated in-memory size of the cached range query results.",
		}),
		entries: f.NewGauge(prometheus.GaugeOpts{
			Name: "vispyr_metrics_results_cache_entries",
			Help: "Cached range query results.",
		}),
		evictions: f.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_metrics_results_cache_evictions_total",
			Help: "Cached results dropped to stay within metrics.results_cache_max_bytes.",
		}),
		invalidations: f.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_metrics_results_cache_invalidations_total",
			Help: "Writes older than the freshness window (or data dropped) that cut cached results short.",
		}),
	}
}

// record counts one cacheable request's steps computed and served.
func (m *cacheMetrics) record(computed, cached int64) {
	m.steps.WithLabelValues("miss").Add(float64(computed))
	m.steps.WithLabelValues("hit").Add(float64(cached))
	switch {
	case computed == 0:
		m.requests.WithLabelValues("hit").Inc()
	case cached > 0:
		m.requests.WithLabelValues("partial").Inc()
	default:
		m.requests.WithLabelValues("miss").Inc()
	}
}
