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
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// Storage owns the metrics TSDBs: the default tenant's in <data dir>/metrics,
// every other tenant's beside it (tenants.go). Ingest and queries pick the
// TSDB of the tenant in their context (pipeline.Tenant).
type Storage struct {
	cfg     config.Metrics
	limits  config.Limits
	dataDir string
	dir     string
	logger  *slog.Logger

	def     *tenantDB // the default tenant, read without locking
	mu      sync.RWMutex
	tenants map[string]*tenantDB // the others, by ID
	closed  bool

	otlpSettings otlptranslator.Settings
	converters   sync.Pool
	otlpWarnings prometheus.Counter

	watch writeWatch // told the oldest timestamp of every commit (writewatch.go)

	replays *replays // WALs replaying in the background (replay.go)

	stopLongTerm context.CancelFunc // ends runLongTerm (longterm.go)
	longTermDone chan struct{}

	stopOwnHeads context.CancelFunc // ends runOwnHeads (ownhead.go)
	ownHeadsDone chan struct{}
}

// Open opens (and replays the WAL of) the default tenant's TSDB under dataDir,
// and those of the other tenants found there; lim holds the per-tenant limits.
// A WAL of at least cfg.BackgroundReplayMinWALBytes replays in the
// background instead (replay.go).
func Open(cfg config.Metrics, lim config.Limits, dataDir string, logger *slog.Logger, reg prometheus.Registerer) (*Storage, error) {
	s := &Storage{cfg: cfg, limits: lim, dataDir: dataDir, dir: filepath.Join(dataDir, "metrics"), logger: logger,
		tenants: map[string]*tenantDB{}, replays: newReplays()}
	start := time.Now()
	walBytes, _ := headBytes(s.dir)
	logger.Info("opening metrics store", "dir", s.dir, "head_bytes", walBytes,
		"background_replay_min_wal_bytes", cfg.BackgroundReplayMinWALBytes)
	stopProgress := logOpening(logger, start, openingLogEvery)
	// The other tenants' TSDBs open meanwhile: each replays its own WAL.
	tenantsErr := make(chan error, 1)
	go func() { tenantsErr <- s.openExistingTenants() }()
	def, err := s.openTenantDB(pipeline.DefaultTenant, s.dir, logger.With("component", "tsdb"), reg)
	terr := <-tenantsErr
	stopProgress()
	if err != nil {
		for _, t := range s.tenants {
			_ = t.close()
		}
		return nil, errors.Join(fmt.Errorf("open tsdb: %w", err), terr)
	}
	s.def = def
	if terr != nil {
		_ = s.Close()
		return nil, terr
	}
	for _, t := range s.allTenants() {
		if len(t.replayDirs) > 0 {
			s.startReplay(t, t.replayDirs)
		}
	}
	s.replays.opened()
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vispyr_metrics_wal_replay_pending_bytes",
		Help: "Bytes of metrics WAL (with head chunks and snapshot) still replaying in the background; their samples are missing from queries until then.",
	}, func() float64 { return float64(s.replays.pending.Load()) })
	logger.Info("metrics store ready", "dir", s.dir, "took", time.Since(start).Round(time.Millisecond),
		"series", def.db.Head().NumSeries(), "tenants", len(s.tenants)+1, "background_replay_bytes", s.replays.pending.Load())

	otlpCfg := promconfig.DefaultOTLPConfig
	s.otlpSettings = otlptranslator.Settings{
		AddMetricSuffixes:                    otlpCfg.TranslationStrategy.ShouldAddSuffixes(),
		AllowUTF8:                            !otlpCfg.TranslationStrategy.ShouldEscape(),
		PromoteResourceAttributes:            otlptranslator.NewPromoteResourceAttributes(otlpCfg),
		KeepIdentifyingResourceAttributes:    otlpCfg.KeepIdentifyingResourceAttributes,
		LookbackDelta:                        cfg.LookbackDelta,
		LabelNameUnderscoreSanitization:      otlpCfg.LabelNameUnderscoreSanitization,
		LabelNamePreserveMultipleUnderscores: otlpCfg.LabelNamePreserveMultipleUnderscores,
	}
	s.otlpWarnings = promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "vispyr_metrics_otlp_translation_warnings_total",
		Help: "Warnings produced while translating OTLP metrics to the Prometheus model.",
	})
	s.converters.New = func() any { return otlptranslator.NewPrometheusConverter(nil) }
	if cfg.Head == config.HeadVispyr {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopOwnHeads, s.ownHeadsDone = cancel, make(chan struct{})
		go s.runOwnHeads(ctx)
	}
	if cfg.LongTerm.Enabled {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopLongTerm, s.longTermDone = cancel, make(chan struct{})
		go s.runLongTerm(ctx)
	}
	return s, nil
}

