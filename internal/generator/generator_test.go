package generator

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// env is a generator writing to a real TSDB with exemplar storage, queried
// through the real PromQL engine.
type env struct {
	t     *testing.T
	db    *tsdb.DB
	eng   *promql.Engine
	clock *fakeClock
	gen   *Generator
	reg   *prometheus.Registry
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 10_000
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatalf("open tsdb: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{
		t:     t,
		db:    db,
		eng:   promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute}),
		clock: &fakeClock{t: t0},
		reg:   prometheus.NewRegistry(),
	}
	e.gen = newGenerator(cfg, db, nil, e.reg, e.clock.Now)
	return e
}

func defaultConfig() Config {
	var c Config
	c.Defaults()
	return c
}

func (e *env) consume(td ptrace.Traces) {
	e.t.Helper()
	if err := e.gen.ConsumeTraces(context.Background(), td); err != nil {
		e.t.Fatalf("consume: %v", err)
	}
}

func (e *env) flush() {
	e.t.Helper()
	if err := e.gen.Flush(context.Background()); err != nil {
		e.t.Fatalf("flush: %v", err)
	}
}

// query runs an instant PromQL query at the clock's time and returns each
// row as "labels => value".
func (e *env) query(q string) map[string]float64 {
	e.t.Helper()
	qry, err := e.eng.NewInstantQuery(context.Background(), e.db, nil, q, e.clock.Now())
	if err != nil {
		e.t.Fatalf("parse %s: %v", q, err)
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		e.t.Fatalf("exec %s: %v", q, res.Err)
	}
	vec, err := res.Vector()
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	out := map[string]float64{}
	for _, s := range vec {
		out[s.Metric.String()] = s.F
	}
	return out
}

// expectRows fails unless q returns exactly want (values within 1e-9).
func (e *env) expectRows(q string, want map[string]float64) {
	e.t.Helper()
	got := e.query(q)
	if len(got) != len(want) {
		e.t.Errorf("%s:\n got %v\nwant %v", q, fmtRows(got), fmtRows(want))
		return
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || math.Abs(g-w) > 1e-9 {
			e.t.Errorf("%s:\n got %v\nwant %v", q, fmtRows(got), fmtRows(want))
			return
		}
	}
}

func fmtRows(m map[string]float64) string {
	var rows []string
	for k, v := range m {
		rows = append(rows, fmt.Sprintf("%s => %g", k, v))
	}
	sort.Strings(rows)
	return "\n  " + strings.Join(rows, "\n  ")
}

// feedCheckouts sends n checkout requests starting at request first, one
// batch per service as each service's SDK would export them, plus one call to
// an uninstrumented payment provider and one unanswered call.
func (e *env) feedCheckouts(first, n int) {
	var fe, pay, notif []spanSpec
	for i := first; i < first+n; i++ {
		s := checkout(i, e.clock.Now().Add(-time.Second))
		fe = append(fe, s[0], s[1])
		pay = append(pay, s[2], s[3], s[4])
		notif = append(notif, s[5])
	}
	e.consume(build(fe...))
	e.consume(build(pay...))
	e.consume(build(notif...))
}

