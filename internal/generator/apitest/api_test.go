// Package apitest checks the generator end to end through Vispyr's
// Prometheus-compatible HTTP API (the :9090 handler Grafana talks to): the
// APM table and service map queries and query_exemplars. It lives apart from
// the generator's own tests because it depends on the metrics store.
package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/generator"
	"github.com/vispyr/vispyr/internal/metrics"
)

// TestGrafanaSeesGeneratedMetricsThroughPrometheusAPI runs with each
// metrics head: with Vispyr's own, the generated series (floats, written
// through the V1 appender) must be in it, not in the TSDB's head.
func TestGrafanaSeesGeneratedMetricsThroughPrometheusAPI(t *testing.T) {
	for _, head := range []string{config.HeadPrometheus, config.HeadVispyr} {
		t.Run(head, func(t *testing.T) { grafanaSeesGeneratedMetrics(t, head) })
	}
}

func grafanaSeesGeneratedMetrics(t *testing.T, head string) {
	cfg := config.Default()
	cfg.Metrics.Head = head
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	store, err := metrics.Open(cfg.Metrics, cfg.Limits, t.TempDir(), logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := httptest.NewServer(store.NewAPI(metrics.APIOptions{Metrics: cfg.Metrics}, logger, reg))
	defer srv.Close()

	gen := generator.New(cfg.Generator, store, logger, reg)
	start := time.Now()
	for i := 0; i < 5; i++ {
		if err := gen.ConsumeTraces(context.Background(), request(i, start)); err != nil {
			t.Fatal(err)
		}
	}
	if err := gen.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := store.DB().Head().NumSeries(); head == config.HeadVispyr && n != 0 {
		t.Errorf("the TSDB's head holds %d generated series; they belong in the own head", n)
	}
	at := strconv.FormatFloat(float64(time.Now().UnixMilli())/1000, 'f', 3, 64)

	// The APM table's rate query (Grafana's Tempo service graph tab).
	rows := query(t, srv.URL, at, `topk(5, sum(rate(traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER", service="api"}[5m])) by (span_name))`)
	if len(rows) != 1 || rows[0].Metric["span_name"] != "GET /items" || rows[0].value() <= 0 {
		t.Errorf("APM rate rows = %+v", rows)
	}
	rows = query(t, srv.URL, at, `sum(traces_spanmetrics_calls_total{service="api", status_code="STATUS_CODE_ERROR"})`)
	if len(rows) != 1 || rows[0].value() != 2 {
		t.Errorf("error calls = %+v, want 2", rows)
	}
	rows = query(t, srv.URL, at, `histogram_quantile(.9, sum(rate(traces_spanmetrics_latency_bucket{service="api", span_kind="SPAN_KIND_SERVER"}[5m])) by (le))`)
	if len(rows) != 1 || rows[0].value() <= 0.016 || rows[0].value() > 0.032 {
		t.Errorf("p90 = %+v, want within the 16–32ms bucket", rows)
	}
	// The service map's edge query.
	rows = query(t, srv.URL, at, `sum by (client, server) (rate(traces_service_graph_request_total[5m]))`)
	var edges []string
	for _, r := range rows {
		edges = append(edges, r.Metric["client"]+"→"+r.Metric["server"])
	}
	sort.Strings(edges)
	if strings.Join(edges, " ") != "web→api" {
		t.Errorf("edges = %v, want web→api", edges)
	}

	// Exemplars link the latency histogram back to the traces.
	form := url.Values{
		"query": {`traces_spanmetrics_latency_bucket{service="api"}`},
		"start": {strconv.FormatInt(start.Add(-time.Minute).Unix(), 10)},
		"end":   {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)},
	}
	var exemplars []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels map[string]string `json:"labels"`
			Value  string            `json:"value"`
		} `json:"exemplars"`
	}
	get(t, srv.URL+"/api/v1/query_exemplars?"+form.Encode(), &exemplars)
	traceIDs := map[string]bool{}
	for _, s := range exemplars {
		for _, e := range s.Exemplars {
			traceIDs[e.Labels["trace_id"]] = true
			if len(e.Labels["span_id"]) != 16 {
				t.Errorf("exemplar without span_id: %v", e.Labels)
			}
		}
	}
	// Request i's server span takes (i+1)*5ms and fails for i < 2. Each
	// bucket of each series keeps its last trace: in the failed series 5ms
	// (request 0) and 10ms (1) fall in different buckets; in the other one
	// 15ms (2) lands in le=0.016, and 20 and 25ms (3, 4) in le=0.032.
	want := []string{traceHex(0), traceHex(1), traceHex(2), traceHex(4)}
	for _, w := range want {
		if !traceIDs[w] {
			t.Errorf("no exemplar with trace_id %s; got %v", w, traceIDs)
		}
	}
	if len(traceIDs) != len(want) {
		t.Errorf("exemplar trace IDs = %v, want %v", traceIDs, want)
	}
}

// request builds request i: web calls api, whose server span fails for i < 2.
func request(i int, at time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	tid := traceID(i)
	add := func(service, name string, kind ptrace.SpanKind, id, parent byte, dur time.Duration, failed bool) {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(name)
		sp.SetKind(kind)
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{7: id})
		if parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{7: parent})
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(dur)))
		if failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	add("web", "GET /items", ptrace.SpanKindClient, 1, 0, time.Duration(i+2)*5*time.Millisecond, false)
	add("api", "GET /items", ptrace.SpanKindServer, 2, 1, time.Duration(i+1)*5*time.Millisecond, i < 2)
	return td
}

func traceID(i int) pcommon.TraceID { return pcommon.TraceID{0: 0x42, 15: byte(i)} }

func traceHex(i int) string { id := traceID(i); return id.String() }

type row struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (r row) value() float64 {
	s, _ := r.Value[1].(string)
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func query(t *testing.T, base, at, q string) []row {
	t.Helper()
	var data struct {
		ResultType string `json:"resultType"`
		Result     []row  `json:"result"`
	}
	get(t, base+"/api/v1/query?"+url.Values{"query": {q}, "time": {at}}.Encode(), &data)
	if data.ResultType != "vector" {
		t.Fatalf("%s: result type %q", q, data.ResultType)
	}
	return data.Result
}

func get(t *testing.T, u string, data any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		t.Fatal(fmt.Errorf("decode %s: %w", body, err))
	}
}
