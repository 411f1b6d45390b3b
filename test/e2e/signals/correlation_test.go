package signals

import (
	"context"
	"net/http"
	"net/url"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pyroscopego "github.com/grafana/pyroscope-go"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

func provider(t *testing.T, endpoint, service string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
}

//go:noinline
func vispyrPriceLookup(d time.Duration) uint64 {
	x := uint64(3)
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 10000; i++ {
			x = x*2862933555777941757 + 3037000493
		}
	}
	return x
}

var sink uint64

// TestCorrelation instruments two services with the OTel Go SDK and pyroscope-go,
// then follows the links a user follows: RED metrics and the service graph in
// PromQL, an exemplar to the trace, the trace whole, and the span's profile.
func TestCorrelation(t *testing.T) {
	v := harness.Start(t, harness.Options{Config: fastGenerator})
	start := time.Now()

	prof, err := pyroscopego.Start(pyroscopego.Config{
		ApplicationName: "backend",
		ServerAddress:   "http://" + v.PyroscopeIngestAddr,
		UploadRate:      time.Hour, // flushed by hand below
		ProfileTypes:    []pyroscopego.ProfileType{pyroscopego.ProfileCPU},
	})
	if err != nil {
		t.Fatal(err)
	}

	front := provider(t, v.OTLPGRPCAddr, "frontend")
	back := provider(t, v.OTLPGRPCAddr, "backend")
	ctx, root := front.Tracer("web").Start(context.Background(), "GET /checkout", trace.WithSpanKind(trace.SpanKindServer))
	ctx, call := front.Tracer("web").Start(ctx, "GET /price", trace.WithSpanKind(trace.SpanKindClient))
	ctx, srv := back.Tracer("api").Start(ctx, "GET /price", trace.WithSpanKind(trace.SpanKindServer))
	spanID := srv.SpanContext().SpanID().String()
	srv.SetAttributes(attribute.String("pyroscope.profile.id", spanID))
	pprof.Do(ctx, pprof.Labels("span_id", spanID, "span_name", "GET /price"), func(context.Context) {
		sink += vispyrPriceLookup(1500 * time.Millisecond)
	})
	_, db := back.Tracer("api").Start(ctx, "SELECT prices", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "postgresql"), attribute.String("db.name", "prices")))
	db.End()
	srv.End()
	call.End()
	root.End()
	traceID := root.SpanContext().TraceID().String()
	for _, tp := range []*sdktrace.TracerProvider{back, front} {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	prof.Flush(true)
	if err := prof.Stop(); err != nil {
		t.Fatal(err)
	}

	// The whole trace, across both services.
	api := tempo{"http://" + v.TempoAddr}
	td, code, err := api.traceV2(traceID)
	if err != nil || td.SpanCount() != 4 || td.ResourceSpans().Len() < 2 {
		t.Fatalf("trace %s: %d %v, %d spans in %d resources; want 4 in 2", traceID, code, err, td.SpanCount(), td.ResourceSpans().Len())
	}
	// Search answers trace IDs as Tempo does, without leading zeros.
	if sr := api.search(t, `{span."pyroscope.profile.id" != nil}`); len(sr.Traces) != 1 || sr.Traces[0].TraceID != strings.TrimLeft(traceID, "0") {
		t.Errorf("search by pyroscope.profile.id: %+v", sr.Traces)
	}

	// RED metrics and the service graph, as Grafana's APM table and service map ask.
	prom := harness.NewAPI("http://" + v.MetricsAddr)
	expect := func(query, want string) {
		t.Helper()
		harness.Eventually(t, 20*time.Second, func() (bool, string) {
			_, series, resp := prom.Instant(t, query, time.Now())
			got := ""
			for _, s := range series {
				if s.Value != nil {
					got += s.Value.V + ";"
				}
			}
			return got == want, "query " + query + " = " + got + " (" + resp.Error + "), want " + want
		})
	}
	expect(`sum(traces_spanmetrics_calls_total{service="frontend", span_kind="SPAN_KIND_SERVER"})`, "1;")
	expect(`sum(traces_spanmetrics_calls_total{service="backend", span_name="GET /price", status_code="STATUS_CODE_UNSET"})`, "1;")
	expect(`sum by (client, server) (traces_service_graph_request_total{client="frontend", server="backend"})`, "1;")
	expect(`sum by (client, server, connection_type) (traces_service_graph_request_total{client="backend", connection_type="database"})`, "1;")

	// A latency exemplar leads to the trace.
	ex := prom.Get(t, "/api/v1/query_exemplars", url.Values{
		"query": {`traces_spanmetrics_latency_bucket{service="backend"}`},
		"start": {harness.FormatTime(start.Add(-time.Minute))}, "end": {harness.FormatTime(time.Now().Add(time.Minute))},
	})
	if !strings.Contains(string(ex.Data), traceID) {
		t.Errorf("no exemplar with trace_id %s: %s", traceID, ex.Data)
	}

	// And the span leads to its profile: Grafana's "Related profile" call.
	client := querierv1connect.NewQuerierServiceClient(http.DefaultClient, "http://"+v.PyroscopeAddr)
	resp, err := client.SelectMergeSpanProfile(context.Background(), connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
		ProfileTypeID: cpuType, LabelSelector: `{service_name="backend"}`, SpanSelector: []string{spanID},
		Start: start.Add(-time.Minute).UnixMilli(), End: time.Now().Add(time.Minute).UnixMilli(),
	}))
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Join(resp.Msg.Flamegraph.Names, " ")
	if !strings.Contains(names, "vispyrPriceLookup") {
		t.Errorf("span %s profile lacks vispyrPriceLookup: %s", spanID, names)
	}
}
