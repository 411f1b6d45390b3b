package spanmetrics

import (
	"errors"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/util/strutil"

	"github.com/vispyr/vispyr/internal/generator/series"
)

// Config configures the span-metrics processor. Names and defaults follow
// Tempo's metrics-generator, so a Tempo configuration block carries over.
type Config struct {
	// HistogramBuckets are the latency bucket bounds in seconds.
	HistogramBuckets []float64 `yaml:"histogram_buckets"`
	// IntrinsicDimensions selects the labels taken from fixed span fields.
	IntrinsicDimensions IntrinsicDimensions `yaml:"intrinsic_dimensions"`
	// Dimensions are resource or span attributes added as labels (resource
	// first, as Tempo looks them up). Label names are the attribute names
	// sanitized for Prometheus (deployment.environment → deployment_environment);
	// attributes that sanitize to the same name share the label, the last one
	// configured that a span carries wins.
	Dimensions []string `yaml:"dimensions"`
	// MaxActiveSeries caps the Prometheus series this processor keeps; spans
	// that would create more are counted in vispyr_generator_dropped_series_total.
	MaxActiveSeries int `yaml:"max_active_series"`
}

// IntrinsicDimensions switches the labels taken from fixed span fields.
type IntrinsicDimensions struct {
	Service       bool `yaml:"service"`        // Labels series with service (the resource's service.name)
	SpanName      bool `yaml:"span_name"`      // Labels series with span_name
	SpanKind      bool `yaml:"span_kind"`      // Labels series with span_kind (SPAN_KIND_SERVER, ...)
	StatusCode    bool `yaml:"status_code"`    // Labels series with status_code (STATUS_CODE_ERROR, ...)
	StatusMessage bool `yaml:"status_message"` // Labels series with status_message (off by default: unbounded)
}

// Label names of the intrinsic dimensions (Tempo's).
const (
	LabelService       = "service"
	LabelSpanName      = "span_name"
	LabelSpanKind      = "span_kind"
	LabelStatusCode    = "status_code"
	LabelStatusMessage = "status_message"
)

// reserved are label names a dimension may not take: the intrinsic ones, the
// histogram's le, and the target labels Tempo may add.
var reserved = []string{LabelService, LabelSpanName, LabelSpanKind, LabelStatusCode, LabelStatusMessage, "le", "job", "instance"}

// DefaultBuckets are Tempo's latency buckets: 2ms doubling up to ~16s.
func DefaultBuckets() []float64 {
	b := make([]float64, 14)
	for i, v := 0, 0.002; i < len(b); i, v = i+1, v*2 {
		b[i] = v
	}
	return b
}

// Defaults sets every field to its default. Call it before unmarshalling
// YAML so that only the fields a user writes change.
func (c *Config) Defaults() {
	*c = Config{
		HistogramBuckets: DefaultBuckets(),
		IntrinsicDimensions: IntrinsicDimensions{
			Service: true, SpanName: true, SpanKind: true, StatusCode: true,
		},
		MaxActiveSeries: 100_000,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if err := series.ValidateBuckets(c.HistogramBuckets); err != nil {
		return fmt.Errorf("histogram_buckets: %w", err)
	}
	for _, d := range c.Dimensions {
		if d == "" {
			return errors.New("dimensions: empty attribute name")
		}
		if l := strutil.SanitizeLabelName(d); slices.Contains(reserved, l) || len(l) >= 2 && l[:2] == "__" {
			return fmt.Errorf("dimensions: %q would become label %q, which is reserved", d, l)
		}
	}
	if per := seriesPerEntry(c.HistogramBuckets, true); c.MaxActiveSeries < per {
		return fmt.Errorf("max_active_series: %d is less than the %d series one operation needs", c.MaxActiveSeries, per)
	}
	return nil
}
