package signals

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
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

// TestTracesSurviveKill9 kills the process without warning while four senders
// are mid-stream, and expects every acknowledged trace back after restart.
func TestTracesSurviveKill9(t *testing.T) {
	v := harness.Start(t, harness.Options{})
	var (
		mu    sync.Mutex
		acked []pcommon.TraceID
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for sender := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				id := pcommon.TraceID{0xc0, 0xde, byte(sender), byte(i >> 16), byte(i >> 8), byte(i), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
				body, _ := ptraceotlp.NewExportRequestFromTraces(oneSpanTrace(id, "crash-svc")).MarshalProto()
				resp, err := client.Post(v.OTLPHTTPURL("/v1/traces"), "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					return // the process is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	harness.Eventually(t, 15*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200, fmt.Sprintf("%d traces acknowledged", len(acked))
	})
	v.Kill9() // mid-stream: the senders are still sending
	wg.Wait()
	v.Restart()
	api := tempo{"http://" + v.TempoAddr}
	for _, id := range acked {
		td, code, err := api.traceV1(id.String())
		if err != nil || td.SpanCount() != 1 {
			t.Fatalf("acknowledged trace %s lost after kill -9: %d %v", id, code, err)
		}
	}
	t.Logf("%d acknowledged traces all survived kill -9 mid-stream", len(acked))
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
