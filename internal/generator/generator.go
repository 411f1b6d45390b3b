// Package generator derives metrics from spans, as Tempo's metrics-generator
// does: span metrics (RED per operation) and a service graph. Spans are
// aggregated in memory as they are consumed; Run writes all current series,
// with exemplars, to a Prometheus storage every collection interval.
package generator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/generator/series"
	"github.com/vispyr/vispyr/internal/generator/servicegraph"
	"github.com/vispyr/vispyr/internal/generator/spanmetrics"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// Config configures the generator.
type Config struct {
	SpanMetrics spanmetrics.Config `yaml:"span_metrics"`
	// OTelSpanMetrics are span metrics named as the OpenTelemetry Collector's
	// spanmetrics connector names them, for dashboards built on that pipeline.
	OTelSpanMetrics spanmetrics.OTelConfig `yaml:"otel_span_metrics"`
	ServiceGraph    servicegraph.Config    `yaml:"service_graph"`
	// CollectionInterval is how often series are written to storage.
	CollectionInterval time.Duration `yaml:"collection_interval"`
	// StaleDuration drops series from memory (and so stops writing them)
	// when no span has updated them for this long.
	StaleDuration time.Duration `yaml:"stale_duration"`
	// DisableSpanMetrics turns the span-metrics processor off.
	DisableSpanMetrics bool `yaml:"disable_span_metrics"`
	// DisableServiceGraph turns the service-graph processor off.
	DisableServiceGraph bool `yaml:"disable_service_graph"`
}

// Defaults sets every field to its default (Tempo's). Call it before
// unmarshalling YAML so that only the fields a user writes change.
func (c *Config) Defaults() {
	*c = Config{CollectionInterval: 15 * time.Second, StaleDuration: 15 * time.Minute}
	c.SpanMetrics.Defaults()
	c.OTelSpanMetrics.Defaults()
	c.ServiceGraph.Defaults()
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.CollectionInterval <= 0 {
		return fmt.Errorf("collection_interval: %v must be positive", c.CollectionInterval)
	}
	if c.StaleDuration < c.CollectionInterval {
		return fmt.Errorf("stale_duration: %v is shorter than collection_interval %v", c.StaleDuration, c.CollectionInterval)
	}
	if !c.DisableSpanMetrics {
		if err := c.SpanMetrics.Validate(); err != nil {
			return fmt.Errorf("span_metrics: %w", err)
		}
	}
	if c.OTelSpanMetrics.Enabled {
		if err := c.OTelSpanMetrics.Validate(); err != nil {
			return fmt.Errorf("otel_span_metrics: %w", err)
		}
	}
	if !c.DisableServiceGraph {
		if err := c.ServiceGraph.Validate(); err != nil {
			return fmt.Errorf("service_graph: %w", err)
		}
	}
	return nil
}

// Enabled reports whether any processor is on: a generator with none
// derives nothing, so the gateway leaves it out of the trace path (which
// then forwards requests without decoding them).
func (c *Config) Enabled() bool {
	return !c.DisableSpanMetrics || !c.DisableServiceGraph || c.OTelSpanMetrics.Enabled
}

// expireEvery is how often unpaired service-graph edges are checked, so an
// edge expires at most this long after its wait.
const expireEvery = time.Second

// Generator consumes spans and writes the metrics derived from them.
type Generator struct {
	cfg    Config
	app    storage.Appendable
	logger *slog.Logger
	now    func() time.Time

	// The default tenant's processors; each nil when disabled.
	procs

	// Every other tenant's, created on its first spans: as in Tempo's
	// generator, each tenant's series (and their limits) are its own, and
	// are written with the tenant in the context, so they land in its TSDB.
	mu      sync.RWMutex
	tenants map[string]*tenantProcs

	flushMu   sync.Mutex // one collection at a time; guards batch and lastFlush
	batch     series.Batch
	lastFlush int64 // ms; a new series' zero sample goes here

	collections, failures prometheus.Counter
	samples, exemplars    prometheus.Counter
}

var _ pipeline.Traces = (*Generator)(nil)

// New returns a generator writing to app. cfg should have passed Validate;
// fields left at zero take their defaults.
func New(cfg Config, app storage.Appendable, logger *slog.Logger, reg prometheus.Registerer) *Generator {
	return newGenerator(cfg, app, logger, reg, time.Now)
}