func TestGrafanaQueries(t *testing.T) {
	e := newEnv(t, defaultConfig())
	e.clock.Add(5 * time.Second)
	e.feedCheckouts(0, 10)
	extra := []spanSpec{
		{service: "frontend", name: "POST /charge", kind: ptrace.SpanKindClient, trace: traceID(100), id: spanID(100, 1),
			start: e.clock.Now(), dur: 300 * time.Millisecond, attrs: map[string]string{"peer.service": "stripe"}},
		{service: "frontend", name: "GET /lost", kind: ptrace.SpanKindClient, trace: traceID(101), id: spanID(101, 1),
			start: e.clock.Now(), dur: time.Millisecond},
	}
	e.consume(build(extra...))
	if got := e.gen.graph.Pending(); got != 10+2 {
		t.Fatalf("pending edges = %d, want 12 (10 root server spans, 2 unanswered clients)", got)
	}

	// After the wait the unpaired edges expire into virtual-node edges.
	e.clock.Set(t0.Add(15 * time.Second))
	e.gen.expire()
	if got := e.gen.graph.Pending(); got != 0 {
		t.Fatalf("pending edges after wait = %d, want 0", got)
	}
	e.flush()

	// Raw counters: every span counted once, by service, name, kind and status.
	e.expectRows(`traces_spanmetrics_calls_total{service="payments"}`, map[string]float64{
		`{__name__="traces_spanmetrics_calls_total", service="payments", span_kind="SPAN_KIND_SERVER", span_name="POST /pay", status_code="STATUS_CODE_ERROR"}`:              2,
		`{__name__="traces_spanmetrics_calls_total", service="payments", span_kind="SPAN_KIND_SERVER", span_name="POST /pay", status_code="STATUS_CODE_UNSET"}`:              8,
		`{__name__="traces_spanmetrics_calls_total", service="payments", span_kind="SPAN_KIND_CLIENT", span_name="SELECT orders", status_code="STATUS_CODE_UNSET"}`:          10,
		`{__name__="traces_spanmetrics_calls_total", service="payments", span_kind="SPAN_KIND_PRODUCER", span_name="payment.done publish", status_code="STATUS_CODE_UNSET"}`: 10,
	})

	// Grafana's APM table (COMPAT §5): rate over the 15s since the zero
	// sample written at the generator's start, spread over 5m.
	e.expectRows(`topk(5, sum(rate(traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER", service="payments"}[5m])) by (span_name))`,
		map[string]float64{`{span_name="POST /pay"}`: 10.0 / 300})
	e.expectRows(`topk(5, sum(rate(traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER", service="payments", status_code="STATUS_CODE_ERROR"}[5m])) by (span_name))`,
		map[string]float64{`{span_name="POST /pay"}`: 2.0 / 300})
	e.expectRows(`topk(5, sum(rate(traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER", service="frontend", status_code="STATUS_CODE_ERROR"}[5m])) by (span_name))`,
		map[string]float64{})
	// Frontend latencies are 10ms..100ms: 6 of 10 are <= 64ms, all <= 128ms,
	// so p90 interpolates 3/4 of the way through (0.064, 0.128].
	e.expectRows(`histogram_quantile(.9, sum(rate(traces_spanmetrics_latency_bucket{span_kind="SPAN_KIND_SERVER", service="frontend"}[5m])) by (le))`,
		map[string]float64{`{}`: 0.112})
	e.expectRows(`traces_spanmetrics_latency_bucket{service="frontend", span_kind="SPAN_KIND_SERVER", le=~"0.016|0.032|0.064|0.128|\\+Inf"}`, map[string]float64{
		`{__name__="traces_spanmetrics_latency_bucket", le="0.016", service="frontend", span_kind="SPAN_KIND_SERVER", span_name="GET /checkout", status_code="STATUS_CODE_UNSET"}`: 1,
		`{__name__="traces_spanmetrics_latency_bucket", le="0.032", service="frontend", span_kind="SPAN_KIND_SERVER", span_name="GET /checkout", status_code="STATUS_CODE_UNSET"}`: 3,
		`{__name__="traces_spanmetrics_latency_bucket", le="0.064", service="frontend", span_kind="SPAN_KIND_SERVER", span_name="GET /checkout", status_code="STATUS_CODE_UNSET"}`: 6,
		`{__name__="traces_spanmetrics_latency_bucket", le="0.128", service="frontend", span_kind="SPAN_KIND_SERVER", span_name="GET /checkout", status_code="STATUS_CODE_UNSET"}`: 10,
		`{__name__="traces_spanmetrics_latency_bucket", le="+Inf", service="frontend", span_kind="SPAN_KIND_SERVER", span_name="GET /checkout", status_code="STATUS_CODE_UNSET"}`:  10,
	})
	e.expectRows(`traces_spanmetrics_latency_sum{service="frontend", span_kind="SPAN_KIND_SERVER"} * 1000`, map[string]float64{
		`{service="frontend", span_kind="SPAN_KIND_SERVER", span_name="GET /checkout", status_code="STATUS_CODE_UNSET"}`: 550,
	})
	// Nine distinct operations across the three services.
	e.expectRows(`count(traces_spanmetrics_size_total > 0)`, map[string]float64{`{}`: 9})

	// Grafana's service map: one row per edge.
	e.expectRows(`sum by (client, server) (rate(traces_service_graph_request_total[5m]))`, map[string]float64{
		`{client="user", server="frontend"}`:     10.0 / 300,
		`{client="frontend", server="payments"}`: 10.0 / 300,
		`{client="payments", server="orders"}`:   10.0 / 300,
		`{client="payments", server="notifier"}`: 10.0 / 300,
		`{client="frontend", server="stripe"}`:   1.0 / 300,
	})
	e.expectRows(`sum by (client, server) (rate(traces_service_graph_request_failed_total[5m])) > 0`, map[string]float64{
		`{client="frontend", server="payments"}`: 2.0 / 300,
	})
	e.expectRows(`sum by (client, server, connection_type) (traces_service_graph_request_total)`, map[string]float64{
		`{client="user", connection_type="virtual_node", server="frontend"}`:         10,
		`{client="frontend", server="payments"}`:                                     10,
		`{client="payments", connection_type="database", server="orders"}`:           10,
		`{client="payments", connection_type="messaging_system", server="notifier"}`: 10,
		`{client="frontend", connection_type="virtual_node", server="stripe"}`:       1,
	})
	// payments' server spans take 6ms and the client side sees 8ms: both in
	// the first 0.1s bucket.
	e.expectRows(`traces_service_graph_request_server_seconds_bucket{client="frontend", server="payments", le="0.1"} - ignoring(le) traces_service_graph_request_server_seconds_count{client="frontend", server="payments"}`,
		map[string]float64{`{client="frontend", server="payments"}`: 0})
	e.expectRows(`traces_service_graph_request_client_seconds_sum{client="frontend", server="payments"} * 1000`,
		map[string]float64{`{client="frontend", server="payments"}`: 80})
	e.expectRows(`traces_service_graph_unpaired_spans_total`, map[string]float64{
		`{__name__="traces_service_graph_unpaired_spans_total", client="frontend"}`: 1,
	})
	e.expectRows(`traces_service_graph_dropped_spans_total`, map[string]float64{})
}

