package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/grafana/regexp"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/features"
	"github.com/prometheus/prometheus/util/notifications"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/metrics/fastrate"
	"github.com/vispyr/vispyr/internal/metrics/parallel"
	"github.com/vispyr/vispyr/internal/metrics/resultscache"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/version"
)

// APIOptions configures the Prometheus-compatible HTTP API.
type APIOptions struct {
	Metrics config.Metrics
	// OTLP serves /api/v1/otlp/v1/metrics; the OTLP receiver owns that decoding.
	OTLP http.Handler
	// RemoteWrite serves /api/v1/write and its alias /api/v1/metrics/write; the
	// remote-write receiver (internal/receiver/promwrite) owns that decoding.
	RemoteWrite http.Handler
	// Managers answer targets, rules, alerts and Alertmanagers; nil: empty lists.
	Managers Managers
	// QueryMemory is the budget every running query shares, PromQL's and the
	// other engines' (metrics.query_memory_bytes); nil: PromQL's own.
	QueryMemory *limits.Inflight
}

// parallelMinSteps is the fewest steps a part of a range query computed in
// parallel has: an hour at a 15 s step is split in two, the steps of a
// cached query's freshness window are not.
const parallelMinSteps = 60

// NewAPI returns the handler for the Prometheus port: Prometheus's own v1 API
// (queries, labels, series, exemplars, metadata, rules, buildinfo, remote write v1
// and v2, served by opts.RemoteWrite) over the embedded TSDB.
func (s *Storage) NewAPI(opts APIOptions, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:                   logger.With("component", "promql"),
		Reg:                      reg,
		MaxSamples:               opts.Metrics.QueryMaxSamples,
		Timeout:                  opts.Metrics.QueryTimeout,
		ActiveQueryTracker:       newQueryLimiter(opts.Metrics.QueryMaxConcurrent, s.limits),
		LookbackDelta:            opts.Metrics.LookbackDelta,
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		EnableDelayedNameRemoval: true,
		// A subquery without a step (`[5m:]`) runs at Prometheus's default
		// global evaluation interval.
		NoStepSubqueryIntervalFn: func(int64) int64 { return subqueryDefaultStep.Milliseconds() },
	})
	// Long range queries use every core: their steps are computed in parts
	// at once (the engine alone runs a query on one goroutine); each part's
	// rate sums are computed without the engine's per-step window walk.
	fast := fastrate.New(engine, fastrate.Options{MaxSamples: opts.Metrics.QueryMaxSamples})
	var queryEngine promql.QueryEngine = parallel.New(fast, parallel.Options{
		Parts: runtime.GOMAXPROCS(0), MinSteps: parallelMinSteps})
	var uncached func(context.Context, string, time.Time, time.Time, time.Duration) [][2]time.Time
	if opts.Metrics.ResultsCacheMaxBytes > 0 {
		cache := resultscache.New(queryEngine, resultscache.Options{
			MaxBytes: opts.Metrics.ResultsCacheMaxBytes, Freshness: opts.Metrics.ResultsCacheFreshness,
			LookbackDelta: opts.Metrics.LookbackDelta, Tenant: pipeline.Tenant, MinTime: s.MinTime,
		}, reg)
		s.WatchWrites(cache.Invalidate)
		queryEngine, uncached = cache, cache.Uncached
	}
	start := time.Now()
	mgr := managersOrEmpty(opts.Managers)
	// Scraping, rules and alerting live in the default tenant: other tenants
	// see no targets, rules, alerts or scraped metadata.
	mgrOf := func(ctx context.Context) Managers {
		if pipeline.Tenant(ctx) != pipeline.DefaultTenant {
			return noScrape{}
		}
		return mgr
	}
	api := apiv1.NewAPI(
		queryEngine, s, s, s,
		func(ctx context.Context) apiv1.ScrapePoolsRetriever { return mgrOf(ctx) },
		func(ctx context.Context) apiv1.TargetRetriever { return mgrOf(ctx) },
		func(ctx context.Context) apiv1.AlertmanagerRetriever { return mgrOf(ctx) },
		mgr.Config,
		map[string]string{},
		mgr.GlobalURLOptions(),
		func(f http.HandlerFunc) http.HandlerFunc { return f },
		adminStats{db: s.def.db, t: s.def}, s.dir,
		false, // admin endpoints (delete series, snapshot) stay off
		false, 0,
		logger.With("component", "api"),
		func(ctx context.Context) apiv1.RulesRetriever { return mgrOf(ctx) },
		0, 1, 1<<20, // remote read: not offered beyond Prometheus's defaults
		false, corsAnyOrigin,
		func() (apiv1.RuntimeInfo, error) { return runtimeInfo(start, opts.Metrics.Retention), nil },
		&apiv1.PrometheusVersion{
			Version: version.Version, Revision: version.Revision, Branch: version.Branch,
			BuildUser: version.BuildUser, BuildDate: version.BuildDate, GoVersion: version.GoVersion,
		},
		// No notifications (nil would panic on /api/v1/notifications): an
		// empty list, and 204 for the live stream, as Prometheus with none.
		func() []notifications.Notification { return []notifications.Notification{} },
		func() (<-chan notifications.Notification, func(), bool) { return nil, nil, false },
		headChunksGatherer(s.def), reg, nil,
		true, remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType},
		false, false, false, // OTLP is served by Vispyr's receiver (opts.OTLP)
		opts.Metrics.LookbackDelta,
		false, false, nil,
		features.NewRegistry(),
		apiv1.OpenAPIOptions{},
		nil, false, opts.Metrics.QueryTimeout,
	)
	router := route.New()
	api.Register(router.WithPrefix("/api/v1"))

	queryMemory := opts.QueryMemory
	if queryMemory == nil {
		queryMemory = limits.NewInflight(opts.Metrics.QueryMemoryBytes)
	}
	mux := http.NewServeMux()
	mux.Handle("/", &queryGuard{
		next: router, queryable: s, parser: parser.NewParser(parser.Options{}),
		lookback: opts.Metrics.LookbackDelta, maxSamples: int64(opts.Metrics.QueryMaxSamples),
		maxBytes: opts.Metrics.QueryMaxMemoryBytes, sharedMax: opts.Metrics.QueryMemoryBytes,
		shared: queryMemory, uncached: uncached,
	})
	if rw := opts.RemoteWrite; rw != nil {
		// Remote write takes Vispyr's own decoder and append path: the same answers
		// as Prometheus's handler, several times faster.
		mux.Handle("POST /api/v1/write", rw)
		// The original Vispyr agent's Alloy pushes to prometheus.receive_http's path.
		mux.Handle("POST /api/v1/metrics/write", rw)
	}
	// Grafana takes a server answering /status/flags for Thanos: stay Prometheus.
	mux.Handle("/api/v1/status/flags", http.NotFoundHandler())
	if opts.OTLP != nil {
		mux.Handle("POST /api/v1/otlp/v1/metrics", opts.OTLP)
	}
	// Prometheus's federation endpoint, so an existing Prometheus can scrape
	// span metrics and the service graph.
	mux.Handle("GET /federate", federateHandler(s, opts.Metrics.LookbackDelta))
	mux.Handle("GET /api/v1/status/tsdb", s.tsdbStatus(router))
	return s.withTenant(mux)
}