// newGenerator is New with a clock, for tests.
func newGenerator(cfg Config, app storage.Appendable, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) *Generator {
	fillZero(&cfg)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := series.NewSelfMetrics(reg)
	g := &Generator{
		cfg:    cfg,
		app:    app,
		logger: logger,
		now:    now,
		collections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_generator_collections_total",
			Help: "Collections that wrote the generated series to storage.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_generator_collection_failures_total",
			Help: "Collections that failed to commit, or in which storage refused samples.",
		}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_generator_samples_written_total",
			Help: "Samples the generator appended to storage.",
		}),
		exemplars: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_generator_exemplars_written_total",
			Help: "Exemplars the generator appended to storage.",
		}),
	}
	if reg != nil {
		reg.MustRegister(g.collections, g.failures, g.samples, g.exemplars)
	}
	g.procs = g.newProcessors(m, logger)
	g.lastFlush = g.now().UnixMilli()
	g.tenants = map[string]*tenantProcs{}
	return g
}

// procs are one tenant's processors; each is nil when disabled.
type procs struct {
	spans, otel *spanmetrics.Processor
	graph       *servicegraph.Processor
}

// tenantProcs are the processors of a tenant other than the default one.
type tenantProcs struct {
	procs
	lastFlush int64
}

func (g *Generator) newProcessors(m *series.SelfMetrics, logger *slog.Logger) procs {
	var p procs
	if !g.cfg.DisableSpanMetrics {
		p.spans = spanmetrics.New(g.cfg.SpanMetrics, g.cfg.StaleDuration, m, logger)
	}
	if g.cfg.OTelSpanMetrics.Enabled {
		p.otel = spanmetrics.NewOTel(g.cfg.OTelSpanMetrics, g.cfg.StaleDuration, m, logger)
	}
	if !g.cfg.DisableServiceGraph {
		p.graph = servicegraph.New(g.cfg.ServiceGraph, g.cfg.StaleDuration, m, logger)
	}
	return p
}

// processors returns the tenant's processors, creating them on first use.
// Only the default tenant's are in the generator's self-metrics: one gauge
// of active series per processor cannot tell tenants apart.
func (g *Generator) processors(tenant string) procs {
	if tenant == pipeline.DefaultTenant {
		return g.procs
	}
	g.mu.RLock()
	t := g.tenants[tenant]
	g.mu.RUnlock()
	if t == nil {
		g.mu.Lock()
		if t = g.tenants[tenant]; t == nil {
			t = &tenantProcs{lastFlush: g.now().UnixMilli()}
			t.procs = g.newProcessors(series.NewSelfMetrics(nil), g.logger.With("tenant", tenant))
			g.tenants[tenant] = t
		}
		g.mu.Unlock()
	}
	return t.procs
}

// fillZero gives zero fields their defaults, so a Config built in code
// without Defaults still works.
func fillZero(c *Config) {
	var d Config
	d.Defaults()
	if c.CollectionInterval <= 0 {
		c.CollectionInterval = d.CollectionInterval
	}
	if c.StaleDuration <= 0 {
		c.StaleDuration = d.StaleDuration
	}
	sm, sg := &c.SpanMetrics, &c.ServiceGraph
	if len(sm.HistogramBuckets) == 0 {
		sm.HistogramBuckets = d.SpanMetrics.HistogramBuckets
	}
	if sm.IntrinsicDimensions == (spanmetrics.IntrinsicDimensions{}) {
		sm.IntrinsicDimensions = d.SpanMetrics.IntrinsicDimensions
	}
	if sm.MaxActiveSeries <= 0 {
		sm.MaxActiveSeries = d.SpanMetrics.MaxActiveSeries
	}
	if sg.Wait <= 0 {
		sg.Wait = d.ServiceGraph.Wait
	}
	if sg.MaxItems <= 0 {
		sg.MaxItems = d.ServiceGraph.MaxItems
	}
	if len(sg.HistogramBuckets) == 0 {
		sg.HistogramBuckets = d.ServiceGraph.HistogramBuckets
	}
	if sg.PeerAttributes == nil {
		sg.PeerAttributes = d.ServiceGraph.PeerAttributes
	}
	if sg.DatabaseNameAttributes == nil {
		sg.DatabaseNameAttributes = d.ServiceGraph.DatabaseNameAttributes
	}
	if c.OTelSpanMetrics.Unit == "" {
		c.OTelSpanMetrics.Unit = d.OTelSpanMetrics.Unit
	}
	if c.OTelSpanMetrics.MaxActiveSeries <= 0 {
		c.OTelSpanMetrics.MaxActiveSeries = d.OTelSpanMetrics.MaxActiveSeries
	}
	if sg.MaxActiveSeries <= 0 {
		sg.MaxActiveSeries = d.ServiceGraph.MaxActiveSeries
	}
}

