package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// TestLogsFromOTelNodeSDK sends logs with the OpenTelemetry JS SDK (NodeSDK
// 0.202 and its OTLP log exporters, installed by .ci/install.d/46-faro.sh)
// over HTTP (4318) and gRPC (4317), each record emitted in a span's context,
// and checks that every line is stored with that span's trace_id and span_id
// as structured metadata.
func TestLogsFromOTelNodeSDK(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "otelnode"))
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@opentelemetry", "exporter-logs-otlp-grpc"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("OTel JS SDK missing (run .ci/install.d/46-faro.sh): %v", err)
		}
		t.Skipf("OTel JS SDK missing (run .ci/install.d/46-faro.sh): %v", err)
	}
	data := t.TempDir()
	v := harness.Start(t, harness.Options{DataDir: data})
	const n = 20
	type sent struct{ TraceID, SpanID string }
	spans := map[string]sent{}
	for _, tc := range []struct{ protocol, endpoint, service string }{
		{"http", "http://" + v.OTLPHTTPAddr, "checkout-js-http"},
		{"grpc", "http://" + v.OTLPGRPCAddr, "checkout-js-grpc"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, node, "logs.mjs", tc.protocol, tc.endpoint, tc.service, strconv.Itoa(n))
		cmd.Dir = dir
		// Logs only: no trace or metric exporter dialling a default endpoint.
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("%s exporter: %v\n%s", tc.protocol, err, out)
		}
		var s sent
		if err := json.Unmarshal(out, &s); err != nil || len(s.TraceID) != 32 {
			t.Fatalf("%s exporter printed %q: %v", tc.protocol, out, err)
		}
		spans[tc.service] = s
	}
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := logs.Open(filepath.Join(data, "logs"), logs.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for svc, s := range spans {
		it, err := st.Select(context.Background(), "single-tenant", logs.SelectParams{
			Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "service_name", svc)},
			Start:    0, End: 1 << 62, Direction: logs.Forward})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for it.Next() {
			ls, e := it.At()
			m := e.Metadata
			if ls.Get("deployment_environment") != "e2e" || m.Get("trace_id") != s.TraceID || m.Get("span_id") != s.SpanID ||
				m.Get("order_id") == "" || m.Get("scope_name") != "checkout-js" || m.Get("detected_level") != "warn" {
				t.Fatalf("%s: line %q labels %v metadata %v: want the span %s/%s, order_id, scope_name and detected_level=warn",
					svc, e.Line, ls, m, s.TraceID, s.SpanID)
			}
			got++
		}
		if got != n {
			t.Errorf("%s: %d lines stored, want %d", svc, got, n)
		}
	}
}
