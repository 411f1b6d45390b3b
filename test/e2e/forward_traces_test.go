package e2e

import (
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// Spans sent to the gateway arrive intact (every span, its name and
// attributes) at a real Jaeger v2 by OTLP gRPC and at a second Vispyr by
// OTLP/HTTP, although Jaeger is not running yet when they are acknowledged,
// the second Vispyr goes down, and the gateway is killed with -9 holding
// the backlog of both.
func TestGatewayForwardsTracesToJaegerAndVispyr(t *testing.T) {
	t.Parallel()
	jaeger := harness.NewJaeger(t) // down until the end
	peer := harness.Start(t, harness.Options{})
	gw := harness.Start(t, harness.Options{Command: "gateway", Config: fmt.Sprintf(`
forward:
  traces:
    - name: jaeger
      url: grpc://%s
      queue: {batch_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}
    - name: vispyr
      url: http://%s
      queue: {batch_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}
`, jaeger.OTLPGRPCAddr, peer.OTLPHTTPAddr)})

	const spans = 6
	var ids []pcommon.TraceID
	phase := func(name string) {
		td, got := fwTraces(name, len(ids), 10, spans, time.Now())
		postTraces(t, gw.OTLPHTTPURL("/v1/traces"), td)
		ids = append(ids, got...)
	}
	phase("fw-a")
	holdsTraces(t, "second vispyr", tempoTrace(peer), ids, spans)

	if err := peer.Stop(); err != nil {
		t.Logf("stop second vispyr: %v", err)
	}
	phase("fw-b") // queued for both destinations
	time.Sleep(500 * time.Millisecond)
	gw.Kill9()
	gw.Restart()
	phase("fw-c")
	peer.Restart()
	jaeger.Start(t)

	jaegerTrace := func(id pcommon.TraceID) string { return jaeger.URL("/api/v3/traces/" + id.String()) }
	holdsTraces(t, "jaeger v2", jaegerTrace, ids, spans)
	holdsTraces(t, "second vispyr", tempoTrace(peer), ids, spans)
}
