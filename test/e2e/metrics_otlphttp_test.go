package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// OTLP over HTTP the way SDKs and the Collector send it: the OTel Go SDK's
// exporter with gzip, and OTLP JSON (what browser and JS SDKs use) marshalled
// by the Collector's pdata.
func TestOTLPHTTPGzipAndJSON(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	ctx := context.Background()
	api := harness.NewAPI(v.MetricsURL(""))

	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(v.OTLPHTTPAddr), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "e2e-http-gzip"))),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
	)
	g, _ := mp.Meter("e2e").Int64Gauge("e2e.queue.depth", metric.WithUnit("{item}"))
	g.Record(ctx, 17)
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("export over OTLP/HTTP gzip: %v", err)
	}
	waitSeries(t, api, `e2e_queue_depth{job="e2e-http-gzip"}`, 17)

	// OTLP JSON, gzipped, as a Collector with encoding: json would send.
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "e2e-http-json")
	rm.Resource().Attributes().PutStr("service.namespace", "shop")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("e2e.orders")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute)))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetIntValue(42)
	dp.Attributes().PutStr("http.method", "GET")
	raw, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	req, _ := http.NewRequest(http.MethodPost, v.OTLPHTTPURL("/v1/metrics"), &gz)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP JSON: status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("OTLP JSON answer Content-Type %q, want application/json", ct)
	}
	// service.namespace/service.name → job; dots in names and labels → _.
	waitSeries(t, api, `e2e_orders_total{job="shop/e2e-http-json",http_method="GET"}`, 42)
	v.CheckServing(t)
}
