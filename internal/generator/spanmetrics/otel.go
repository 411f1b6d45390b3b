package spanmetrics

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/otlptranslator"

	"github.com/vispyr/vispyr/internal/generator/series"
)

// OTelConfig configures span metrics named as the OpenTelemetry Collector's
// spanmetrics connector names them once Prometheus translates them (its
// remote-write or Prometheus exporter, or Prometheus's own OTLP endpoint):
// traces_span_metrics_calls_total and traces_span_metrics_duration_milliseconds
// with service_name, span_name, span_kind and status_code. The keys follow the
// connector's, so its block carries over.
type OTelConfig struct {
	// Enabled writes these series beside (or, with disable_span_metrics, instead of) Tempo's traces_spanmetrics_*.
	Enabled bool `yaml:"enabled"`
	// Namespace is the connector's own namespace, joined to calls and duration by a dot (traces.span.metrics.calls → traces_span_metrics_calls_total); empty gives the connector's old names, calls_total and duration_milliseconds.
	Namespace string `yaml:"namespace"`
	// ExporterNamespace is the namespace of the Collector exporter that wrote the series (prometheusremotewrite or prometheus), prefixed with an underscore: llm gives llm_traces_span_metrics_calls_total.
	ExporterNamespace string `yaml:"exporter_namespace"`
	// Unit is the duration histogram's unit, as the connector's histogram.unit: ms (duration_milliseconds) or s (duration_seconds).
	Unit string `yaml:"unit"`
	// Buckets are the duration histogram's bounds, as the connector's histogram.explicit.buckets (2ms, 100ms, 1s); empty: the connector's defaults, 2ms to 15s.
	Buckets []time.Duration `yaml:"buckets"`
	// Dimensions are span or resource attributes added as labels (span first, as the connector looks them up), each with an optional default for spans that carry neither.
	Dimensions []Dimension `yaml:"dimensions"`
	// ExcludeDimensions drops default labels, by the connector's names: service.name, span.name, span.kind, status.code.
	ExcludeDimensions []string `yaml:"exclude_dimensions"`
	// JobInstance adds job (service.namespace/service.name) and instance (service.instance.id) from the span's resource, as Prometheus's translation of the connector's output does.
	JobInstance bool `yaml:"job_instance"`
	// MaxActiveSeries caps the Prometheus series this processor keeps; spans that would create more are counted in vispyr_generator_dropped_series_total.
	MaxActiveSeries int `yaml:"max_active_series"`
}

// Dimension is one attribute added as a label (the connector's dimensions[]).
type Dimension struct {
	// Name is the span or resource attribute; its label is the name translated for Prometheus (http.method → http_method).
	Name string `yaml:"name"`
	// Default is the value when neither the span nor its resource has the attribute; unset leaves the label off.
	Default *string `yaml:"default"`
}

// OTelName identifies the connector-named processor in self-metrics and logs.
const OTelName = "otel_span_metrics"

// The connector's names of its default dimensions, for exclude_dimensions.
var otelIntrinsics = [...]string{"service.name", "span.name", "span.kind", "status.code"}

// Defaults sets every field to the connector's default.
func (c *OTelConfig) Defaults() {
	*c = OTelConfig{Namespace: "traces.span.metrics", Unit: "ms", JobInstance: true, MaxActiveSeries: 100_000}
}

// Validate reports the first invalid field.
func (c *OTelConfig) Validate() error {
	if c.Unit != "ms" && c.Unit != "s" {
		return fmt.Errorf("unit: %q is neither ms nor s", c.Unit)
	}
	if err := series.ValidateBuckets(c.bounds()); err != nil {
		return fmt.Errorf("buckets: %w", err)
	}
	for _, e := range c.ExcludeDimensions {
		if !slices.Contains(otelIntrinsics[:], e) {
			return fmt.Errorf("exclude_dimensions: %q is none of %v", e, otelIntrinsics)
		}
	}
	reserved := []string{"service_name", "span_name", "span_kind", "status_code", "le", "job", "instance"}
	seen := map[string]string{}
	for _, d := range c.Dimensions {
		if d.Name == "" {
			return errors.New("dimensions: empty attribute name")
		}
		l := otelLabelName(d.Name)
		if slices.Contains(reserved, l) || len(l) >= 2 && l[:2] == "__" {
			return fmt.Errorf("dimensions: %q would become label %q, which is reserved", d.Name, l)
		}
		if prev, ok := seen[l]; ok {
			return fmt.Errorf("dimensions: %q and %q would both become label %q", prev, d.Name, l)
		}
		seen[l] = d.Name
	}
	if per := seriesPerEntry(c.bounds(), false); c.MaxActiveSeries < per {
		return fmt.Errorf("max_active_series: %d is less than the %d series one operation needs", c.MaxActiveSeries, per)
	}
	return nil
}

