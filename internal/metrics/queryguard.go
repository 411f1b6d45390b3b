package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/limits"
)

// bytesPerPoint is what one float point costs the engine (promql.FPoint).
const bytesPerPoint = 16

// subqueryDefaultStep is the step of a subquery written without one
// (`[5m:]`): Prometheus's global evaluation interval, 1m by default.
const subqueryDefaultStep = time.Minute

// estimateScrapeInterval is assumed where the TSDB cannot sample a
// selector's density.
const estimateScrapeInterval = 15 * time.Second

// queryGuard refuses a PromQL query before the engine allocates anything
// when the points it would hold, estimated from the request and the AST,
// exceed the sample or memory limits. The engine's own max_samples check
// fires only once the memory is taken: a subquery such as
// `max_over_time(vector(1)[30d:1ms])` grew to 24 GB before it did.
// Admitted queries hold their estimate in a budget shared by all queries.
type queryGuard struct {
	next       http.Handler
	queryable  storage.Queryable
	parser     parser.Parser
	lookback   time.Duration
	maxSamples int64
	maxBytes   int64
	shared     *limits.Inflight
	sharedMax  int64
	// uncached is the steps of a range query the results cache cannot
	// answer (resultscache.Engine.Uncached); nil: every step is computed.
	uncached func(ctx context.Context, qs string, start, end time.Time, step time.Duration) [][2]time.Time
}

func (g *queryGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" && r.URL.Path != "/api/v1/query_range" {
		g.next.ServeHTTP(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		g.next.ServeHTTP(w, r) // the API answers malformed requests itself
		return
	}
	start, end, step, ok := queryRange(r)
	if !ok {
		g.next.ServeHTTP(w, r)
		return
	}
	points, err := g.charge(r.Context(), r.FormValue("query"), start, end, step)
	if err != nil {
		g.next.ServeHTTP(w, r) // parse errors and the like: the API's own answer
		return
	}
	bytes := satMul(points, bytesPerPoint)
	switch {
	case points > g.maxSamples:
		writeAPIError(w, http.StatusUnprocessableEntity, "execution", fmt.Sprintf(
			"query processing would load too many samples into memory in query execution: an estimated %d samples, over metrics.query_max_samples (%d)",
			points, g.maxSamples))
		return
	case bytes > g.maxBytes:
		writeAPIError(w, http.StatusUnprocessableEntity, "execution", fmt.Sprintf(
			"query processing would load too many samples into memory in query execution: an estimated %d bytes, over metrics.query_max_memory_bytes (%d)",
			bytes, g.maxBytes))
		return
	}
	if !g.shared.Acquire(bytes) {
		w.Header().Set("Retry-After", "5")
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", fmt.Sprintf(
			"queries running now hold metrics.query_memory_bytes (%d); this one needs an estimated %d bytes: retry later",
			g.sharedMax, bytes))
		return
	}
	defer g.shared.Release(bytes)
	g.next.ServeHTTP(w, r)
}

// charge is the points a request would hold: for a range query, only over
// the steps the results cache cannot answer, so a dashboard refresh that the
// cache answers costs no series lookup here.
func (g *queryGuard) charge(ctx context.Context, query string, start, end time.Time, step time.Duration) (int64, error) {
	if step <= 0 || g.uncached == nil {
		return g.estimate(ctx, query, start, end, step)
	}
	var total int64
	for _, r := range g.uncached(ctx, query, start, end, step) {
		points, err := g.estimate(ctx, query, r[0], r[1], step)
		if err != nil {
			return 0, err
		}
		total = satAdd(total, points)
	}
	return total, nil
}

