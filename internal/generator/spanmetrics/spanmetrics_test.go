package spanmetrics

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/generator/series"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

const t0 = int64(1_800_000_000_000) // ms

func defaults() Config {
	var c Config
	c.Defaults()
	return c
}

func newProcessor(t *testing.T, cfg Config) *Processor {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return New(cfg, 15*time.Minute, series.NewSelfMetrics(prometheus.NewRegistry()), nil)
}

// oneSpan returns the row of oneTrace's span.
func oneSpan(setup func(res pcommon.Map, sp ptrace.Span)) []spanrow.Span {
	return mustRows(oneTrace(setup))
}

func mustRows(td ptrace.Traces) []spanrow.Span {
	rows, err := spanrow.FromTraces(td, nil)
	if err != nil {
		panic(err)
	}
	return rows
}

// oneTrace returns a trace with one span of service "svc" named "op".
func oneTrace(setup func(res pcommon.Map, sp ptrace.Span)) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("op")
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetTraceID(pcommon.TraceID{1})
	sp.SetSpanID(pcommon.SpanID{2})
	sp.SetStartTimestamp(1_000_000_000)
	sp.SetEndTimestamp(1_003_000_000) // 3ms
	if setup != nil {
		setup(rs.Resource().Attributes(), sp)
	}
	return td
}

// calls returns the calls_total series as "labels value" lines.
func calls(p *Processor) string {
	var b series.Batch
	p.Collect(&b, t0)
	var rows []string
	b.Each(func(l labels.Labels, v float64) {
		if l.Get(labels.MetricName) == MetricCalls {
			rows = append(rows, fmt.Sprintf("%s %g", l, v))
		}
	})
	sort.Strings(rows)
	return strings.Join(rows, "\n")
}

