package uie2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/vispyr/vispyr/internal/testpeer"
)

const logsService = "ui-logs-checkout"

// lokiPush sends lines to Loki's JSON push API as one stream; meta, when set,
// is every line's structured metadata.
func lokiPush(t *testing.T, pushURL string, stream map[string]string, lines map[time.Time]string, meta map[string]string) {
	t.Helper()
	var values [][]any
	for ts, line := range lines {
		v := []any{fmt.Sprint(ts.UnixNano()), line}
		if meta != nil {
			v = append(v, meta)
		}
		values = append(values, v)
	}
	body, _ := json.Marshal(map[string]any{"streams": []any{map[string]any{"stream": stream, "values": values}}})
	resp, err := http.Post(pushURL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("loki push: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("loki push: HTTP %d", resp.StatusCode)
	}
}

// TestUILogs drives the Logs page of a server holding one traced request (OTel Go SDK)
// and its service's log lines (Loki push), some carrying the span's trace_id and span_id
// as structured metadata: lines show and expand, the volume histogram draws, completion
// offers labels and values, a line's trace link opens the trace, the span's "Logs for this
// span" link comes back to its lines, and live tail shows a line pushed while watching.
func TestUILogs(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	testpeer.Binary(t, "chromium")
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "test", "ui", "node_modules", "playwright-core")); err != nil {
		msg := "playwright-core not installed: run `npm ci` in test/ui (.ci/install.d/60-ui.sh does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	buildUI(t, root)
	lokiAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	s := startVispyr(t, root, "-loki.listen-address", lokiAddr)
	base := "http://" + s.ui
	pushURL := "http://" + lokiAddr + "/loki/api/v1/push"

	// One request: a server span with a child, as the OTel Go SDK exports them.
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(s.otlpGRPC), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", logsService))))
	ctx, root1 := tp.Tracer("ui-logs").Start(context.Background(), "POST /checkout", trace.WithSpanKind(trace.SpanKindServer))
	_, child := tp.Tracer("ui-logs").Start(ctx, "charge card")
	traceID, spanID := child.SpanContext().TraceID().String(), child.SpanContext().SpanID().String()
	child.End()
	root1.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("flush spans: %v", err)
	}

	// The service's lines: 20 without a trace over the last minutes, 3 of the request.
	now := time.Now()
	stream := map[string]string{"service_name": logsService, "env": "e2e"}
	plain := map[time.Time]string{}
	for i := 0; i < 20; i++ {
		lvl := []string{"info", "info", "warn", "error"}[i%4]
		plain[now.Add(-time.Duration(i*10+30)*time.Second)] = fmt.Sprintf("level=%s msg=\"cart refreshed\" n=%d", lvl, i)
	}
	lokiPush(t, pushURL, stream, plain, nil)
	traced := map[time.Time]string{
		now.Add(-3 * time.Second): `level=info msg="charging card"`,
		now.Add(-2 * time.Second): `level=error msg="card declined"`,
		now.Add(-1 * time.Second): `level=info msg="checkout answered 402"`,
	}
	lokiPush(t, pushURL, stream, traced, map[string]string{"trace_id": traceID, "span_id": spanID})

	q := url.QueryEscape(`{service_name="` + logsService + `"}`)
	waitFor(t, "the lines through the UI's Loki API", 15*time.Second, func() (*http.Response, error) {
		return http.Get(fmt.Sprintf("%s/loki/api/v1/query_range?query=%s&limit=100&start=%d", base, q, now.Add(-time.Hour).UnixNano()))
	}, func(b []byte) bool { return bytes.Count(b, []byte(`"level=`)) == 23 })
	waitFor(t, "the trace", 15*time.Second, func() (*http.Response, error) {
		return http.Get(base + "/tempo/api/v2/traces/" + traceID)
	}, func(b []byte) bool { return strings.Contains(string(b), "charge card") })

	want, _ := json.Marshal(map[string]any{
		"service": logsService, "lines": 23, "traced": 3, "traceID": traceID, "spanID": spanID,
		"tracedLine": "card declined", "pushURL": pushURL,
	})
	runNode(t, filepath.Join(root, "test", "ui", "logs.mjs"), "logs", base, filepath.Join(root, "artifacts", "screenshots"), string(want))
}
