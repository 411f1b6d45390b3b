package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// postSpans sends n server spans of service, each its own trace, by
// OTLP/HTTP protobuf and fails unless they are acknowledged.
func postSpans(t *testing.T, url, service string, first, n int) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	now := time.Now()
	for i := first; i < first+n; i++ {
		sp := spans.AppendEmpty()
		sp.SetName("GET /items")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetTraceID([16]byte{0: 0xfe, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		sp.SetSpanID([8]byte{0: 0xfe, 4: byte(i >> 24), 5: byte(i >> 16), 6: byte(i >> 8), 7: byte(i)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-20 * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("post spans: %s", resp.Status)
	}
}

// "I already have Prometheus": a real Prometheus 2.42 scrapes Vispyr's
// /federate and gets the span metrics Vispyr generated.
func TestPrometheusFederatesSpanMetrics(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Config: "generator:\n  collection_interval: 1s\n"})
	prom := harness.StartPrometheus(t, fmt.Sprintf(`
scrape_configs:
  - job_name: vispyr-federate
    scrape_interval: 1s
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]':
        - '{__name__=~"traces_spanmetrics_.*"}'
        - '{__name__=~"traces_service_graph_.*"}'
    static_configs:
      - targets: ['%s']
`, v.MetricsAddr))
	postSpans(t, v.OTLPHTTPURL("/v1/traces"), "federated-app", 0, 40)
	postSpans(t, v.OTLPHTTPURL("/v1/traces"), "federated-app", 40, 25)

	const q = `sum(traces_spanmetrics_calls_total{service="federated-app"})`
	prometheus, vispyr := harness.NewAPI(prom.URL("")), harness.NewAPI(v.MetricsURL(""))
	harness.Eventually(t, 60*time.Second, func() (bool, string) {
		now := time.Now()
		_, fromVispyr, _ := vispyr.Instant(t, q, now)
		_, fromProm, _ := prometheus.Instant(t, q, now)
		if len(fromProm) != 1 || len(fromVispyr) != 1 {
			return false, fmt.Sprintf("no calls yet: prometheus %v, vispyr %v", fromProm, fromVispyr)
		}
		return fromProm[0].Value.Float() == 65 && fromVispyr[0].Value.Float() == 65,
			fmt.Sprintf("prometheus sees %v calls through /federate, vispyr %v, want 65", fromProm[0].Value.Float(), fromVispyr[0].Value.Float())
	})
	// The latency histogram comes through whole, with its le labels.
	_, buckets, _ := prometheus.Instant(t, `count(traces_spanmetrics_latency_bucket{service="federated-app"})`, time.Now())
	if len(buckets) != 1 || buckets[0].Value.Float() < 10 {
		t.Fatalf("prometheus federated %v latency buckets, want the whole histogram", buckets)
	}
}
