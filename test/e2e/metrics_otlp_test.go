package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// runTelemetrygen runs `telemetrygen metrics` for a couple of seconds and
// fails the test if it reports an export error.
func runTelemetrygen(t *testing.T, args ...string) {
	t.Helper()
	bin := testpeer.Binary(t, "telemetrygen")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"metrics", "--otlp-insecure", "--duration=2s", "--rate=5",
		"--aggregation-temporality=cumulative"}
	out, err := exec.CommandContext(ctx, bin, append(base, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("telemetrygen %v: %v\n%s", args, err, out)
	}
	// telemetrygen logs failed exports but may still exit 0.
	if s := string(out); strings.Contains(s, "failed to upload metrics") || strings.Contains(s, "exporting failed") {
		t.Fatalf("telemetrygen %v reported export errors:\n%s", args, s)
	}
}

// waitSeries waits until query has exactly one series whose newest value
// is at least minLast, and returns it.
func waitSeries(t *testing.T, api *harness.API, query string, minLast float64) harness.Series {
	t.Helper()
	var got harness.Series
	harness.Eventually(t, 20*time.Second, func() (bool, string) {
		s := api.QueryRange(t, query, time.Now().Add(-2*time.Minute), time.Now(), time.Second)
		if len(s) != 1 || len(s[0].Values) == 0 {
			return false, fmt.Sprintf("%s: %d series, want 1: %+v", query, len(s), s)
		}
		if last := s[0].Values[len(s[0].Values)-1].Float(); last < minLast {
			return false, fmt.Sprintf("%s: last value %v < %v", query, last, minLast)
		}
		got = s[0]
		return true, ""
	})
	return got
}

// telemetrygen over OTLP/gRPC (4317), OTLP/HTTP (4318 /v1/metrics) and
// Prometheus's OTLP path on 9090; names follow Prometheus's OTLP
// translation: a monotonic cumulative sum gains _total, service.name becomes
// job.
func TestTelemetrygenMetrics(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	api := harness.NewAPI(v.MetricsURL(""))

	runTelemetrygen(t, "--otlp-endpoint="+v.OTLPGRPCAddr, "--metric-type=Sum",
		"--otlp-metric-name=e2e_tg_grpc", "--service=e2e-tg-grpc")
	runTelemetrygen(t, "--otlp-http", "--otlp-endpoint="+v.OTLPHTTPAddr, "--metric-type=Gauge",
		"--otlp-metric-name=e2e_tg_http", "--service=e2e-tg-http")
	runTelemetrygen(t, "--otlp-http", "--otlp-endpoint="+v.MetricsAddr,
		"--otlp-http-url-path=/api/v1/otlp/v1/metrics", "--metric-type=Sum",
		"--otlp-metric-name=e2e_tg_prom", "--service=e2e-tg-prom")

	// telemetrygen's value is its loop counter: 2s at 5/s gets past 3.
	waitSeries(t, api, `e2e_tg_grpc_total{job="e2e-tg-grpc"}`, 3)
	waitSeries(t, api, `e2e_tg_http{job="e2e-tg-http"}`, 3)
	waitSeries(t, api, `e2e_tg_prom_total{job="e2e-tg-prom"}`, 3)

	// The untranslated name must not exist next to the translated one.
	if s := api.QueryRange(t, `{__name__="e2e_tg_grpc"}`, time.Now().Add(-2*time.Minute), time.Now(), time.Second); len(s) != 0 {
		t.Errorf("found untranslated series e2e_tg_grpc: %+v", s)
	}
	v.CheckServing(t)
}

