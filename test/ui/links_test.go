package uie2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

const fastService = "ui-links-fast"

// sendFastTrace sends, with the OTel Go SDK, one trace whose root span lasts
// 420µs and whose child lasts 85µs: durations Tempo's search rounds to 0 ms.
func sendFastTrace(t *testing.T, otlpGRPC string) string {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(otlpGRPC), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatalf("otlp exporter: %v", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", fastService))))
	tr := tp.Tracer("links")
	t0 := time.Now().Add(-time.Minute)
	ctx, root := tr.Start(ctx, "fast-root", trace.WithTimestamp(t0))
	_, child := tr.Start(ctx, "fast-child", trace.WithTimestamp(t0.Add(100*time.Microsecond)))
	child.End(trace.WithTimestamp(t0.Add(185 * time.Microsecond)))
	root.End(trace.WithTimestamp(t0.Add(420 * time.Microsecond)))
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("flush spans: %v", err)
	}
	return root.SpanContext().TraceID().String()
}

// TestUILinksAndSubMillisecondSpans follows, in Chromium, the links a user
// brings from elsewhere (Prometheus's /graph?g0.expr=…, the Prometheus and
// Tempo ports' roots, /trace/<id>, a reloaded deep link) and checks that
// sub-millisecond spans read 420µs and 85µs, not 0.
func TestUILinksAndSubMillisecondSpans(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	requireBrowser(t)
	root := repoRoot(t)
	buildUI(t, root)
	s := startVispyr(t, root)
	traceID := sendFastTrace(t, s.otlpGRPC)
	waitFor(t, "the fast trace", 20*time.Second, func() (*http.Response, error) {
		return http.Get("http://" + s.ui + "/tempo/api/v2/traces/" + traceID)
	}, func(b []byte) bool { return bytes.Contains(b, []byte("fast-child")) })

	want, _ := json.Marshal(map[string]any{
		"traceID": traceID, "service": fastService, "rootDur": "420µs", "childDur": "85µs",
		"promExpr": `sum by (job) (up)`,
	})
	runNode(t, filepath.Join(root, "test", "ui", "links.mjs"), "links", "http://"+s.ui, "http://"+s.prom, "http://"+s.tempo,
		filepath.Join(root, "artifacts", "screenshots"), string(want))
}