func TestIntrinsicDimensions(t *testing.T) {
	failed := oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage("timeout")
	})
	p := newProcessor(t, defaults())
	p.Consume(failed, t0)
	p.Consume(oneSpan(nil), t0)
	want := `{__name__="traces_spanmetrics_calls_total", service="svc", span_kind="SPAN_KIND_SERVER", span_name="op", status_code="STATUS_CODE_ERROR"} 1
{__name__="traces_spanmetrics_calls_total", service="svc", span_kind="SPAN_KIND_SERVER", span_name="op", status_code="STATUS_CODE_UNSET"} 1`
	if got := calls(p); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	cfg := defaults()
	cfg.IntrinsicDimensions = IntrinsicDimensions{Service: true, StatusMessage: true}
	p = newProcessor(t, cfg)
	p.Consume(failed, t0)
	p.Consume(oneSpan(nil), t0)
	want = `{__name__="traces_spanmetrics_calls_total", service="svc", status_message="timeout"} 1
{__name__="traces_spanmetrics_calls_total", service="svc"} 1`
	if got := calls(p); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDimensions(t *testing.T) {
	cfg := defaults()
	cfg.IntrinsicDimensions = IntrinsicDimensions{Service: true}
	cfg.Dimensions = []string{"http.method", "deployment.environment", "deployment_environment", "http.status_code"}
	p := newProcessor(t, cfg)
	// Resource attributes win over span attributes, as in Tempo.
	p.Consume(oneSpan(func(res pcommon.Map, sp ptrace.Span) {
		res.PutStr("http.method", "FROM-RESOURCE")
		sp.Attributes().PutStr("http.method", "GET")
		sp.Attributes().PutInt("http.status_code", 200)
	}), t0)
	// Two attributes sanitized to one label: the last configured one present wins.
	p.Consume(oneSpan(func(res pcommon.Map, sp ptrace.Span) {
		res.PutStr("deployment.environment", "prod")
		sp.Attributes().PutStr("deployment_environment", "canary")
	}), t0)
	p.Consume(oneSpan(func(res pcommon.Map, sp ptrace.Span) {
		res.PutStr("deployment.environment", "prod")
	}), t0)
	want := `{__name__="traces_spanmetrics_calls_total", deployment_environment="canary", service="svc"} 1
{__name__="traces_spanmetrics_calls_total", deployment_environment="prod", service="svc"} 1
{__name__="traces_spanmetrics_calls_total", http_method="FROM-RESOURCE", http_status_code="200", service="svc"} 1`
	if got := calls(p); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestBadLabelValuesAreCleaned(t *testing.T) {
	p := newProcessor(t, defaults())
	p.Consume(oneSpan(func(_ pcommon.Map, sp ptrace.Span) { sp.SetName("bad\xffname") }), t0)
	p.Consume(oneSpan(func(_ pcommon.Map, sp ptrace.Span) { sp.SetName(strings.Repeat("é", 2000)) }), t0)
	got := calls(p)
	if !strings.Contains(got, `span_name="bad`+"\uFFFD"+`name"`) {
		t.Errorf("invalid UTF-8 not replaced:\n%s", got)
	}
	if !strings.Contains(got, `span_name="`+strings.Repeat("é", 1024)+`"`) {
		t.Errorf("long name not cut at 2048 bytes on a rune boundary:\n%.300s", got)
	}
}

func TestLatencyBucketsAndSize(t *testing.T) {
	cfg := defaults()
	cfg.HistogramBuckets = []float64{0.001, 0.01}
	p := newProcessor(t, cfg)
	p.Consume(oneSpan(nil), t0) // 3ms
	p.Consume(oneSpan(func(_ pcommon.Map, sp ptrace.Span) { sp.SetEndTimestamp(sp.StartTimestamp() - 5) }), t0)
	p.Consume(oneSpan(func(_ pcommon.Map, sp ptrace.Span) { sp.SetEndTimestamp(sp.StartTimestamp() + 2e9) }), t0)
	var b series.Batch
	p.Collect(&b, t0)
	got := map[string]float64{}
	b.Each(func(l labels.Labels, v float64) {
		got[l.Get(labels.MetricName)+l.Get("le")] = v
	})
	want := map[string]float64{
		"traces_spanmetrics_latency_bucket0.001": 1, // the span that ends before it starts counts as 0s
		"traces_spanmetrics_latency_bucket0.01":  2,
		"traces_spanmetrics_latency_bucket+Inf":  3,
		"traces_spanmetrics_latency_count":       3,
		"traces_spanmetrics_latency_sum":         2.003,
		"traces_spanmetrics_calls_total":         3,
	}
	for k, w := range want {
		if g := got[k]; g < w-1e-9 || g > w+1e-9 {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
	var m ptrace.ProtoMarshaler
	if size := m.SpanSize(oneTrace(nil).ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)); got["traces_spanmetrics_size_total"] != float64(3*size) {
		t.Errorf("size_total = %v, want 3 × %d bytes", got["traces_spanmetrics_size_total"], size)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mod func(*Config), want string) {
		t.Helper()
		c := defaults()
		mod(&c)
		err := c.Validate()
		if want == "" {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to mention %q", err, want)
		}
	}
	f(func(*Config) {}, "")
	f(func(c *Config) { c.Dimensions = []string{"http.method", "k8s.pod.name"} }, "")
	f(func(c *Config) { c.Dimensions = []string{"le"} }, `"le"`)
	f(func(c *Config) { c.Dimensions = []string{"span.name"} }, `"span_name"`)
	f(func(c *Config) { c.Dimensions = []string{""} }, "dimensions")
	f(func(c *Config) { c.HistogramBuckets = []float64{0.1, 0.1} }, "histogram_buckets")
	f(func(c *Config) { c.MaxActiveSeries = 10 }, "max_active_series")
}

// Resources are read once per blob: spans that switch between resources,
// and resources with equal content in distinct blobs, each get their own
// resource's labels. A resource without service.name counts under an empty
// service for Tempo's names and is skipped for the connector's, while an
// empty service.name counts for both.
func TestResourcesSwitchBetweenSpans(t *testing.T) {
	td := ptrace.NewTraces()
	add := func(res map[string]any, names ...string) {
		rs := td.ResourceSpans().AppendEmpty()
		if err := rs.Resource().Attributes().FromRaw(res); err != nil {
			t.Fatal(err)
		}
		for _, scope := range names {
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetName(scope)
			sp.SetTraceID(pcommon.TraceID{1})
			sp.SetSpanID(pcommon.SpanID{2})
			sp.Attributes().PutStr("env", "span")
		}
	}
	add(map[string]any{"service.name": "a", "env": "prod"}, "x", "y")
	add(map[string]any{"env": "dev"}, "x")
	add(map[string]any{"service.name": "a", "env": "prod"}, "x")
	add(map[string]any{"service.name": "", "service.namespace": "ns", "service.instance.id": int64(7)}, "z")
	rows := mustRows(td)

	cfg := defaults()
	cfg.IntrinsicDimensions = IntrinsicDimensions{Service: true, SpanName: true}
	cfg.Dimensions = []string{"env"}
	p := newProcessor(t, cfg)
	p.Consume(rows, t0)
	want := `{__name__="traces_spanmetrics_calls_total", env="dev", span_name="x"} 1
{__name__="traces_spanmetrics_calls_total", env="prod", service="a", span_name="x"} 2
{__name__="traces_spanmetrics_calls_total", env="prod", service="a", span_name="y"} 1
{__name__="traces_spanmetrics_calls_total", env="span", span_name="z"} 1`
	if got := calls(p); got != want {
		t.Errorf("tempo names: got\n%s\nwant\n%s", got, want)
	}

	var oc OTelConfig
	oc.Defaults()
	oc.Namespace = ""
	oc.ExcludeDimensions = []string{"span.kind", "status.code"}
	oc.Dimensions = []Dimension{{Name: "env"}}
	o := NewOTel(oc, 15*time.Minute, series.NewSelfMetrics(prometheus.NewRegistry()), nil)
	o.Consume(rows, t0)
	var b series.Batch
	o.Collect(&b, t0)
	var got []string
	b.Each(func(l labels.Labels, v float64) {
		if l.Get(labels.MetricName) == "calls_total" {
			got = append(got, fmt.Sprintf("%s %g", l, v))
		}
	})
	sort.Strings(got)
	want = `{__name__="calls_total", env="span", instance="7", job="ns/", span_name="z"} 1
{__name__="calls_total", env="span", instance="", job="a", service_name="a", span_name="x"} 2
{__name__="calls_total", env="span", instance="", job="a", service_name="a", span_name="y"} 1`
	want = strings.ReplaceAll(want, `instance="", `, "")
	if g := strings.Join(got, "\n"); g != want {
		t.Errorf("connector names: got\n%s\nwant\n%s", g, want)
	}
}
