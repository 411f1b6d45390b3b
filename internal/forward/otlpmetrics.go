package forward

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	promconfig "github.com/prometheus/prometheus/config"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// OTLPMetrics translates OTLP metrics exactly as Prometheus's OTLP endpoint
// (and Vispyr's store) does, then forwards the samples.
type OTLPMetrics struct {
	m          *Metrics
	settings   otlptranslator.Settings
	converters sync.Pool
	logger     *slog.Logger
}

var _ pipeline.Metrics = (*OTLPMetrics)(nil)

// NewOTLPMetrics returns the OTLP metrics consumer in front of m.
func NewOTLPMetrics(m *Metrics, lookback time.Duration, logger *slog.Logger) *OTLPMetrics {
	c := promconfig.DefaultOTLPConfig
	o := &OTLPMetrics{m: m, logger: logger, settings: otlptranslator.Settings{
		AddMetricSuffixes:                    c.TranslationStrategy.ShouldAddSuffixes(),
		AllowUTF8:                            !c.TranslationStrategy.ShouldEscape(),
		PromoteResourceAttributes:            otlptranslator.NewPromoteResourceAttributes(c),
		KeepIdentifyingResourceAttributes:    c.KeepIdentifyingResourceAttributes,
		LookbackDelta:                        lookback,
		LabelNameUnderscoreSanitization:      c.LabelNameUnderscoreSanitization,
		LabelNamePreserveMultipleUnderscores: c.LabelNamePreserveMultipleUnderscores,
	}}
	o.converters.New = func() any { return otlptranslator.NewPrometheusConverter(nil) }
	return o
}

// ConsumeMetrics returns once the samples are in every destination's queue.
func (o *OTLPMetrics) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	app := o.m.AppenderV2(ctx)
	conv := o.converters.Get().(*otlptranslator.PrometheusConverter)
	conv.Reset(app)
	defer func() {
		conv.Reset(nil)
		o.converters.Put(conv)
	}()
	if _, err := conv.FromMetrics(ctx, md, o.settings); err != nil {
		_ = app.Rollback()
		return pipeline.Invalid(fmt.Errorf("translate OTLP metrics: %w", err))
	}
	return app.Commit()
}
