// Package prommgr runs the half of a Prometheus server that is not storage or
// PromQL: Prometheus's own scrape manager (with static, file and HTTP service
// discovery), rules manager and notifier, configured from a Prometheus
// configuration file read unchanged, writing into and reading from Vispyr's
// embedded TSDB, and reloadable without a restart.
package prommgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"

	// The service discoveries Vispyr offers besides static_configs.
	_ "github.com/prometheus/prometheus/discovery/file"
	_ "github.com/prometheus/prometheus/discovery/http"
)

// Storage is what the managers need of the metrics store: scrapes and rule
// results are appended to it, rules query it.
type Storage interface {
	storage.AppendableV2
	storage.Queryable
}

// Options wire the managers to the rest of Vispyr.
type Options struct {
	Config Config
	// DataDir is Vispyr's data directory; the rendered default rules go under it.
	DataDir string
	// AdminAddr is the admin listen address whose /metrics the self-scrape reads.
	AdminAddr string
	// PrometheusAddr is the Prometheus API's listen address.
	PrometheusAddr string
	// UIAddr is the UI listen address, for the default external URL.
	UIAddr string
	// LookbackDelta and QueryTimeout configure the rules' PromQL engine as the
	// API's, so a rule and the same query in the explorer agree.
	LookbackDelta time.Duration
	QueryTimeout  time.Duration
	// RulesAfter, when set, holds rule evaluation back until it is closed:
	// the metrics store closes it once the WAL it replays in the
	// background is in, since rate windows and absent() over the missing
	// range would record and alert wrongly. Scraping starts at once.
	RulesAfter <-chan struct{}
}

// Manager owns the scrape, rules and notifier managers and their discovery.
type Manager struct {
	opts        Options
	logger      *slog.Logger
	externalURL *url.URL

	scrape       *scrape.Manager
	rules        *rules.Manager
	notifier     *notifier.Manager
	scrapeSD     *discovery.Manager
	notifySD     *discovery.Manager
	cancelSD     context.CancelFunc
	cancelRules  context.CancelFunc
	reloadMu     sync.Mutex // one reload at a time
	cfgMu        sync.RWMutex
	cfg          *promconfig.Config
	iterate      rules.GroupEvalIterationFunc // the last reload's, for EvalRuleGroups
	lastReload   time.Time
	reloadOK     prometheus.Gauge
	reloadOKTime prometheus.Gauge
	rulesStarted chan struct{} // closed once rules may evaluate (Options.RulesAfter)
	loaded       bool          // the first Reload is done
}

// New builds the managers and loads the configuration once; a bad
// configuration or rule file stops start-up with the reason.
func New(opts Options, db Storage, logger *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	ext, err := externalURL(opts.Config.ExternalURL, opts.UIAddr)
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, logger: logger, externalURL: ext, rulesStarted: make(chan struct{})}
	if m.opts.RulesAfter == nil {
		open := make(chan struct{})
		close(open)
		m.opts.RulesAfter = open
	}

	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register discovery metrics: %w", err)
	}
	sdCtx, cancelSD := context.WithCancel(context.Background())
	m.cancelSD = cancelSD
	m.scrapeSD = discovery.NewManager(sdCtx, logger.With("component", "discovery-scrape"), reg, sdMetrics, discovery.Name("scrape"))
	m.notifySD = discovery.NewManager(sdCtx, logger.With("component", "discovery-notify"), reg, sdMetrics, discovery.Name("notify"))
	if m.scrapeSD == nil || m.notifySD == nil {
		cancelSD()
		return nil, errors.New("create discovery managers")
	}

	m.scrape, err = scrape.NewManager(&scrape.Options{}, logger.With("component", "scrape"), nil, nil, db, reg)
	if err != nil {
		cancelSD()
		return nil, fmt.Errorf("create scrape manager: %w", err)
	}
	m.notifier = notifier.NewManager(&notifier.Options{QueueCapacity: 10000, Registerer: reg},
		model.UTF8Validation, logger.With("component", "notifier"))

	engine := promql.NewEngine(promql.EngineOpts{
		Logger: logger.With("component", "rules-promql"),
		// The API's engine registers prometheus_engine_*; rule evaluation
		// shows in prometheus_rule_* instead.
		Reg:                  nil,
		MaxSamples:           50_000_000,
		Timeout:              opts.QueryTimeout,
		LookbackDelta:        opts.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
	// The rules of one group evaluation read what they have in common once.
	shared := sharingQueryable{db: db}
	rulesCtx, cancelRules := context.WithCancel(context.Background())
	m.cancelRules = cancelRules
	m.rules = rules.NewManager(&rules.ManagerOptions{
		NameValidationScheme: model.UTF8Validation,
		AppendableV2:         db,
		Queryable:            db,
		QueryFunc:            rules.EngineQueryFunc(engine, shared),
		NotifyFunc:           m.sendAlerts,
		Context:              rulesCtx,
		ExternalURL:          ext,
		Registerer:           reg,
		Logger:               logger.With("component", "rules"),
		OutageTolerance:      time.Hour,
		ForGracePeriod:       10 * time.Minute,
		ResendDelay:          time.Minute,
	})

	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_config_last_reload_successful",
		Help: "Whether the last configuration reload attempt was successful.",
	})
	m.reloadOKTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_config_last_reload_success_timestamp_seconds",
		Help: "Timestamp of the last successful configuration reload.",
	})
	reg.MustRegister(m.reloadOK, m.reloadOKTime)

	if err := m.Reload(); err != nil {
		cancelSD()
		cancelRules()
		return nil, err
	}
	return m, nil
}

