package e2e

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// TestLogsFromTelemetrygen sends OTLP logs with telemetrygen over gRPC (4317)
// and HTTP (4318 /v1/logs), stops Vispyr, and reads its log store: the lines are
// in streams labelled as Loki 3 labels OTLP resources, with the trace context
// and severity as structured metadata.
func TestLogsFromTelemetrygen(t *testing.T) {
	tg := testpeer.Binary(t, "telemetrygen")
	dir := t.TempDir()
	v := harness.Start(t, harness.Options{DataDir: dir})
	const traceID, spanID = "ae87dadd90e9935a4bc9660628efd569", "5828fa4960140870"
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(tg, append([]string{"logs", "--otlp-insecure", "--logs", "25", "--rate", "0",
			"--severity-text", "Error", "--severity-number", "17", "--trace-id", traceID, "--span-id", spanID,
			"--otlp-attributes", `k8s.namespace.name="shop"`, "--otlp-attributes", `host.name="node-1"`}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("telemetrygen: %v\n%s", err, out)
		}
	}
	run("--otlp-endpoint", v.OTLPGRPCAddr, "--service", "checkout-grpc")
	run("--otlp-http", "--otlp-endpoint", v.OTLPHTTPAddr, "--service", "checkout-http")
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := logs.Open(filepath.Join(dir, "logs"), logs.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, svc := range []string{"checkout-grpc", "checkout-http"} {
		it, err := st.Select(context.Background(), "single-tenant", logs.SelectParams{
			Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "service_name", svc)},
			Start:    0, End: 1 << 62, Direction: logs.Forward})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for it.Next() {
			ls, e := it.At()
			n++
			if ls.Get("k8s_namespace_name") != "shop" || ls.Has("host_name") {
				t.Fatalf("%s: stream labels %v: want k8s_namespace_name indexed, host_name not", svc, ls)
			}
			m := e.Metadata
			if e.Line != "the message" || m.Get("trace_id") != traceID || m.Get("span_id") != spanID ||
				m.Get("host_name") != "node-1" || m.Get("severity_text") != "Error" || m.Get("detected_level") != "error" {
				t.Fatalf("%s: line %q metadata %v", svc, e.Line, m)
			}
		}
		if n != 25 {
			t.Fatalf("%s: %d lines stored, want 25", svc, n)
		}
	}
}
