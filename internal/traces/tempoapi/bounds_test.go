package tempoapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/traces"
)

// TestMetricsQueryMemoryBound: a TraceQL metrics query whose series would
// pass traces.query_max_memory_bytes is refused with 400 naming the limit,
// whether its series come from by(), compare() or a step grid too fine for
// even one series (refused before any span is read); a query that finds the
// budget shared by all running queries spent gets 429 with Retry-After; the
// same queries within the bounds answer 200, and every answer gives back what
// it held.
func TestMetricsQueryMemoryBound(t *testing.T) {
	s := manyBlocks(t, traces.Config{}, 3, 1000) // 1,000 routes in each block
	shared := limits.NewInflight(64 << 20)
	const perQuery = 512 << 10
	srv := httptest.NewServer(NewHandler(s, slog.New(slog.DiscardHandler), WithQueryMemory(perQuery, shared)))
	defer srv.Close()
	roomy := httptest.NewServer(NewHandler(s, slog.New(slog.DiscardHandler), WithQueryMemory(1<<30, limits.NewInflight(1<<30))))
	defer roomy.Close()

	// 1,000 series (or attribute values) × 13 steps: about 1.2 MB.
	byRoute := metricsOverManyBlocks(`{} | rate() by (span.http.route)`)
	for q, want := range map[string]string{
		byRoute: `"/item/999"`,
		metricsOverManyBlocks(`{} | compare({span.http.route="/item/1"})`): `"selection"`,
	} {
		code, body, _ := get(t, srv.URL+q)
		if code != http.StatusBadRequest || !strings.Contains(body, "traces.query_max_memory_bytes (524288)") {
			t.Errorf("%s under a 512 KiB bound = %d %.300q, want 400 naming traces.query_max_memory_bytes", q, code, body)
		}
		if code, body, _ = get(t, roomy.URL+q); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s under a 1 GiB bound = %d %.300q, want 200 with %s", q, code, body, want)
		}
	}

	// One series over 10,000 steps of 10 ms passes 512 KiB by itself: refused
	// before the store is read, however much it holds.
	fine := "/api/metrics/query_range?start=1795413600&end=1795413700&step=10ms&q=" + urlq(`{} | rate()`)
	t0 := time.Now()
	code, body, _ := get(t, srv.URL+fine)
	early := time.Since(t0)
	if code != http.StatusBadRequest || !strings.Contains(body, "traces.query_max_memory_bytes") {
		t.Errorf("one series of 10,000 steps = %d %.300q, want 400 naming the bound", code, body)
	}
	t0 = time.Now()
	if code, _, _ := get(t, srv.URL+metricsOverManyBlocks(`{} | rate()`)); code != http.StatusOK {
		t.Errorf("one series over every span = %d, want 200", code)
	}
	t.Logf("refused before reading in %v; a query reading every span took %v", early, time.Since(t0))

	// Other queries hold all but 256 KiB of the shared budget.
	shared.Acquire(64<<20 - 256<<10)
	code, body, hdr := get(t, srv.URL+byRoute)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(body, "retry later") {
		t.Errorf("with the shared budget spent = %d %.300q (Retry-After %q), want 429 with Retry-After", code, body, hdr.Get("Retry-After"))
	}
	shared.Release(64<<20 - 256<<10)
	if n := shared.InUse(); n != 0 {
		t.Errorf("queries still hold %d bytes of the shared budget after answering", n)
	}
}
