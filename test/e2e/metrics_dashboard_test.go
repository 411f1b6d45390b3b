package e2e

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// spanMetrics builds what the original Vispyr agent's Alloy
// (otelcol.connector.spanmetrics, namespace traces.spanmetrics, dimensions
// http.method and http.target, ms buckets) exports over OTLP at ts, with
// calls cumulative counts so far.
func spanMetrics(ts, start time.Time, calls uint64, latencyCounts []uint64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("spanmetricsconnector")
	attrs := func(m pcommon.Map) {
		m.PutStr("service.name", "checkout")
		m.PutStr("span.name", "POST /api/checkout")
		m.PutStr("span.kind", "SPAN_KIND_SERVER")
		m.PutStr("status.code", "STATUS_CODE_UNSET")
		m.PutStr("http.method", "POST")
		m.PutStr("http.target", "/api/checkout")
	}

	c := sm.Metrics().AppendEmpty()
	c.SetName("traces.spanmetrics.calls")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	attrs(dp.Attributes())
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	dp.SetIntValue(int64(calls))

	h := sm.Metrics().AppendEmpty()
	h.SetName("traces.spanmetrics.duration")
	h.SetUnit("ms")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hist.DataPoints().AppendEmpty()
	attrs(hp.Attributes())
	hp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	hp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	hp.ExplicitBounds().FromRaw([]float64{50, 100, 250, 500, 1000, 2500, 5000, 10000})
	hp.BucketCounts().FromRaw(latencyCounts)
	var n uint64
	for _, c := range latencyCounts {
		n += c
	}
	hp.SetCount(n)
	hp.SetSum(float64(n) * 120)
	return md
}

// The "Vispyr Observability" dashboard's P99 latency panel works on span
// metrics sent the way the original agent's Alloy sends them: the OTLP
// translation must produce exactly traces_spanmetrics_duration_milliseconds_bucket
// and traces_spanmetrics_calls_total with a service_name label.
func TestAgentSpanMetricsDashboardPanel(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	conn, err := grpc.NewClient(v.OTLPGRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pmetricotlp.NewGRPCClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	now := time.Now().Truncate(time.Second)
	start := now.Add(-10 * time.Minute)
	// Two exports 15 s apart, like Alloy's interval: 100 calls in between,
	// 90 under 100 ms and 10 between 250 and 500 ms.
	for i, md := range []pmetric.Metrics{
		spanMetrics(now.Add(-15*time.Second), start, 100, []uint64{50, 40, 10, 0, 0, 0, 0, 0, 0}),
		spanMetrics(now, start, 200, []uint64{100, 80, 10, 10, 0, 0, 0, 0, 0}),
	} {
		if _, err := client.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md)); err != nil {
			t.Fatalf("export %d: %v", i, err)
		}
	}

	api := harness.NewAPI(v.MetricsURL(""))
	waitSeries(t, api, `traces_spanmetrics_calls_total{service_name="checkout",span_kind="SPAN_KIND_SERVER"}`, 200)
	p99 := `topk(5, histogram_quantile(0.99, sum(rate(traces_spanmetrics_duration_milliseconds_bucket{span_kind="SPAN_KIND_SERVER", service_name="checkout", http_target=~".*"}[5m])) by (le, span_name)))`
	_, res, _ := api.Instant(t, p99, now)
	if len(res) != 1 || res[0].Metric["span_name"] != "POST /api/checkout" {
		t.Fatalf("P99 panel = %+v, want one series for span_name \"POST /api/checkout\"", res)
	}
	// Of the 100 new calls, the slowest 10 fell in (250, 500] ms.
	if p := res[0].Value.Float(); p <= 250 || p > 500 {
		t.Errorf("P99 latency = %v ms, want in (250, 500]", p)
	}
	// The dashboard's $app variable: label_values(service_name).
	r := api.Get(t, "/api/v1/label/service_name/values", nil).MustSucceed(t)
	if string(r.Data) != `["checkout"]` {
		t.Errorf("label_values(service_name) = %s, want [\"checkout\"]", r.Data)
	}
}