func runtimeInfo(start time.Time, retention time.Duration) apiv1.RuntimeInfo {
	host, _ := os.Hostname()
	cwd, _ := os.Getwd()
	return apiv1.RuntimeInfo{
		StartTime: start, CWD: cwd, Hostname: host, ServerTime: time.Now(),
		ReloadConfigSuccess: true, LastConfigTime: start,
		GoroutineCount: runtime.NumGoroutine(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GOGC: os.Getenv("GOGC"), GODEBUG: os.Getenv("GODEBUG"),
		StorageRetention: retention.String(),
	}
}

// corsAnyOrigin is Prometheus's default --web.cors.origin: browsers may query
// from any page, as they can query Prometheus.
var corsAnyOrigin = regexp.MustCompile(".*")

// noScrape answers the API's questions about scrape targets, alertmanagers and rules:
// Vispyr scrapes nothing and evaluates no rules, so every list is empty.
type noScrape struct{}

func (noScrape) ScrapePools() []string                                     { return nil }
func (noScrape) TargetsActive() map[string][]*scrape.Target                { return nil }
func (noScrape) TargetsDropped() map[string][]*scrape.Target               { return nil }
func (noScrape) TargetsDroppedCounts() map[string]int                      { return nil }
func (noScrape) ScrapePoolConfig(string) (*promconfig.ScrapeConfig, error) { return nil, errNoScrape }
func (noScrape) Alertmanagers() []*url.URL                                 { return nil }
func (noScrape) DroppedAlertmanagers() []*url.URL                          { return nil }
func (noScrape) RuleGroups() []*rules.Group                                { return nil }
func (noScrape) AlertingRules() []*rules.AlertingRule                      { return nil }

// adminStats exposes the default tenant's head statistics (headStats) to
// /api/v1/status/tsdb.
type adminStats struct {
	db *tsdb.DB
	t  *tenantDB
}

func (a adminStats) CleanTombstones() error { return a.db.CleanTombstones() }
func (a adminStats) Delete(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) error {
	return a.db.Delete(ctx, mint, maxt, ms...)
}
func (a adminStats) Snapshot(dir string, withHead bool) error { return a.db.Snapshot(dir, withHead) }
func (a adminStats) Stats(name string, limit int) (*tsdb.Stats, error) {
	return a.t.headStats(context.Background(), name, limit)
}
func (a adminStats) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return tsdb.WALReplayStatus{}, nil
}
func (a adminStats) BlockMetas() ([]tsdb.BlockMeta, error) {
	var metas []tsdb.BlockMeta
	for _, b := range a.db.Blocks() {
		metas = append(metas, b.Meta())
	}
	return metas, nil
}