// ConsumeRows aggregates rows into the tenant's in-memory series (the tenant
// of ctx). It does no I/O and never waits on storage. It keeps nothing that
// aliases rows: label values are copied into the series tables, and the
// service graph copies (or interns) what its waiting edges hold, so rows may
// live in the trace head's arenas, or be overwritten, once it returns.
func (g *Generator) ConsumeRows(ctx context.Context, rows []spanrow.Span) error {
	now := g.now().UnixMilli()
	p := g.processors(pipeline.Tenant(ctx))
	if p.spans != nil {
		p.spans.Consume(rows, now)
	}
	if p.otel != nil {
		p.otel.Consume(rows, now)
	}
	if p.graph != nil {
		p.graph.Consume(rows, now)
	}
	return nil
}

// rowScratch holds ConsumeTraces' rows between requests.
var rowScratch = sync.Pool{New: func() any { return new([]spanrow.Span) }}

// ConsumeTraces is ConsumeRows for pdata, for the paths that have no rows
// (the gateway, Faro). A request with a span lacking its trace or span ID
// derives nothing: the trace store refuses the whole request (so serve never
// passes it on), and Tempo's distributor refuses it too, so neither would
// count its spans; counting them here would give metrics for spans that were
// never stored. That is no error of the generator's, whose callers have
// already accepted the request.
func (g *Generator) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	buf := rowScratch.Get().(*[]spanrow.Span)
	rows, err := spanrow.FromTraces(td, (*buf)[:0])
	if err != nil {
		g.logger.Debug("spans without IDs: nothing derived from the request", "err", err)
		rows = rows[:cap(rows)] // FromTraces filled rows past those it returned
	} else {
		_ = g.ConsumeRows(ctx, rows)
	}
	clear(rows) // drop the blobs and strings before the slice is pooled
	if cap(rows) <= maxPooledRows {
		*buf = rows[:0]
		rowScratch.Put(buf)
	}
	return nil
}

// maxPooledRows keeps a rare huge request's rows out of the pool.
const maxPooledRows = 1 << 14

// Run writes the series every collection interval and expires unpaired
// edges, until ctx is done; then it writes once more and returns.
func (g *Generator) Run(ctx context.Context) error {
	collect := time.NewTicker(g.cfg.CollectionInterval)
	defer collect.Stop()
	expire := time.NewTicker(expireEvery)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			g.expire()
			if err := g.Flush(context.WithoutCancel(ctx)); err != nil {
				return fmt.Errorf("final flush: %w", err)
			}
			return nil
		case <-expire.C:
			g.expire()
		case <-collect.C:
			if err := g.Flush(ctx); err != nil {
				g.logger.Error("write generated metrics", "err", err)
			}
		}
	}
}

func (g *Generator) expire() {
	now := g.now().UnixMilli()
	if g.graph != nil {
		g.graph.Expire(now)
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, t := range g.tenants {
		if t.graph != nil {
			t.graph.Expire(now)
		}
	}
}

// Flush writes every tenant's current series to storage at the current
// time, each tenant in its own commit with the tenant in the context.
// Samples the storage refuses are skipped and reported in the error; the
// others are still committed.
func (g *Generator) Flush(ctx context.Context) error {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	now := g.now().UnixMilli()
	errs := []error{g.flushTenant(ctx, now, g.procs, &g.lastFlush)}
	g.mu.RLock()
	tenants := make(map[string]*tenantProcs, len(g.tenants))
	for id, t := range g.tenants {
		tenants[id] = t
	}
	g.mu.RUnlock()
	for id, t := range tenants {
		if err := g.flushTenant(pipeline.WithTenant(ctx, id), now, t.procs, &t.lastFlush); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (g *Generator) flushTenant(ctx context.Context, now int64, p procs, lastFlush *int64) error {
	g.batch.Reset()
	if p.spans != nil {
		p.spans.Collect(&g.batch, now)
	}
	if p.otel != nil {
		p.otel.Collect(&g.batch, now)
	}
	if p.graph != nil {
		p.graph.Collect(&g.batch, now)
	}
	if g.batch.Len() == 0 {
		*lastFlush = now
		return nil
	}
	if g.app == nil {
		g.batch.Reset()
		return errors.New("no storage to write generated metrics to")
	}
	app := g.app.Appender(ctx)
	st := g.batch.Append(app, now, *lastFlush)
	g.batch.Reset()
	if err := app.Commit(); err != nil {
		g.failures.Inc()
		return fmt.Errorf("commit generated metrics: %w", err)
	}
	*lastFlush = now
	g.collections.Inc()
	g.samples.Add(float64(st.Samples))
	g.exemplars.Add(float64(st.Exemplars))
	if st.FailedExemplars > 0 {
		// Exemplars are best effort: the samples they annotate were written.
		g.logger.Debug("storage refused exemplars", "count", st.FailedExemplars, "first", st.FirstExErr)
	}
	if st.FailedSamples > 0 {
		g.failures.Inc()
		return fmt.Errorf("storage refused %d of %d samples: %w", st.FailedSamples, st.FailedSamples+st.Samples, st.FirstSampleErr)
	}
	return nil
}
