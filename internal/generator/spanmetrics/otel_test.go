package spanmetrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/generator/series"
)

// The connector's names after Prometheus translation, with the exporter's
// namespace: what a dashboard of that pipeline queries.
func TestOTelNames(t *testing.T) {
	var cfg OTelConfig
	cfg.Defaults()
	cfg.ExporterNamespace = "llm"
	def := "none"
	cfg.Dimensions = []Dimension{{Name: "http.method", Default: &def}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := NewOTel(cfg, 15*time.Minute, series.NewSelfMetrics(prometheus.NewRegistry()), nil)
	p.Consume(oneSpan(func(res pcommon.Map, sp ptrace.Span) { res.PutStr("service.instance.id", "i-1") }), t0)
	var b series.Batch
	p.Collect(&b, t0)
	got := map[string]float64{}
	b.Each(func(l labels.Labels, v float64) { got[l.String()] = v })
	pre, post := `instance="i-1", job="svc", `, `service_name="svc", span_kind="SPAN_KIND_SERVER", span_name="op", status_code="STATUS_CODE_UNSET"`
	lbls := pre + post
	for series, want := range map[string]float64{
		`{__name__="llm_traces_span_metrics_calls_total", http_method="none", ` + lbls + `}`:                                     1,
		`{__name__="llm_traces_span_metrics_duration_milliseconds_bucket", http_method="none", ` + pre + `le="4", ` + post + `}`: 1,
		`{__name__="llm_traces_span_metrics_duration_milliseconds_bucket", http_method="none", ` + pre + `le="2", ` + post + `}`: 0,
		`{__name__="llm_traces_span_metrics_duration_milliseconds_sum", http_method="none", ` + lbls + `}`:                       3,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v; have %v", series, v, ok, want, got)
		}
	}
}
