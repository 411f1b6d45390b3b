package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pyroscopego "github.com/grafana/pyroscope-go"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// TestAuthRealClients: the real clients write with their own credential
// settings over TLS (OTel Go SDK over gRPC and HTTP with headers, Prometheus
// 2.42 remote write with basic_auth and with a bearer authorization,
// pyroscope-go with basic auth), and Grafana's datasource health checks,
// made as Grafana makes them, pass with basic auth. Without credentials the
// SDK's export fails.
func TestAuthRealClients(t *testing.T) {
	t.Parallel()
	s := startAuth(t)
	v := s.v
	ctx := context.Background()
	res := resource.NewSchemaless(attribute.String("service.name", "e2e-auth"))
	writeHdr := map[string]string{"authorization": bearer(writerToken)}

	// OTel SDK, traces over gRPC: refused without credentials, stored with them.
	export := func(headers map[string]string) (string, error) {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(v.OTLPGRPCAddr),
			otlptracegrpc.WithTLSCredentials(credentials.NewTLS(s.tls.Clone())), otlptracegrpc.WithHeaders(headers))
		if err != nil {
			t.Fatal(err)
		}
		// Export the recorded span directly: the SDK's own processors only
		// hand export errors to the global error handler.
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(rec))
		_, span := tp.Tracer("e2e").Start(ctx, "checkout")
		id := span.SpanContext().TraceID()
		span.End()
		defer exp.Shutdown(ctx)
		return hex.EncodeToString(id[:]), exp.ExportSpans(ctx, rec.Ended())
	}
	if _, err := export(nil); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Errorf("trace export without credentials: %v, want Unauthenticated", err)
	}
	traceID, err := export(writeHdr)
	if err != nil {
		t.Fatalf("trace export with a bearer token: %v", err)
	}

	// OTel SDK, metrics over HTTP.
	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(v.OTLPHTTPAddr),
		otlpmetrichttp.WithTLSClientConfig(s.tls.Clone()), otlpmetrichttp.WithHeaders(writeHdr))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Hour))))
	g, _ := mp.Meter("e2e").Int64Gauge("e2e.auth.gauge")
	g.Record(ctx, 5)
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("metric export with a bearer token: %v", err)
	}

	// Prometheus 2.42 remote write: basic_auth and a bearer authorization.
	prom := harness.StartPrometheus(t, fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: self
    static_configs: [{targets: ["127.0.0.1:0"]}]
remote_write:
  - url: %[1]s
    basic_auth: {username: alice, password: %[2]s}
    tls_config: {ca_file: %[3]s, server_name: localhost}
    write_relabel_configs: [{target_label: via, replacement: basic}]
    queue_config: {batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}
  - url: %[1]s
    authorization: {credentials: %[4]s}
    tls_config: {ca_file: %[3]s, server_name: localhost}
    write_relabel_configs: [{target_label: via, replacement: bearer}]
    queue_config: {batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}
`, v.MetricsURL("/api/v1/write"), alicePassword, s.caFile, writerToken))
	_ = prom

	// Pyroscope Go SDK with basic auth.
	prof, err := pyroscopego.Start(pyroscopego.Config{
		ApplicationName: "e2e.auth", ServerAddress: v.URL(v.PyroscopeAddr, ""),
		BasicAuthUser: "alice", BasicAuthPassword: alicePassword,
		HTTPClient: v.HTTPClient(), UploadRate: time.Hour,
		ProfileTypes: []pyroscopego.ProfileType{pyroscopego.ProfileCPU, pyroscopego.ProfileInuseSpace},
	})
	if err != nil {
		t.Fatal(err)
	}
	prof.Flush(true)
	if err := prof.Stop(); err != nil {
		t.Fatal(err)
	}

	// Read everything back as alice (team-a, her first tenant).
	reader := s.client(basicAuth("alice", alicePassword), "")
	api := harness.NewAPI(v.MetricsURL(""))
	api.Client = reader
	waitSeries(t, api, `e2e_auth_gauge{job="e2e-auth"}`, 5)
	for _, via := range []string{"basic", "bearer"} {
		waitSeries(t, api, `up{job="self",via="`+via+`"}`, 0)
	}
	harness.Eventually(t, 20*time.Second, func() (bool, string) {
		resp, err := reader.Get(v.URL(v.TempoAddr, "/api/v2/traces/"+traceID))
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("trace by ID: %d", resp.StatusCode)
	})
	pc := querierv1connect.NewQuerierServiceClient(reader, v.URL(v.PyroscopeAddr, ""))
	types, err := pc.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{
		Start: time.Now().Add(-time.Hour).UnixMilli(), End: time.Now().Add(time.Minute).UnixMilli()}))
	if err != nil || len(types.Msg.ProfileTypes) == 0 {
		t.Errorf("profile types after pyroscope-go with basic auth: %v %v", types, err)
	}

	// Grafana's datasource health checks (COMPAT.md), with basic auth.
	grafana := func(name string, req *http.Request, want string) {
		t.Helper()
		req.Header.Set("Authorization", basicAuth("alice", alicePassword))
		resp, err := v.HTTPClient().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(b.String(), want) {
			t.Errorf("%s health check: %d %q, want 200 with %q", name, resp.StatusCode, b.String(), want)
		}
	}
	form := url.Values{"query": {"1+1"}, "time": {"4"}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, v.MetricsURL("/api/v1/query"), strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	grafana("prometheus", req, `"resultType":"scalar"`)
	req, _ = http.NewRequest(http.MethodGet, v.MetricsURL("/api/v1/status/buildinfo"), nil)
	grafana("prometheus buildinfo", req, `"version"`)
	req, _ = http.NewRequest(http.MethodGet, v.URL(v.TempoAddr, "/api/echo"), nil)
	grafana("tempo", req, "echo")
	body, _ := proto.Marshal(&querierv1.ProfileTypesRequest{Start: 1000, End: 4000})
	req, _ = http.NewRequest(http.MethodPost, v.URL(v.PyroscopeAddr, "/querier.v1.QuerierService/ProfileTypes"), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Connect-Protocol-Version", "1")
	grafana("pyroscope", req, "")
}
