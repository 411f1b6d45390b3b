package e2e

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"

	"github.com/vispyr/vispyr/internal/auth/authtest"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// startTLS runs Vispyr with a `tls:` section and a certificate from a fresh CA.
func startTLS(t *testing.T, extraConfig string) (*harness.Vispyr, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	ca := authtest.NewCA(t, "e2e CA")
	certFile, keyFile := ca.IssueFiles(t, dir, "vispyr")
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	cfg := fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\n  min_version: TLS12\n%s", certFile, keyFile, extraConfig)
	return harness.Start(t, harness.Options{Config: cfg, TLS: client}), client
}

// The OTel Go SDK sends traces over gRPC with TLS and metrics over OTLP/HTTP
// with TLS; both read back over HTTPS. Every listener but health refuses
// plain HTTP.
func TestTLSOnEveryListener(t *testing.T) {
	t.Parallel()
	v, clientTLS := startTLS(t, "")
	ctx := context.Background()
	res := resource.NewSchemaless(attribute.String("service.name", "e2e-tls"))

	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(v.OTLPGRPCAddr),
		otlptracegrpc.WithTLSCredentials(credentials.NewTLS(clientTLS.Clone())))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(texp))
	_, span := tp.Tracer("e2e").Start(ctx, "checkout")
	traceID := span.SpanContext().TraceID()
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("export traces over OTLP/gRPC with TLS: %v", err)
	}

	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(v.OTLPHTTPAddr), otlpmetrichttp.WithTLSClientConfig(clientTLS.Clone()))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Hour))))
	g, _ := mp.Meter("e2e").Int64Gauge("e2e.tls.gauge")
	g.Record(ctx, 7)
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("export metrics over OTLP/HTTP with TLS: %v", err)
	}

	api := harness.NewAPI(v.MetricsURL(""))
	api.Client = v.HTTPClient()
	waitSeries(t, api, `e2e_tls_gauge{job="e2e-tls"}`, 7)

	hc := v.HTTPClient()
	harness.Eventually(t, 20*time.Second, func() (bool, string) {
		resp, err := hc.Get(v.URL(v.TempoAddr, "/api/v2/traces/"+hex.EncodeToString(traceID[:])))
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("trace by ID over HTTPS: %d", resp.StatusCode)
	})

	plain := &http.Client{Timeout: 5 * time.Second}
	for name, addr := range map[string]string{
		"otlp_http": v.OTLPHTTPAddr, "prometheus": v.MetricsAddr, "tempo": v.TempoAddr,
		"pyroscope": v.PyroscopeAddr, "pyroscope_ingest": v.PyroscopeIngestAddr, "ui": v.UIAddr,
		"admin": v.AdminAddr, "otlp_grpc": v.OTLPGRPCAddr,
	} {
		resp, err := plain.Get("http://" + addr + "/")
		if err != nil {
			continue // gRPC's HTTP/2 server drops a plain HTTP/1 request
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s answered plain HTTP with %d %q; want 400 (TLS only)", name, resp.StatusCode, body)
		}
	}
	resp, err := plain.Get("http://" + v.HealthAddr + "/health/status")
	if err != nil {
		t.Fatalf("health over plain HTTP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health over plain HTTP = %d, want 200", resp.StatusCode)
	}
}