func TestExemplarsCarryTraceIDs(t *testing.T) {
	e := newEnv(t, defaultConfig())
	e.clock.Add(5 * time.Second)
	e.feedCheckouts(0, 10)
	e.clock.Set(t0.Add(15 * time.Second))
	e.flush()

	eq, err := e.db.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	matchers := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "traces_spanmetrics_latency_bucket"),
		labels.MustNewMatcher(labels.MatchEqual, "service", "frontend"),
		labels.MustNewMatcher(labels.MatchEqual, "span_kind", "SPAN_KIND_SERVER"),
	}
	res, err := eq.Select(t0.UnixMilli(), t0.Add(time.Minute).UnixMilli(), matchers)
	if err != nil {
		t.Fatal(err)
	}
	// Each bucket keeps its last observation: request i took (i+1)*10ms.
	want := map[string]string{
		"0.016": exemplarWant(0),
		"0.032": exemplarWant(2),
		"0.064": exemplarWant(5),
		"0.128": exemplarWant(9),
	}
	got := map[string]string{}
	for _, r := range res {
		for _, ex := range r.Exemplars {
			got[r.SeriesLabels.Get("le")] = fmt.Sprintf("%s %.3f @%d", ex.Labels, ex.Value, ex.Ts)
		}
	}
	ts := t0.Add(15 * time.Second).UnixMilli()
	if len(got) != len(want) {
		t.Fatalf("exemplars by le = %v, want %v", got, want)
	}
	for le, w := range want {
		if got[le] != fmt.Sprintf("%s @%d", w, ts) {
			t.Errorf("exemplar le=%s: got %q, want %q", le, got[le], fmt.Sprintf("%s @%d", w, ts))
		}
	}

	// Written exemplars are not written again by the next collection.
	e.clock.Add(15 * time.Second)
	e.flush()
	res, err = eq.Select(t0.UnixMilli(), t0.Add(time.Hour).UnixMilli(), matchers)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range res {
		n += len(r.Exemplars)
	}
	if n != 4 {
		t.Errorf("exemplars after second collection = %d, want still 4", n)
	}

	// The service graph's edges carry exemplars too.
	res, err = eq.Select(t0.UnixMilli(), t0.Add(time.Hour).UnixMilli(), []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "traces_service_graph_request_server_seconds_bucket"),
		labels.MustNewMatcher(labels.MatchEqual, "server", "notifier"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || len(res[0].Exemplars) != 1 || res[0].Exemplars[0].Labels.Get("trace_id") != hex.EncodeToString(traceIDSlice(9)) {
		t.Errorf("service graph exemplars = %v, want one for the last trace", res)
	}
}