// openingLogEvery is how often a long start-up says it is still replaying.
const openingLogEvery = 10 * time.Second

// logOpening logs every interval until stop is called that the TSDB is still
// opening: the TSDB logs a line per phase and per WAL segment, but none while
// it reads a head snapshot or a long segment, which can take minutes with
// millions of series.
func logOpening(logger *slog.Logger, start time.Time, every time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				logger.Info("metrics store still replaying (head snapshot, mmapped chunks, WAL segments: see the TSDB's lines)",
					"elapsed", time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// tsdbOpts are every tenant's TSDB options: retention by time and size
// applies to each tenant's TSDB on its own, as in Mimir's ingesters.
func (s *Storage) tsdbOpts() *tsdb.Options {
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = s.cfg.Retention.Milliseconds()
	opts.MaxBytes = s.cfg.RetentionSize
	opts.OutOfOrderTimeWindow = s.cfg.OutOfOrderWindow.Milliseconds()
	opts.EnableExemplarStorage = s.cfg.MaxExemplars > 0
	opts.MaxExemplars = s.cfg.MaxExemplars
	// As the Prometheus binary does: snappy roughly halves the WAL's bytes per sample.
	opts.WALCompression = compression.Snappy
	opts.BlockReloadInterval = blockReloadInterval
	// A graceful stop writes the head's series and chunks as one snapshot
	// (Prometheus's memory-snapshot-on-shutdown), so the next start-up reads
	// that instead of decoding every sample of the WAL again; after a crash
	// the WAL is replayed as before.
	opts.EnableMemorySnapshotOnShutdown = true
	// No isolation, as Mimir's ingesters: a query running while a request
	// commits may see part of it (it sees all of it once the 2xx is sent),
	// and the head saves a transaction ring per series (~50 bytes) and the
	// bookkeeping of every append.
	opts.IsolationDisabled = true
	if s.cfg.Head == config.HeadVispyr {
		// Beside the own head the TSDB's holds few series (histograms):
		// 1,024 stripes of its series map instead of 16,384 save ~5 MB.
		opts.StripeSize = 1 << 10
	}
	return opts
}

// DB is the default tenant's TSDB, for the components that stay in it
// (scraping, rules).
func (s *Storage) DB() *tsdb.DB { return s.def.db }

// Dir is where the default tenant's TSDB lives.
func (s *Storage) Dir() string { return s.dir }

// Close flushes every tenant's head WAL and closes the TSDBs.
func (s *Storage) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.replays.stop()
	if s.stopLongTerm != nil {
		s.stopLongTerm()
		<-s.longTermDone
	}
	if s.stopOwnHeads != nil {
		s.stopOwnHeads()
		<-s.ownHeadsDone
	}
	var errs []error
	for _, t := range s.allTenants() {
		if err := raiseWALFloor(t.db); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", t.id, err))
		}
		errs = append(errs, t.close())
	}
	return errors.Join(errs...)
}

// ConsumeMetrics translates OTLP metrics exactly as Prometheus's own OTLP endpoint
// does and appends them to the tenant's TSDB. When it returns nil the samples
// are in the WAL.
func (s *Storage) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) (err error) {
	if err := checkFuture(md, time.Now()); err != nil {
		return err
	}
	t, err := s.tenant(pipeline.Tenant(ctx))
	if err != nil {
		return err
	}
	if err := t.limits.admitRate(md.DataPointCount()); err != nil {
		return err
	}
	app := &checkedAppender{AppenderV2: s.watchedAppenderV2(ctx, t), t: t}
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

// checkedAppender applies the tenant's label and series limits to every
// sample the OTLP translation appends.
type checkedAppender struct {
	storage.AppenderV2
	t *tenantDB
}

func (a *checkedAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if err := a.t.check(ls); err != nil {
		return 0, err
	}
	return a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
}

// classifyAppendError marks errors the client cannot fix by retrying (out of order,
// too old, duplicate) as invalid input so receivers answer 400, not 5xx.
func classifyAppendError(err error) error {
	if pipeline.IsLimit(err) || pipeline.IsInvalid(err) {
		return err
	}
	for _, target := range []error{storage.ErrOutOfOrderSample, storage.ErrOutOfBounds,
		storage.ErrDuplicateSampleForTimestamp, storage.ErrTooOldSample} {
		if errors.Is(err, target) {
			return pipeline.Invalid(err)
		}
	}
	return err
}
