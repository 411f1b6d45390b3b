package signals

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// TestTelemetrygenTraces sends traces with the Collector's own load generator over
// gRPC and over HTTP, then finds every trace by search and reads each whole.
func TestTelemetrygenTraces(t *testing.T) {
	bin := testpeer.Binary(t, "telemetrygen")
	v := harness.Start(t, harness.Options{})
	api := tempo{"http://" + v.TempoAddr}

	for _, tc := range []struct{ service, endpoint, transport string }{
		{"tg-grpc", v.OTLPGRPCAddr, ""},
		{"tg-http", v.OTLPHTTPAddr, "--otlp-http"},
	} {
		args := []string{"traces", "--otlp-insecure", "--otlp-endpoint", tc.endpoint, "--traces", "5", "--child-spans", "2", "--service", tc.service}
		if tc.transport != "" {
			args = append(args, tc.transport)
		}
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("telemetrygen %s: %v\n%s", tc.service, err, out)
		}
		// Read-after-write: acknowledged spans are searchable at once.
		sr := api.search(t, fmt.Sprintf(`{resource.service.name=%q}`, tc.service))
		if len(sr.Traces) != 5 {
			t.Fatalf("%s: search found %d traces, want 5", tc.service, len(sr.Traces))
		}
		for _, tr := range sr.Traces {
			if tr.RootServiceName != tc.service || tr.RootTraceName != "lets-go" {
				t.Errorf("%s: root %q/%q", tc.service, tr.RootServiceName, tr.RootTraceName)
			}
			td, code, err := api.traceV2(tr.TraceID)
			if err != nil {
				t.Fatalf("trace %s: %d %v", tr.TraceID, code, err)
			}
			if td.SpanCount() != 3 { // root + 2 children
				t.Errorf("trace %s has %d spans, want 3", tr.TraceID, td.SpanCount())
			}
		}
	}
	if _, code, _ := api.traceV1("0123456789abcdef0123456789abcdef"); code != http.StatusNotFound {
		t.Errorf("unknown trace: %d, want 404", code)
	}
}

// TestTracesSurviveKill9 acknowledges traces one request at a time, kills the
// process without warning, and expects every acknowledged trace back.
func TestTracesSurviveKill9(t *testing.T) {
	v := harness.Start(t, harness.Options{})
	var ids []pcommon.TraceID
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; ctx.Err() == nil && i < 200; i++ {
		id := pcommon.TraceID{0xc0, 0xde, byte(i >> 8), byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
		body, _ := ptraceotlp.NewExportRequestFromTraces(oneSpanTrace(id, "crash-svc")).MarshalProto()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, v.OTLPHTTPURL("/v1/traces"), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			break
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ids = append(ids, id)
		}
	}
	if len(ids) < 20 {
		t.Fatalf("only %d traces acknowledged before the deadline", len(ids))
	}
	v.Kill9()
	v.Restart()
	api := tempo{"http://" + v.TempoAddr}
	for _, id := range ids {
		td, code, err := api.traceV1(id.String())
		if err != nil || td.SpanCount() != 1 {
			t.Fatalf("acknowledged trace %s lost after kill -9: %d %v", id, code, err)
		}
	}
	t.Logf("%d acknowledged traces all survived kill -9", len(ids))
}

func oneSpanTrace(id pcommon.TraceID, service string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(id)
	s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	s.SetName("work")
	now := time.Now()
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	return td
}
