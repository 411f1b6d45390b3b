package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// gzip is the default compression of the Collector's and Alloy's OTLP
// exporters; the OTel Go SDK sends it with OTEL_EXPORTER_OTLP_COMPRESSION.
// Spans and metric points sent that way over gRPC are stored and queryable.
func TestOTLPGRPCGzipFromTheSDK(t *testing.T) {
	v := harness.Start(t, harness.Options{})
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
	ctx := context.Background()
	res := resource.NewSchemaless(attribute.String("service.name", "e2e-gzip"))

	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(v.OTLPGRPCAddr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(texp), sdktrace.WithResource(res))
	_, span := tp.Tracer("e2e").Start(ctx, "GET /cart")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("export spans with gzip: %v", err)
	}

	mexp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(v.OTLPGRPCAddr), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)))
	c, _ := mp.Meter("e2e").Int64Counter("e2e.gzip.requests")
	c.Add(ctx, 3)
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("export metrics with gzip: %v", err)
	}

	traceURL := "http://" + v.TempoAddr + "/api/v2/traces/" + span.SpanContext().TraceID().String()
	harness.Eventually(t, 20*time.Second, func() (bool, string) {
		resp, err := http.Get(traceURL)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, "trace by id: " + resp.Status
	})
	waitSeries(t, harness.NewAPI(v.MetricsURL("")), `e2e_gzip_requests_total{job="e2e-gzip"}`, 3)
}