func traceIDSlice(i int) []byte { id := traceID(i); return id[:] }

func exemplarWant(i int) string {
	tid, sid := traceID(i), spanID(i, 1)
	return fmt.Sprintf(`{span_id="%s", trace_id="%s"} %.3f`, hex.EncodeToString(sid[:]), hex.EncodeToString(tid[:]), float64(i+1)*0.01)
}

func TestCounterKeepsGrowingAcrossCollections(t *testing.T) {
	e := newEnv(t, defaultConfig())
	e.clock.Add(5 * time.Second)
	e.feedCheckouts(0, 10)
	e.clock.Set(t0.Add(15 * time.Second))
	e.flush()
	e.clock.Add(5 * time.Second)
	e.feedCheckouts(10, 5)
	e.clock.Set(t0.Add(30 * time.Second))
	e.flush()
	e.expectRows(`sum(traces_spanmetrics_calls_total{service="notifier"})`, map[string]float64{`{}`: 15})
	// 15 calls in the 30s since the zero sample, spread over 5m.
	e.expectRows(`sum(rate(traces_spanmetrics_calls_total{service="notifier"}[5m]))`, map[string]float64{`{}`: 15.0 / 300})
	e.expectRows(`sum(increase(traces_service_graph_request_total{client="payments", server="orders"}[1m]))`,
		map[string]float64{`{}`: 15})
}

func TestCardinalityLimitDropsNewSeries(t *testing.T) {
	cfg := defaultConfig()
	per := len(cfg.SpanMetrics.HistogramBuckets) + 5
	cfg.SpanMetrics.MaxActiveSeries = 3 * per
	e := newEnv(t, cfg)
	var specs []spanSpec
	for i := 0; i < 10; i++ {
		specs = append(specs, spanSpec{service: "api", name: fmt.Sprintf("GET /user/%d", i), kind: ptrace.SpanKindServer,
			trace: traceID(i), id: spanID(i, 1), start: t0, dur: time.Millisecond})
	}
	for range 2 { // the same spans again: existing series still update
		e.consume(build(specs...))
	}
	e.clock.Add(15 * time.Second)
	e.flush()
	e.expectRows(`sum(traces_spanmetrics_calls_total)`, map[string]float64{`{}`: 6})
	e.expectRows(`count(traces_spanmetrics_calls_total)`, map[string]float64{`{}`: 3})
	if got := selfMetric(t, e.reg, "vispyr_generator_dropped_series_total", "span_metrics"); got != 14 {
		t.Errorf("dropped = %v, want 14 (7 refused span names, twice)", got)
	}
	if got := selfMetric(t, e.reg, "vispyr_generator_active_series", "span_metrics"); got != float64(3*per) {
		t.Errorf("active series = %v, want %d", got, 3*per)
	}
}

func TestStaleSeriesAreForgotten(t *testing.T) {
	e := newEnv(t, defaultConfig())
	e.clock.Add(time.Second)
	e.feedCheckouts(0, 1)
	e.clock.Add(14 * time.Second)
	e.gen.expire()
	e.flush()
	if n := len(e.query(`traces_spanmetrics_calls_total`)); n != 6 {
		t.Fatalf("series = %d, want 6", n)
	}
	// No span for longer than the stale duration: nothing is written anymore
	// and, once Prometheus' lookback has passed, the series are gone.
	e.clock.Add(16 * time.Minute)
	e.flush()
	e.clock.Add(6 * time.Minute)
	e.flush()
	e.expectRows(`count(traces_spanmetrics_calls_total)`, map[string]float64{})
	if got := selfMetric(t, e.reg, "vispyr_generator_active_series", "span_metrics"); got != 0 {
		t.Errorf("active span-metric series = %v, want 0", got)
	}
}