// The OTel Go SDK's OTLP/gRPC metric exporter sends a histogram recorded
// inside a sampled span; Vispyr stores it as a classic Prometheus histogram
// with the unit suffix, and returns the span's trace ID as an exemplar.
func TestOTelSDKHistogramWithExemplar(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	ctx := context.Background()

	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(v.OTLPGRPCAddr), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatalf("new exporter: %v", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "e2e-sdk"),
		attribute.String("service.instance.id", "i-1"),
	)
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		// An exponential histogram becomes a Prometheus native histogram.
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "e2e.exp.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}},
		)),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(ctx)

	hist, err := mp.Meter("e2e").Float64Histogram("e2e.request.duration",
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 0.5, 1))
	if err != nil {
		t.Fatal(err)
	}
	expHist, err := mp.Meter("e2e").Float64Histogram("e2e.exp.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	spanCtx, span := tp.Tracer("e2e").Start(ctx, "checkout")
	hist.Record(spanCtx, 0.3, metric.WithAttributes(attribute.String("route", "/checkout")))
	for _, d := range []float64{0.01, 0.02, 0.04, 0.08, 1.5} {
		expHist.Record(spanCtx, d)
	}
	span.End()
	traceID := span.SpanContext().TraceID().String()
	// Shutdown exports everything recorded and reports export errors.
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("export metrics: %v", err)
	}

	api := harness.NewAPI(v.MetricsURL(""))
	sel := `{job="e2e-sdk",instance="i-1",route="/checkout"}`
	waitSeries(t, api, "e2e_request_duration_seconds_count"+sel, 1)
	bucket := waitSeries(t, api, `e2e_request_duration_seconds_bucket{le="0.5",job="e2e-sdk"}`, 1)
	if got := bucket.Values[len(bucket.Values)-1].Float(); got != 1 {
		t.Errorf("bucket le=0.5 = %v, want 1", got)
	}
	_, sum, _ := api.Instant(t, "e2e_request_duration_seconds_sum"+sel, time.Now())
	if len(sum) != 1 || sum[0].Value.Float() != 0.3 {
		t.Errorf("sum = %+v, want 0.3", sum)
	}
	_, q, _ := api.Instant(t, `histogram_quantile(0.5, e2e_request_duration_seconds_bucket`+sel+`)`, time.Now())
	if len(q) != 1 || q[0].Value.Float() <= 0.1 || q[0].Value.Float() > 0.5 {
		t.Errorf("histogram_quantile(0.5) = %+v, want in (0.1, 0.5]", q)
	}

	// The exponential histogram is a native histogram: no _bucket series.
	var native []harness.Series
	harness.Eventually(t, 10*time.Second, func() (bool, string) {
		_, native, _ = api.Instant(t, `histogram_count(e2e_exp_duration_seconds{job="e2e-sdk"})`, time.Now())
		return len(native) == 1, fmt.Sprintf("histogram_count(e2e_exp_duration_seconds) = %+v", native)
	})
	if native[0].Value.V != "5" {
		t.Errorf("histogram_count(e2e_exp_duration_seconds) = %s, want 5", native[0].Value.V)
	}
	_, med, _ := api.Instant(t, `histogram_quantile(0.5, e2e_exp_duration_seconds{job="e2e-sdk"})`, time.Now())
	if len(med) != 1 || med[0].Value.Float() < 0.03 || med[0].Value.Float() > 0.05 {
		t.Errorf("native histogram median = %+v, want about 0.04", med)
	}

	// The exemplar links the bucket to the trace.
	var found bool
	harness.Eventually(t, 10*time.Second, func() (bool, string) {
		r := api.Get(t, "/api/v1/query_exemplars", url.Values{
			"query": {"e2e_request_duration_seconds_bucket" + sel},
			"start": {harness.FormatTime(time.Now().Add(-5 * time.Minute))},
			"end":   {harness.FormatTime(time.Now().Add(time.Minute))},
		}).MustSucceed(t)
		var data []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels    map[string]string `json:"labels"`
				Value     string            `json:"value"`
				Timestamp float64           `json:"timestamp"`
			} `json:"exemplars"`
		}
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatalf("decode exemplars: %v: %s", err, r.Body)
		}
		for _, s := range data {
			for _, e := range s.Exemplars {
				if e.Labels["trace_id"] == traceID {
					if e.Value != "0.3" || e.Timestamp < float64(time.Now().Add(-5*time.Minute).Unix()) {
						t.Errorf("exemplar %+v: want value \"0.3\" and a recent float timestamp", e)
					}
					if s.SeriesLabels["__name__"] != "e2e_request_duration_seconds_bucket" {
						t.Errorf("exemplar on series %v, want a _bucket series", s.SeriesLabels)
					}
					found = true
				}
			}
		}
		return found, "no exemplar with trace_id " + traceID + " in " + r.Body
	})
	v.CheckServing(t)
}