// defaultBucketsMs are the connector's default bounds in milliseconds.
var defaultBucketsMs = []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000}

// unitNs is nanoseconds per unit of the duration histogram.
func (c *OTelConfig) unitNs() int64 {
	if c.Unit == "s" {
		return int64(time.Second)
	}
	return int64(time.Millisecond)
}

// bounds are the bucket bounds in the histogram's unit, computed as the
// connector computes them, so the le labels are the same floats.
func (c *OTelConfig) bounds() []float64 {
	if len(c.Buckets) == 0 {
		b := slices.Clone(defaultBucketsMs)
		if c.Unit == "s" {
			for i := range b {
				b[i] /= 1000
			}
		}
		return b
	}
	b := make([]float64, len(c.Buckets))
	for i, d := range c.Buckets {
		b[i] = float64(d.Nanoseconds()) / float64(c.unitNs())
	}
	return b
}

// metricNames are the Prometheus names of calls and duration, translated by
// the same code as Prometheus's OTLP endpoint and the Collector's exporters.
func (c *OTelConfig) metricNames() (calls, duration string) {
	namer := otlptranslator.MetricNamer{Namespace: c.ExporterNamespace, WithMetricSuffixes: true}
	join := func(n string) string {
		if c.Namespace == "" {
			return n
		}
		return c.Namespace + "." + n
	}
	// Build fails only for names that are empty after translation; the
	// connector's names never are.
	calls, _ = namer.Build(otlptranslator.Metric{Name: join("calls"), Type: otlptranslator.MetricTypeMonotonicCounter})
	duration, _ = namer.Build(otlptranslator.Metric{Name: join("duration"), Unit: c.Unit, Type: otlptranslator.MetricTypeHistogram})
	return calls, duration
}

// otelLabelName translates an attribute name as Prometheus's OTLP endpoint does.
func otelLabelName(attr string) string {
	l, err := (&otlptranslator.LabelNamer{UnderscoreLabelSanitization: true, PreserveMultipleUnderscores: true}).Build(attr)
	if err != nil {
		return attr
	}
	return l
}

// NewOTel returns a processor writing the connector's names for a validated cfg.
func NewOTel(cfg OTelConfig, staleAfter time.Duration, m *series.SelfMetrics, logger *slog.Logger) *Processor {
	calls, duration := cfg.metricNames()
	in := IntrinsicDimensions{
		Service:    !slices.Contains(cfg.ExcludeDimensions, "service.name"),
		SpanName:   !slices.Contains(cfg.ExcludeDimensions, "span.name"),
		SpanKind:   !slices.Contains(cfg.ExcludeDimensions, "span.kind"),
		StatusCode: !slices.Contains(cfg.ExcludeDimensions, "status.code"),
	}
	dims := make([]dimension, len(cfg.Dimensions))
	keys := make([]string, len(cfg.Dimensions))
	for i, d := range cfg.Dimensions {
		keys[i] = d.Name
		dims[i] = dimension{label: otelLabelName(d.Name), keys: []int{i}}
		if d.Default != nil {
			dims[i].def, dims[i].hasDef = *d.Default, true
		}
	}
	return build(settings{
		names:         names{calls: calls, latency: duration, intrinsic: otelLabels},
		bounds:        cfg.bounds(),
		unitNs:        float64(cfg.unitNs()),
		intrinsic:     in,
		attrKeys:      keys,
		dims:          dims,
		spanFirst:     true,
		jobInstance:   cfg.JobInstance,
		needService:   true,
		maxSeries:     cfg.MaxActiveSeries,
		processorName: OTelName,
	}, staleAfter, m, logger)
}