func TestRunWritesOnIntervalAndOnShutdown(t *testing.T) {
	opts := tsdb.DefaultOptions()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := defaultConfig()
	cfg.CollectionInterval = 20 * time.Millisecond
	g := New(cfg, db, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for _, s := range checkout(0, time.Now()) {
		if err := g.ConsumeTraces(ctx, build(s)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for countSeries(t, db, "traces_spanmetrics_calls_total") < 6 {
		if time.Now().After(deadline) {
			t.Fatal("no span metrics written within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Spans consumed after the last tick are written by the final flush.
	if err := g.ConsumeTraces(ctx, build(spanSpec{service: "late", name: "x", kind: ptrace.SpanKindInternal,
		trace: traceID(7), id: spanID(7, 1), start: time.Now(), dur: time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := countSeries(t, db, "traces_spanmetrics_calls_total"); n != 7 {
		t.Errorf("series after shutdown = %d, want 7", n)
	}
}

// selfMetric returns the value of the generator's own metric name for processor.
func selfMetric(t *testing.T, reg *prometheus.Registry, name, processor string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "processor" && l.GetValue() == processor {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{processor=%q}", name, processor)
	return 0
}

func countSeries(t *testing.T, db *tsdb.DB, name string) int {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name))
	n := 0
	for ss.Next() {
		n++
	}
	return n
}

func TestRestartKeepsRatesRight(t *testing.T) {
	e := newEnv(t, defaultConfig())
	e.clock.Add(5 * time.Second)
	e.feedCheckouts(0, 10)
	e.clock.Set(t0.Add(15 * time.Second))
	e.flush()

	// A new process starts from zero on the same TSDB: its first collection
	// writes a zero at its start, so PromQL sees a counter reset, not a drop.
	e.clock.Set(t0.Add(20 * time.Second))
	e.gen = newGenerator(defaultConfig(), e.db, nil, prometheus.NewRegistry(), e.clock.Now)
	e.clock.Add(5 * time.Second)
	e.feedCheckouts(10, 5)
	e.clock.Set(t0.Add(35 * time.Second))
	e.flush()
	e.expectRows(`sum(traces_spanmetrics_calls_total{service="notifier"})`, map[string]float64{`{}`: 5})
	// 10 then 5 more calls; increase() over the samples from t0 to t0+35s
	// sees 15, extrapolated by Prometheus to the whole 40s window.
	got := e.query(`sum(increase(traces_spanmetrics_calls_total{service="notifier"}[40s]))`)
	if v := got[`{}`]; v < 15 || v > 15*40.0/35 {
		t.Errorf("increase across the restart = %v, want 15 extrapolated to at most %v", v, 15*40.0/35)
	}
}

// A generator whose config is not Enabled writes nothing, whatever it is
// fed, so leaving it out loses nothing; each processor alone enables it.
func TestEnabledMeansSomethingIsWritten(t *testing.T) {
	off := defaultConfig()
	off.DisableSpanMetrics, off.DisableServiceGraph = true, true
	graphOnly, spansOnly, otelOnly := off, off, off
	graphOnly.DisableServiceGraph = false
	spansOnly.DisableSpanMetrics = false
	otelOnly.OTelSpanMetrics.Enabled = true
	for name, cfg := range map[string]Config{"off": off, "service graph": graphOnly, "span metrics": spansOnly, "otel span metrics": otelOnly} {
		e := newEnv(t, cfg)
		e.clock.Add(5 * time.Second)
		e.feedCheckouts(0, 10)
		e.clock.Set(t0.Add(15 * time.Second))
		e.flush()
		written := len(e.query(`{__name__=~".+"}`)) > 0
		if written != cfg.Enabled() {
			t.Errorf("%s: Enabled() = %v, but series written = %v", name, cfg.Enabled(), written)
		}
	}
}
