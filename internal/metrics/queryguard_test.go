package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/limits"
)

// A subquery with a tiny step over a long range is refused with 422 before
// the engine allocates: Prometheus's own answer, naming the limit, in well
// under a second and without the gigabytes the engine would take first.
func TestHugeSubqueriesAreRefusedBeforeAllocating(t *testing.T) {
	_, srv := openTest(t, config.Limits{MaxRequestBytes: 1 << 20, MaxSeriesPerRequest: 100, MaxInflightBytes: 1 << 30})
	now := rfc3339(time.Now())
	for _, q := range []string{
		`max_over_time(vector(1)[30d:1ms])`,
		`max_over_time(vector(1)[1d:1ms])`,
		`max_over_time(up[1d:1ms])`,
		`sum_over_time(vector(time())[7d:10ms])`,
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		r := get(t, srv.URL+"/api/v1/query?time="+now+"&query="+url.QueryEscape(q))
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if r.Status != "error" || r.ErrorType != "execution" ||
			!strings.Contains(r.Error, "query processing would load too many samples into memory") ||
			!strings.Contains(r.Error, "metrics.query_max_samples") {
			t.Fatalf("%s: got %+v, want a 422 naming metrics.query_max_samples", q, r)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 || took > time.Second {
			t.Fatalf("%s: refused after %v having allocated %d MB", q, took, alloc>>20)
		}
	}
	// What fits still runs, including a subquery without a step.
	for _, q := range []string{`max_over_time(vector(1)[1h:1m])`, `max_over_time(vector(1)[1h:])`, `1+1`} {
		if r := get(t, srv.URL+"/api/v1/query?time="+now+"&query="+url.QueryEscape(q)); r.Status != "success" {
			t.Fatalf("%s: %+v", q, r)
		}
	}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Queries running together share metrics.query_memory_bytes: one that does
// not fit while others hold it gets 503 with Retry-After, and runs once
// they are done.
func TestSharedQueryMemoryBudget(t *testing.T) {
	s, srv := openTest(t, config.Limits{MaxRequestBytes: 1 << 20, MaxSeriesPerRequest: 100, MaxInflightBytes: 1 << 30})
	shared := limits.NewInflight(1 << 20)
	g := &queryGuard{next: srv.Config.Handler, queryable: s.DB(), parser: parser.NewParser(parser.Options{}),
		lookback: 5 * time.Minute, maxSamples: 50_000_000, maxBytes: 1 << 20, shared: shared, sharedMax: 1 << 20}
	q := "/api/v1/query?query=" + url.QueryEscape(`max_over_time(vector(1)[1d:1s])`) // 86401 points, 1.3 MB
	if !shared.Acquire(1 << 19) {
		t.Fatal("acquire")
	}
	w := serve(g, q)
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("over the per-query budget: %d %s", w.Code, w.Body)
	}
	q = "/api/v1/query?query=" + url.QueryEscape(`max_over_time(vector(1)[5h:1s])`) // 2 × 18001 points, 576 kB
	if w := serve(g, q); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Body.String(), "metrics.query_memory_bytes") {
		t.Fatalf("over the shared budget: %d %s", w.Code, w.Body)
	}
	shared.Release(1 << 19)
	if w := serve(g, q); w.Code != http.StatusOK {
		t.Fatalf("budget free again: %d %s", w.Code, w.Body)
	}
	if shared.InUse() != 0 {
		t.Fatalf("%d bytes still held after the query", shared.InUse())
	}
}

func serve(h http.Handler, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

// A dashboard refresh the results cache answers needs no engine memory: it
// is answered while other queries hold all of metrics.query_memory_bytes,
// where a query the cache cannot answer waits (503).
func TestCachedRefreshNeedsNoQueryMemory(t *testing.T) {
	s, _ := openTest(t, config.Limits{MaxRequestBytes: 1 << 20, MaxSeriesPerRequest: 100, MaxInflightBytes: 1 << 30})
	now := time.Now()
	app := s.DB().Appender(context.Background())
	for i := 0; i < 20; i++ {
		ls := labels.FromStrings("__name__", "http_requests_total", "instance", strconv.Itoa(i))
		for ts := now.Add(-2 * time.Hour); ts.Before(now); ts = ts.Add(15 * time.Second) {
			if _, err := app.Append(0, ls, ts.UnixMilli(), float64(ts.Unix()%1000)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	shared := limits.NewInflight(1 << 20)
	cfg := config.Default()
	srv := httptest.NewServer(s.NewAPI(APIOptions{Metrics: cfg.Metrics, QueryMemory: shared},
		slog.New(slog.DiscardHandler), prometheus.NewRegistry()))
	t.Cleanup(srv.Close)
	rangeQuery := func(q string) string {
		return srv.URL + "/api/v1/query_range?" + url.Values{"query": {q}, "step": {"15"},
			"start": {strconv.FormatInt(now.Add(-2*time.Hour).Unix(), 10)},
			"end":   {strconv.FormatInt(now.Add(-30*time.Minute).Unix(), 10)}}.Encode()
	}
	first := get(t, rangeQuery(`sum(rate(http_requests_total[5m]))`))
	if first.Status != "success" {
		t.Fatalf("first request: %+v", first)
	}
	if !shared.Acquire(1 << 20) {
		t.Fatal("acquire")
	}
	defer shared.Release(1 << 20)
	if r := get(t, rangeQuery(`sum(rate(http_requests_total[5m]))`)); r.Status != "success" || string(r.Data) != string(first.Data) {
		t.Fatalf("the cached refresh while the budget is held: %+v", r)
	}
	if r := get(t, rangeQuery(`max(rate(http_requests_total[5m]))`)); r.ErrorType != "unavailable" {
		t.Fatalf("an uncached query while the budget is held: %+v, want 503", r)
	}
}
