package metrics

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

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
