package tempoapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/traces"
)

// statusRecorder keeps the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// manyBlocks stores n blocks of many small traces each, so that a search which must
// read every block takes measurably long.
func manyBlocks(t *testing.T, cfg traces.Config, n, tracesPerBlock int) *traces.Store {
	t.Helper()
	s, err := traces.Open(cfg, t.TempDir(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for b := range n {
		td := ptrace.NewTraces()
		ss := service(td, fmt.Sprintf("svc-%d", b))
		for i := range tracesPerBlock {
			sp := addSpan(ss, 0, 1, 0, fmt.Sprintf("op-%d", i), ptrace.SpanKindServer, b*1000+i, 5)
			id := sp.TraceID()
			id[0], id[1], id[2], id[15] = byte(b), byte(i>>8), byte(i), 1
			sp.SetTraceID(id)
			sp.Attributes().PutStr("http.route", fmt.Sprintf("/item/%d", i))
		}
		if err := s.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestClientDisconnectStopsSearch: a Grafana panel closed mid-search ends the
// search's work on the store rather than leaving it to read every block.
func TestClientDisconnectStopsSearch(t *testing.T) {
	s := manyBlocks(t, traces.Config{}, 30, 1000)
	// Every span is a candidate and no trace matches, so the search reads every
	// span of every block.
	expectStopsOnDisconnect(t, NewHandler(s, slog.New(slog.DiscardHandler)), "/api/search?q="+urlq(`{} | count() > 5`))
}

// TestClientDisconnectStopsMetricsQuery: the same for a TraceQL metrics
// panel, whose query reads every span in its range.
func TestClientDisconnectStopsMetricsQuery(t *testing.T) {
	s := manyBlocks(t, traces.Config{}, 30, 1000)
	h := NewHandler(s, slog.New(slog.DiscardHandler), WithQueryMemory(1<<30, limits.NewInflight(1<<30)))
	expectStopsOnDisconnect(t, h, metricsOverManyBlocks(`{} | quantile_over_time(duration, .5, .9) by (span.http.route)`))
}

// metricsOverManyBlocks is a query_range over every span manyBlocks stores.
func metricsOverManyBlocks(q string) string {
	return fmt.Sprintf("/api/metrics/query_range?start=%d&end=%d&step=15s&q=%s",
		base.Add(-time.Minute).Unix(), base.Add(2*time.Minute).Unix(), urlq(q))
}

// expectStopsOnDisconnect runs path once to its end, then again with a client
// that leaves a tenth of the way in, and fails unless the handler stops (499)
// rather than running to its end.
func expectStopsOnDisconnect(t *testing.T, h http.Handler, path string) {
	t.Helper()
	entered := make(chan struct{}, 2)
	finished := make(chan int, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		finished <- rec.status
	}))
	defer srv.Close()
	url := srv.URL + path

	t0 := time.Now()
	code, body, _ := get(t, url)
	full := time.Since(t0)
	<-entered
	<-finished
	if code != 200 {
		t.Fatalf("uncancelled query = %d %s", code, body)
	}
	t.Logf("a query over every block took %v", full)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	time.Sleep(full / 10)
	t1 := time.Now()
	cancel()
	<-done
	select {
	case status := <-finished:
		// 499 is answered only when the store gave up on the request's context: a
		// query that ran to its end would have answered 200.
		if status != 499 {
			t.Fatalf("query after the client left answered %d, want the store to stop (499)", status)
		}
		t.Logf("the query stopped %v after the client left", time.Since(t1))
	case <-time.After(10 * time.Second):
		t.Fatal("the query kept running after the client left")
	}
}

// TestSearchTimeout answers 504 naming the bound when a search outlives
// traces.search_timeout, rather than reading every block however long it takes.
func TestSearchTimeout(t *testing.T) {
	s := manyBlocks(t, traces.Config{SearchTimeout: 50 * time.Millisecond}, 30, 1000)
	srv := httptest.NewServer(NewHandler(s, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	code, body, _ := get(t, srv.URL+"/api/search?q="+urlq(`{} | count() > 5`))
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "longer than 50ms") {
		t.Fatalf("search past its timeout = %d %q, want 504 naming the 50ms bound", code, body)
	}
}

// TestMetricsQueryTimeout: a TraceQL metrics query is bounded by
// traces.search_timeout too, answered 504 naming the bound.
func TestMetricsQueryTimeout(t *testing.T) {
	s := manyBlocks(t, traces.Config{SearchTimeout: 50 * time.Millisecond}, 30, 1000)
	srv := httptest.NewServer(NewHandler(s, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	code, body, _ := get(t, srv.URL+metricsOverManyBlocks(`{} | quantile_over_time(duration, .5, .9) by (span.http.route)`))
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "longer than 50ms") {
		t.Fatalf("metrics query past its timeout = %d %q, want 504 naming the 50ms bound", code, body)
	}
}