// estimate returns the points the query would hold: the storage samples its
// selectors read (Prometheus's own estimator) plus the points computed
// without storage (literals, vector(), time()) at every step of the
// innermost subquery grid.
func (g *queryGuard) estimate(ctx context.Context, query string, start, end time.Time, step time.Duration) (int64, error) {
	expr, err := g.parser.ParseExpr(query)
	if err != nil {
		return 0, err
	}
	expr, err = promql.PreprocessExpr(expr, start, end, step)
	if err != nil {
		return 0, err
	}
	var computed int64
	parser.Inspect(expr, func(node parser.Node, path []parser.Node) error {
		switch n := node.(type) {
		case *parser.NumberLiteral, *parser.StringLiteral:
			computed = satAdd(computed, gridSteps(start, end, step, path))
		case *parser.SubqueryExpr:
			// The subquery's result: its own grid, at least one series.
			computed = satAdd(computed, gridSteps(start, end, step, append(path[:len(path):len(path)], n)))
		case *parser.Call:
			if len(n.Args) == 0 {
				computed = satAdd(computed, gridSteps(start, end, step, path))
			}
		}
		return nil
	})
	if computed > g.maxSamples {
		return computed, nil // no need to ask the storage
	}
	cost, _, err := promql.EstimateCost(ctx, g.queryable, g.parser, query, start, end, step,
		g.lookback, subqueryDefaultStep, estimateScrapeInterval)
	if err != nil {
		return 0, err
	}
	return satAdd(computed, cost.SamplesRead), nil
}

// gridSteps counts the points a node materializes per series: the query's
// steps, replaced by each enclosing subquery's own grid, outermost first. A
// step-invariant expression is computed once but still copied to every
// step, so it counts in full.
func gridSteps(start, end time.Time, step time.Duration, path []parser.Node) int64 {
	s, e := start.UnixMilli(), end.UnixMilli()
	interval := max(step.Milliseconds(), 1)
	if step <= 0 {
		e = s
	}
	for _, node := range path {
		switch n := node.(type) {
		case *parser.SubqueryExpr:
			if n.Timestamp != nil {
				s, e = *n.Timestamp, *n.Timestamp
			}
			e -= n.OriginalOffset.Milliseconds()
			s = satAdd(s-n.OriginalOffset.Milliseconds(), -n.Range.Milliseconds())
			interval = max(n.Step.Milliseconds(), 1)
			if n.Step <= 0 {
				interval = subqueryDefaultStep.Milliseconds()
			}
		}
	}
	if e < s {
		return 0
	}
	return (e-s)/interval + 1
}

// queryRange reads the time parameters as the API does: time for an
// instant query (default now), start, end and step for a range query.
func queryRange(r *http.Request) (start, end time.Time, step time.Duration, ok bool) {
	if r.URL.Path == "/api/v1/query" {
		t := time.Now()
		if v := r.FormValue("time"); v != "" {
			var err error
			if t, err = parseTime(v); err != nil {
				return start, end, 0, false
			}
		}
		return t, t, 0, true
	}
	start, err1 := parseTime(r.FormValue("start"))
	end, err2 := parseTime(r.FormValue("end"))
	step, err3 := parseDuration(r.FormValue("step"))
	if err1 != nil || err2 != nil || err3 != nil || step <= 0 || end.Before(start) {
		return start, end, 0, false
	}
	return start, end, step, true
}

// parseTime accepts what the Prometheus API accepts: Unix seconds (with
// fraction) or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 9e15 {
			return time.Time{}, fmt.Errorf("timestamp %q out of range", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// parseDuration accepts seconds (with fraction) or a Prometheus duration.
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		if math.IsNaN(ns) || ns >= math.MaxInt64 || ns < math.MinInt64 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(ns), nil
	}
	d, err := model.ParseDuration(s)
	return time.Duration(d), err
}

// writeAPIError answers in the Prometheus API's error envelope.
func writeAPIError(w http.ResponseWriter, code int, errorType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": errorType, "error": msg})
}

func satAdd(a, b int64) int64 {
	if s := a + b; (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a != 0 && b != 0 && (a > math.MaxInt64/b) {
		return math.MaxInt64
	}
	return a * b
}
