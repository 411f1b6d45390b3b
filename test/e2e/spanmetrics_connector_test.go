package e2e

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// connectorSpans are spans of two services, with every span kind, all
// three status codes, durations across the default buckets, http.method on
// the span, on the resource or on neither, and one resource with an
// instance id.
func connectorSpans() (ptrace.Traces, int) {
	td := ptrace.NewTraces()
	now := time.Now()
	kinds := []ptrace.SpanKind{ptrace.SpanKindServer, ptrace.SpanKindClient, ptrace.SpanKindInternal, ptrace.SpanKindProducer, ptrace.SpanKindConsumer}
	n := 0
	for r, svc := range []string{"conn-checkout", "conn-cart"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		if r == 0 {
			rs.Resource().Attributes().PutStr("service.instance.id", "pod-1")
			rs.Resource().Attributes().PutStr("http.method", "PATCH")
		}
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range 40 {
			sp := spans.AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{0xc0, 1: byte(r), 2: byte(i), 15: 1})
			sp.SetSpanID(pcommon.SpanID{0xc0, 1: byte(r), 2: byte(i), 7: 1})
			sp.SetName(fmt.Sprintf("op-%d", i%3))
			sp.SetKind(kinds[i%len(kinds)])
			sp.Status().SetCode(ptrace.StatusCode(i % 3))
			if i%4 == 1 {
				sp.Attributes().PutStr("http.method", "GET")
			}
			d := time.Duration(1+i*i*i) * 97 * time.Microsecond // 0.1 ms to 6 s
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-d)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
			n++
		}
	}
	return td, n
}

// exposition reads a Prometheus text exposition into series → value, for
// the families whose name starts with prefix, without the otel_scope_*
// labels (those only the Collector's prometheus exporter adds, from the
// instrumentation scope; its remote-write exporter does not) and with le
// written one way.
func exposition(t *testing.T, body []byte, prefix string) map[string]float64 {
	t.Helper()
	p := textparse.NewPromParser(body, labels.NewSymbolTable(), false)
	out := map[string]float64{}
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("parse exposition: %v\n%.500s", err, body)
		}
		if e != textparse.EntrySeries {
			continue
		}
		_, _, v := p.Series()
		var l labels.Labels
		p.Labels(&l)
		if !strings.HasPrefix(l.Get("__name__"), prefix) {
			continue
		}
		b := labels.NewBuilder(l)
		l.Range(func(x labels.Label) {
			if strings.HasPrefix(x.Name, "otel_scope_") {
				b.Del(x.Name)
			}
		})
		// The exporter writes le="10.0", Vispyr le="10": the same bound,
		// which Prometheus 3 normalizes on scrape.
		if le, err := strconv.ParseFloat(l.Get("le"), 64); err == nil {
			b.Set("le", strconv.FormatFloat(le, 'g', -1, 64))
		}
		out[b.Labels().String()] = v
	}
}

func getExposition(t *testing.T, u, prefix string) map[string]float64 {
	t.Helper()
	return exposition(t, mustGet(t, u), prefix)
}

// seriesDiff names the series one map has and the other lacks or holds at
// another value (sums compared to 1e-9 relative, as both add float ms).
func seriesDiff(collector, vispyr map[string]float64) []string {
	var d []string
	for k, c := range collector {
		v, ok := vispyr[k]
		switch {
		case !ok:
			d = append(d, "only the Collector: "+k)
		case math.Abs(c-v) > 1e-9*math.Max(1, math.Abs(c)):
			d = append(d, fmt.Sprintf("%s: Collector %v, Vispyr %v", k, c, v))
		}
	}
	for k := range vispyr {
		if _, ok := collector[k]; !ok {
			d = append(d, "only Vispyr: "+k)
		}
	}
	sort.Strings(d)
	return d
}

// The same spans go to the OpenTelemetry Collector's own spanmetrics
// connector (v0.139, in the Jaeger v2 build) exposed by its prometheus
// exporter with namespace llm, and to Vispyr with generator.otel_span_metrics
// and exporter_namespace llm: every series, its name, labels and value
// (calls, duration buckets, sum and count) are the same in both.
func TestOTelSpanMetricsMatchCollectorConnector(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Args: fastGenerator, Config: `
generator:
  otel_span_metrics:
    enabled: true
    exporter_namespace: llm
    dimensions:
      - name: http.method
        default: none
`})
	otlpAddr, promAddr := "127.0.0.1:"+fmt.Sprint(testpeer.FreePort(t)), "127.0.0.1:"+fmt.Sprint(testpeer.FreePort(t))
	harness.StartCollector(t, fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
connectors:
  spanmetrics:
    metrics_flush_interval: 1s
    dimensions:
      - name: http.method
        default: none
exporters:
  prometheus:
    endpoint: %s
    namespace: llm
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
`, otlpAddr, promAddr), otlpAddr)

	td, n := connectorSpans()
	postTraces(t, "http://"+otlpAddr+"/v1/traces", td)
	postTraces(t, v.OTLPHTTPURL("/v1/traces"), td)

	calls := func(m map[string]float64) (sum float64) {
		for k, x := range m {
			if strings.HasPrefix(k, `{__name__="llm_traces_span_metrics_calls_total"`) {
				sum += x
			}
		}
		return sum
	}
	// The exporter's llm_target_info (resource attributes) is no span
	// metric; Vispyr does not write it.
	const family = "llm_traces_span_metrics_"
	var fromCollector, fromVispyr map[string]float64
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		fromCollector = getExposition(t, "http://"+promAddr+"/metrics", family)
		fromVispyr = getExposition(t, v.MetricsURL("/federate?"+url.Values{"match[]": {`{__name__=~"llm_.+"}`}}.Encode()), family)
		return calls(fromCollector) == float64(n) && calls(fromVispyr) == float64(n),
			fmt.Sprintf("calls: Collector %v, Vispyr %v, want %d", calls(fromCollector), calls(fromVispyr), n)
	})
	if d := seriesDiff(fromCollector, fromVispyr); len(d) > 0 {
		t.Fatalf("%d of %d series differ:\n%s", len(d), len(fromCollector), strings.Join(d[:min(len(d), 30)], "\n"))
	}
	t.Logf("%d series equal, %d calls", len(fromCollector), n)
}
