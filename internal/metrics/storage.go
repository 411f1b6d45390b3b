// Package metrics is Vispyr's embedded metrics store: Prometheus TSDB as a library,
// the OTLP-to-Prometheus translation, and the Prometheus-compatible HTTP API.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// Storage owns the TSDB in <data dir>/metrics.
type Storage struct {
	db     *tsdb.DB
	dir    string
	logger *slog.Logger

	otlpSettings otlptranslator.Settings
	converters   sync.Pool
	otlpWarnings prometheus.Counter
}

// Open opens (and replays the WAL of) the TSDB under dataDir.
func Open(cfg config.Metrics, dataDir string, logger *slog.Logger, reg prometheus.Registerer) (*Storage, error) {
	dir := filepath.Join(dataDir, "metrics")
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = cfg.Retention.Milliseconds()
	opts.MaxBytes = cfg.RetentionSize
	opts.OutOfOrderTimeWindow = cfg.OutOfOrderWindow.Milliseconds()
	opts.EnableExemplarStorage = cfg.MaxExemplars > 0
	opts.MaxExemplars = cfg.MaxExemplars
	// As the Prometheus binary does: snappy roughly halves the WAL's bytes per sample.
	opts.WALCompression = compression.Snappy

	start := time.Now()
	logger.Info("opening metrics store; replaying WAL", "dir", dir)
	db, err := tsdb.Open(dir, logger.With("component", "tsdb"), reg, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("open tsdb: %w", err)
	}
	logger.Info("metrics store ready", "dir", dir, "took", time.Since(start).Round(time.Millisecond),
		"series", db.Head().NumSeries())

	otlpCfg := promconfig.DefaultOTLPConfig
	s := &Storage{
		db:     db,
		dir:    dir,
		logger: logger,
		otlpSettings: otlptranslator.Settings{
			AddMetricSuffixes:                    otlpCfg.TranslationStrategy.ShouldAddSuffixes(),
			AllowUTF8:                            !otlpCfg.TranslationStrategy.ShouldEscape(),
			PromoteResourceAttributes:            otlptranslator.NewPromoteResourceAttributes(otlpCfg),
			KeepIdentifyingResourceAttributes:    otlpCfg.KeepIdentifyingResourceAttributes,
			LookbackDelta:                        cfg.LookbackDelta,
			LabelNameUnderscoreSanitization:      otlpCfg.LabelNameUnderscoreSanitization,
			LabelNamePreserveMultipleUnderscores: otlpCfg.LabelNamePreserveMultipleUnderscores,
		},
		otlpWarnings: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "vispyr_metrics_otlp_translation_warnings_total",
			Help: "Warnings produced while translating OTLP metrics to the Prometheus model.",
		}),
	}
	s.converters.New = func() any { return otlptranslator.NewPrometheusConverter(nil) }
	return s, nil
}

// RemoteWriteAppender returns the remote-write append path into this store (its
// metrics are registered with reg: call it once).
func (s *Storage) RemoteWriteAppender(reg prometheus.Registerer) *RemoteWriteAppender {
	return NewRemoteWriteAppender(s.db, s.logger.With("component", "remote-write"), reg)
}

// DB is the underlying TSDB, for components that append or query directly.
func (s *Storage) DB() *tsdb.DB { return s.db }

// Dir is where the TSDB lives.
func (s *Storage) Dir() string { return s.dir }

// Close flushes the head's WAL and closes the TSDB.
func (s *Storage) Close() error { return s.db.Close() }

// ConsumeMetrics translates OTLP metrics exactly as Prometheus's own OTLP endpoint
// does and appends them. When it returns nil the samples are in the WAL.
func (s *Storage) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) (err error) {
	app := s.db.AppenderV2(ctx)
	conv := s.converters.Get().(*otlptranslator.PrometheusConverter)
	conv.Reset(app)
	defer func() {
		conv.Reset(nil)
		s.converters.Put(conv)
	}()
	annots, err := conv.FromMetrics(ctx, md, s.otlpSettings)
	if err != nil {
		_ = app.Rollback()
		return classifyAppendError(fmt.Errorf("translate OTLP metrics: %w", err))
	}
	if ws, _ := annots.AsStrings("", 0, 0); len(ws) > 0 {
		s.otlpWarnings.Add(float64(len(ws)))
		s.logger.Debug("OTLP translation warnings", "warnings", ws)
	}
	if err := app.Commit(); err != nil {
		return classifyAppendError(fmt.Errorf("commit samples: %w", err))
	}
	return nil
}

// classifyAppendError marks errors the client cannot fix by retrying (out of order,
// too old, duplicate) as invalid input so receivers answer 400, not 5xx.
func classifyAppendError(err error) error {
	for _, target := range []error{storage.ErrOutOfOrderSample, storage.ErrOutOfBounds,
		storage.ErrDuplicateSampleForTimestamp, storage.ErrTooOldSample} {
		if errors.Is(err, target) {
			return pipeline.Invalid(err)
		}
	}
	return err
}