// Run scrapes, evaluates and notifies until ctx is done, then stops rules
// first (no new alerts), then scraping, then the notifier (which drains).
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range []func(){
		func() { _ = m.scrapeSD.Run() },
		func() { _ = m.notifySD.Run() },
		func() { _ = m.scrape.Run(m.scrapeSD.SyncCh()) },
		func() { m.notifier.Run(m.notifySD.SyncCh()) },
		func() { m.runRules(ctx) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	<-ctx.Done()
	m.rules.Stop()
	m.cancelRules()
	m.scrape.Stop()
	m.notifier.Stop()
	m.cancelSD()
	wg.Wait()
	return nil
}

// runRules evaluates the rules once Options.RulesAfter is closed. When ctx
// ends first it starts them all the same: the groups see the stop at once,
// and the rules manager's Stop waits for groups that started.
func (m *Manager) runRules(ctx context.Context) {
	select {
	case <-m.opts.RulesAfter:
	default:
		m.logger.Info("rule evaluation waits for the metrics WAL replaying in the background")
		select {
		case <-m.opts.RulesAfter:
			m.logger.Info("metrics WAL replayed; rule evaluation starts")
		case <-ctx.Done():
		}
	}
	close(m.rulesStarted)
	m.rules.Run()
}

// Reload reads the configuration file and every rule file again and applies
// them. Nothing changes unless all of them load: a bad rule file is named, with
// its line, in the error, and the rules in force keep running.
func (m *Manager) Reload() (err error) {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	defer func() {
		if err != nil {
			m.reloadOK.Set(0)
			m.logger.Error("reload failed; previous configuration kept", "err", err)
			return
		}
		m.reloadOK.Set(1)
		m.reloadOKTime.SetToCurrentTime()
	}()

	cfg, err := m.load()
	if err != nil {
		return err
	}
	files, err := m.ruleFiles(cfg)
	if err != nil {
		return err
	}
	interval := time.Duration(cfg.GlobalConfig.EvaluationInterval)
	ext := m.externalURL.String()
	// Load (and so check) every rule file before anything is applied.
	if _, errs := m.rules.LoadGroups(interval, cfg.GlobalConfig.ExternalLabels, ext, m.evalIteration(), false, files...); len(errs) > 0 {
		return fmt.Errorf("load rules: %w", errors.Join(errs...))
	}

	// As Prometheus orders it: the managers before their discovery, so new
	// targets meet the new configuration.
	var errs []error
	if err := m.scrape.ApplyConfig(cfg); err != nil {
		errs = append(errs, fmt.Errorf("apply scrape config: %w", err))
	}
	scrapeCfgs, err := cfg.GetScrapeConfigs()
	if err != nil {
		errs = append(errs, fmt.Errorf("read scrape configs: %w", err))
	}
	sd := map[string]discovery.Configs{}
	for _, sc := range scrapeCfgs {
		sd[sc.JobName] = sc.ServiceDiscoveryConfigs
	}
	if err := m.scrapeSD.ApplyConfig(sd); err != nil {
		errs = append(errs, fmt.Errorf("apply scrape discovery: %w", err))
	}
	if err := m.notifier.ApplyConfig(cfg); err != nil {
		errs = append(errs, fmt.Errorf("apply alerting config: %w", err))
	}
	nsd := map[string]discovery.Configs{}
	for k, v := range cfg.AlertingConfig.AlertmanagerConfigs.ToMap() {
		nsd[k] = v.ServiceDiscoveryConfigs
	}
	if err := m.notifySD.ApplyConfig(nsd); err != nil {
		errs = append(errs, fmt.Errorf("apply alertmanager discovery: %w", err))
	}
	// Groups that never started cannot be stopped by the rules manager, so
	// a reload before rule evaluation starts waits for it (the first load
	// has none to stop).
	if m.loaded {
		select {
		case <-m.rulesStarted:
		default:
			m.logger.Info("the rules reload waits until rule evaluation starts, after the metrics WAL replay")
			<-m.rulesStarted
		}
	}
	iterate := m.evalIteration()
	if err := m.rules.Update(interval, files, cfg.GlobalConfig.ExternalLabels, ext, iterate); err != nil {
		errs = append(errs, fmt.Errorf("update rules: %w", err))
	}
	m.loaded = true
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	m.cfgMu.Lock()
	m.cfg, m.lastReload, m.iterate = cfg, time.Now(), iterate
	m.cfgMu.Unlock()
	m.logger.Info("prometheus configuration loaded", "file", m.opts.Config.ConfigFile,
		"scrape_jobs", len(scrapeCfgs), "rule_files", len(files),
		"alertmanagers", len(cfg.AlertingConfig.AlertmanagerConfigs))
	return nil
}

// EvalRuleGroups evaluates every rule group once at ts, one after the other,
// as the rules manager's schedule would (reads shared the same way), and
// appends their results: for a benchmark that needs the same timestamps on
// every run. Not for use while Run runs.
func (m *Manager) EvalRuleGroups(ctx context.Context, ts time.Time) {
	m.cfgMu.RLock()
	iterate := m.iterate
	m.cfgMu.RUnlock()
	for _, g := range m.rules.RuleGroups() {
		iterate(ctx, g, ts)
	}
}

// evalIteration evaluates a group with its rules' reads shared.
func (m *Manager) evalIteration() rules.GroupEvalIterationFunc {
	lookback := m.opts.LookbackDelta
	if lookback == 0 {
		lookback = 5 * time.Minute // the engine's default
	}
	return shareGroupReads(lookback)
}

// load reads the Prometheus configuration file (or Prometheus's defaults
// without one) and adds the self-scrape job.
func (m *Manager) load() (*promconfig.Config, error) {
	var cfg *promconfig.Config
	var err error
	if f := m.opts.Config.ConfigFile; f != "" {
		cfg, err = promconfig.LoadFile(f, false, m.logger)
		if err != nil {
			return nil, fmt.Errorf("load prometheus config: %w", err)
		}
		if len(cfg.RemoteWriteConfigs) > 0 || len(cfg.RemoteReadConfigs) > 0 {
			m.logger.Warn("remote_write and remote_read in the prometheus config are ignored", "file", f)
		}
	} else {
		cfg, err = promconfig.Load("", m.logger)
		if err != nil {
			return nil, fmt.Errorf("load default prometheus config: %w", err)
		}
	}
	if err := m.addSelfScrape(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ruleFiles expands the rule_files globs and adds the rendered default rules.
func (m *Manager) ruleFiles(cfg *promconfig.Config) ([]string, error) {
	var files []string
	for _, pat := range cfg.RuleFiles {
		fs, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("expand rule_files %q: %w", pat, err)
		}
		files = append(files, fs...)
	}
	if m.opts.Config.DefaultRules.Enabled {
		f, err := writeDefaultRules(filepath.Join(m.opts.DataDir, "prometheus"), m.opts.Config.DefaultRules)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// sendAlerts is rules.SendAlerts with generator URLs that open Vispyr's
// explorer at the rule's expression rather than Prometheus's /graph.
func (m *Manager) sendAlerts(_ context.Context, expr string, alerts ...*rules.Alert) {
	if len(alerts) == 0 {
		return
	}
	link := strings.TrimSuffix(m.externalURL.String(), "/") + "/explore?q=" + url.QueryEscape(expr)
	res := make([]*notifier.Alert, 0, len(alerts))
	for _, a := range alerts {
		n := &notifier.Alert{StartsAt: a.FiredAt, Labels: a.Labels, Annotations: a.Annotations, GeneratorURL: link}
		if !a.ResolvedAt.IsZero() {
			n.EndsAt = a.ResolvedAt
		} else {
			n.EndsAt = a.ValidUntil
		}
		res = append(res, n)
	}
	m.notifier.Send(res...)
}

// externalURL is the configured URL or http://<hostname>:<UI port>.
func externalURL(configured, uiAddr string) (*url.URL, error) {
	if configured != "" {
		u, err := url.Parse(configured)
		if err != nil {
			return nil, fmt.Errorf("parse external url: %w", err)
		}
		return u, nil
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	port := "3000"
	if _, p, err := net.SplitHostPort(uiAddr); err == nil && p != "" {
		port = p
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}, nil
}
