// Package config holds Vispyr's one configuration struct: defaults, the YAML file,
// environment variables and flags, applied in that order, then validated.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vispyr/vispyr/internal/acme"
	"github.com/vispyr/vispyr/internal/auth"
	"github.com/vispyr/vispyr/internal/forward"
	"github.com/vispyr/vispyr/internal/generator"
	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/profiles"
	"github.com/vispyr/vispyr/internal/prommgr"
	"github.com/vispyr/vispyr/internal/receiver/faro"
	"github.com/vispyr/vispyr/internal/traces"
)

// Config is everything `vispyr serve` can be told.
type Config struct {
	// DataDir holds every embedded store, one sub-directory each.
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`

	Listen   Listen          `yaml:"listen"`
	Metrics  Metrics         `yaml:"metrics"`
	Traces   traces.Config   `yaml:"traces"`
	Profiles profiles.Config `yaml:"profiles"`
	// Logs is the log store behind Loki push, OTLP logs and Faro.
	Logs logs.Config `yaml:"logs"`
	// Faro is the browser receiver on listen.faro, with the settings of
	// Alloy's faro.receiver: CORS origins, API key, payload and rate limits.
	Faro      faro.Config      `yaml:"faro"`
	Generator generator.Config `yaml:"generator"`
	Limits    Limits           `yaml:"limits"`
	// Forward sends a copy of what serve stores on, or, for gateway, everything.
	Forward forward.Config `yaml:"forward"`
	// TLS, when set, serves every listener but health over TLS.
	TLS auth.TLSConfig `yaml:"tls"`
	// ACME, when it names domains, obtains and renews the listeners'
	// certificate from an ACME CA (Let's Encrypt by default) instead of
	// tls.cert_file, answering the TLS-ALPN-01 challenge on the UI port.
	ACME acme.Config `yaml:"acme"`
	// Auth, when it names tokens or users, asks every listener but health (and
	// the admin port's /-/ready and /-/healthy) for credentials with a scope
	// (write, read, admin) and decides each request's tenant.
	Auth auth.Config `yaml:"auth"`
	// Prometheus is scraping, rules and alerting: a prometheus.yml and its rule files.
	Prometheus prommgr.Config `yaml:"prometheus"`
	UI         UI             `yaml:"ui"`
}

// UI configures the built-in UI beyond its listen address.
type UI struct {
	// ExternalURL is where people open the UI (https://vispyr.example.com/), for
	// when a proxy sits in front of it. Browsers that open the Prometheus, Tempo
	// or Pyroscope port are sent there. Empty: the UI port on the host they asked.
	ExternalURL string `yaml:"external_url"`
}

// Listen holds every listen address. An empty address turns that listener off.
type Listen struct {
	OTLPGRPC        string `yaml:"otlp_grpc"`        // 4317
	OTLPHTTP        string `yaml:"otlp_http"`        // 4318
	Prometheus      string `yaml:"prometheus"`       // 9090: remote write in, PromQL out
	PyroscopeIngest string `yaml:"pyroscope_ingest"` // 9999
	Pyroscope       string `yaml:"pyroscope"`        // 4040
	Tempo           string `yaml:"tempo"`            // 3200
	Loki            string `yaml:"loki"`             // 3100: Loki push in, Loki queries out
	Faro            string `yaml:"faro"`             // 12347: Faro browser telemetry (/collect)
	UI              string `yaml:"ui"`               // 3000
	Admin           string `yaml:"admin"`            // 12345
	Health          string `yaml:"health"`           // 13133
}

// The heads metrics.head chooses between.
const (
	HeadPrometheus = "prometheus"
	HeadVispyr     = "vispyr"
)

// Metrics configures the embedded Prometheus TSDB and the PromQL engine.
type Metrics struct {
	Retention          time.Duration `yaml:"retention"`
	RetentionSize      int64         `yaml:"retention_size_bytes"` // 0: no size limit
	OutOfOrderWindow   time.Duration `yaml:"out_of_order_window"`
	MaxExemplars       int64         `yaml:"max_exemplars"`
	QueryTimeout       time.Duration `yaml:"query_timeout"`
	QueryMaxSamples    int           `yaml:"query_max_samples"`
	QueryMaxConcurrent int           `yaml:"query_max_concurrent"`
	LookbackDelta      time.Duration `yaml:"lookback_delta"`

	// QueryMaxMemoryBytes caps the points one PromQL query may hold (16 bytes
	// each), estimated before it runs.
	QueryMaxMemoryBytes int64 `yaml:"query_max_memory_bytes"`
	// QueryMemoryBytes caps the memory of all running queries of every engine
	// together: PromQL, TraceQL metrics (traces.query_max_memory_bytes each)
	// and Pyroscope merges (profiles.query_max_memory_bytes each). A query
	// that finds it spent is answered 503 (PromQL), 429 (Tempo) or
	// resource_exhausted (Pyroscope) with Retry-After.
	QueryMemoryBytes int64 `yaml:"query_memory_bytes"`

	// ResultsCacheMaxBytes bounds the cache of range query results (per
	// step, reused when a dashboard refreshes or a range overlaps); 0 turns
	// it off.
	ResultsCacheMaxBytes int64 `yaml:"results_cache_max_bytes"`
	// ResultsCacheFreshness is how far back from now steps are never cached,
	// so samples arriving late still show (VictoriaMetrics'
	// -search.cacheTimestampOffset). Older writes drop what they touch.
	ResultsCacheFreshness time.Duration `yaml:"results_cache_freshness"`

	// BackgroundReplayMinWALBytes: a TSDB whose head would read at least
	// this many bytes at start-up (head chunks, head snapshot, and the WAL
	// past that snapshot: all of it after a crash) moves its head files aside
	// and opens at once with an empty head that takes writes, while they
	// replay beside it into blocks; queries say the data is incomplete and
	// rules wait until that ends. 0 always replays before ready.
	BackgroundReplayMinWALBytes int64 `yaml:"background_replay_min_wal_bytes"`

	// LongTerm is the long-term tier: old TSDB blocks rewritten into a
	// format of about VictoriaMetrics' bytes per sample.
	LongTerm LongTerm `yaml:"longterm"`

	// Head chooses where float samples wait before they are written into
	// blocks: "vispyr", Vispyr's own head (a third of the memory a series
	// and faster ingest), with histograms in Prometheus's head beside it,
	// or "prometheus", Prometheus's TSDB head for every sample. Switching
	// from vispyr to prometheus writes the own head's samples into blocks
	// at the next start.
	Head string `yaml:"head"`
}

// LongTerm configures the long-term metrics tier.
type LongTerm struct {
	// Enabled rewrites each UTC day of TSDB blocks, once it ended After
	// before the newest sample, into a long-term block of about a quarter
	// of the bytes, still queried by PromQL and the label APIs; retention
	// applies to it. Blocks holding native histograms stay in the TSDB.
	Enabled bool `yaml:"enabled"`
	// After is how old a day of samples must be before it moves: recent
	// data stays in the TSDB's chunks, which dashboards read most.
	After time.Duration `yaml:"after"`
	// Downsample also keeps, in each long-term block, 5m and 1h aggregates
	// (count, sum, min, max, counter points), which range queries whose
	// step and range span at least 5 windows read instead of the raw
	// samples for rate, increase and min/max/sum/avg_over_time, answering
	// as the raw samples do over whole windows. It adds about half to the
	// tier's disk (bench/remotewrite's series, scraped every 15s).
	Downsample bool `yaml:"downsample"`
}

// Limits protect the process from oversized or overwhelming input.
type Limits struct {
	// MaxRequestBytes caps a request body after decompression; larger gets 413.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxSeriesPerRequest caps the series of one remote-write or OTLP request; more gets 400.
	MaxSeriesPerRequest int `yaml:"max_series_per_request"`
	// MaxInflightBytes caps the decoded bytes being ingested at once; more gets 429.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// MaxConcurrentAppends caps the remote-write requests appending to the
	// metrics store at once; one more waits up to half a second for a slot,
	// then gets 503 with Retry-After, so that a storm of slow appends (out of
	// order samples, lock contention) is answered before memory runs out.
	// 0: four per CPU.
	MaxConcurrentAppends int `yaml:"max_concurrent_appends"`
	// MaxConnectionsPerClient caps the connections one client IP holds open on
	// each port; more are answered 429 and closed. 0: no limit.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// MaxProfileSamples refuses a profile with more samples with 400, as
	// Pyroscope's max_profile_stacktrace_samples does. 0: no limit.
	MaxProfileSamples int `yaml:"max_profile_samples"`
	// MaxMemoryBytes is the process's memory ceiling (the Go runtime's soft
	// limit: it collects garbage harder as the heap nears it). 0: 70% of the
	// machine's or cgroup's memory.
	MaxMemoryBytes int64 `yaml:"max_memory_bytes"`
	// DiskReserveBytes is the free space kept on the data directory's
	// filesystem: below it every store refuses writes with 503 and Retry-After
	// and /-/ready turns false, before a store could hit ENOSPC; both recover
	// by themselves once space returns. 0: 5% of the filesystem, at least
	// 64 MiB and at most 1 GiB, which covers what the stores still write after
	// the last accepted request (head chunks, a trace block cut, a profile
	// block, WAL segments).
	DiskReserveBytes int64 `yaml:"disk_reserve_bytes"`
	// MaxTenants caps the tenants (X-Scope-OrgID values) the metrics store
	// keeps, the default tenant included: each has a TSDB of its own, and
	// without auth anyone may name a new one. Data of a tenant beyond it gets
	// 429. 0: no limit.
	MaxTenants int `yaml:"max_tenants"`
	// Tenant holds the limits every tenant (X-Scope-OrgID) gets, the default
	// tenant included: Mimir's label limits; rate and series limits are off.
	Tenant TenantLimits `yaml:"tenant"`
	// Tenants overrides limits.tenant for the named tenants; in an override a
	// field left out (or 0) keeps limits.tenant's value and -1 means no limit.
	Tenants map[string]TenantLimits `yaml:"tenants"`
}

// TenantLimits are one tenant's limits, named and valued as Mimir's. A
// refused series or request is answered with Mimir's message, which names
// the limit: 400 for the label limits, 429 for rate and series limits.
type TenantLimits struct {
	// MaxLabelNamesPerSeries refuses a series with more labels (400). 0: no limit.
	MaxLabelNamesPerSeries int `yaml:"max_label_names_per_series"`
	// MaxLabelNameLength refuses a series with a longer label name (400). 0: no limit.
	MaxLabelNameLength int `yaml:"max_label_name_length"`
	// MaxLabelValueLength refuses a series with a longer label value, metric
	// name included (400). 0: no limit.
	MaxLabelValueLength int `yaml:"max_label_value_length"`
	// IngestionRate is the samples, histograms and exemplars per second a
	// tenant may write to the metrics store; more gets 429. 0: no limit (as
	// Prometheus; Mimir's default is 10000).
	IngestionRate float64 `yaml:"ingestion_rate"`
	// IngestionBurstSize is how many samples a tenant may write at once above
	// ingestion_rate.
	IngestionBurstSize int `yaml:"ingestion_burst_size"`
	// MaxActiveSeries caps the series in a tenant's in-memory head; samples of
	// new series beyond it get 429. 0: no limit (as Prometheus; Mimir's default
	// is 150000).
	MaxActiveSeries int `yaml:"max_active_series"`
	// MaxConcurrentQueries caps a tenant's PromQL queries running at once (more
	// wait, within the query timeout), under metrics.query_max_concurrent. 0: no
	// limit of its own.
	MaxConcurrentQueries int `yaml:"max_concurrent_queries"`
	// QueryTimeout bounds a tenant's metrics queries. 0: metrics.query_timeout.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxSpansPerTrace caps the spans one trace of the tenant may hold; more
	// are refused as partial success with Tempo's TRACE_TOO_LARGE reason.
	// 0: traces.max_spans_per_trace.
	MaxSpansPerTrace int `yaml:"max_spans_per_trace"`
	// MaxProfileSamples refuses the tenant's profiles holding more samples
	// with 400, in Pyroscope's words (max_profile_stacktrace_samples). 0:
	// limits.max_profile_samples.
	MaxProfileSamples int `yaml:"max_profile_samples"`
}

func (t TenantLimits) validate() error {
	switch {
	case t.MaxLabelNamesPerSeries < 0, t.MaxLabelNameLength < 0, t.MaxLabelValueLength < 0,
		t.MaxActiveSeries < 0, t.MaxConcurrentQueries < 0, t.QueryTimeout < 0, t.IngestionRate < 0,
		t.MaxSpansPerTrace < 0, t.MaxProfileSamples < 0:
		return errors.New("limits must not be negative (but -1 in an override)")
	case t.IngestionRate > 0 && t.IngestionBurstSize < 1:
		return errors.New("ingestion_burst_size: must be positive when ingestion_rate is set")
	}
	return nil
}

// ForTenant returns the limits of tenant: limits.tenant with the tenant's
// overrides, -1 meaning no limit (0; for the spans and samples limits, the
// store-wide one).
func (l Limits) ForTenant(tenant string) TenantLimits {
	out := l.Tenant
	o, ok := l.Tenants[tenant]
	if !ok {
		return out
	}
	pick := func(dst *int, v int) {
		switch {
		case v < 0:
			*dst = 0
		case v > 0:
			*dst = v
		}
	}
	pick(&out.MaxLabelNamesPerSeries, o.MaxLabelNamesPerSeries)
	pick(&out.MaxLabelNameLength, o.MaxLabelNameLength)
	pick(&out.MaxLabelValueLength, o.MaxLabelValueLength)
	pick(&out.IngestionBurstSize, o.IngestionBurstSize)
	pick(&out.MaxActiveSeries, o.MaxActiveSeries)
	pick(&out.MaxConcurrentQueries, o.MaxConcurrentQueries)
	pick(&out.MaxSpansPerTrace, o.MaxSpansPerTrace)
	pick(&out.MaxProfileSamples, o.MaxProfileSamples)
	switch {
	case o.IngestionRate < 0:
		out.IngestionRate = 0
	case o.IngestionRate > 0:
		out.IngestionRate = o.IngestionRate
	}
	switch {
	case o.QueryTimeout < 0:
		out.QueryTimeout = 0
	case o.QueryTimeout > 0:
		out.QueryTimeout = o.QueryTimeout
	}
	return out
}

// ProfileSamples is the most samples a profile of tenant may hold (0: no limit).
func (l Limits) ProfileSamples(tenant string) int {
	if n := l.ForTenant(tenant).MaxProfileSamples; n > 0 {
		return n
	}
	return l.MaxProfileSamples
}

// Default returns the embedded defaults: every port of DESIGN.md, data in ./data.
func Default() Config {
	c := Config{
		DataDir:  "data",
		LogLevel: "info",
		Listen: Listen{
			OTLPGRPC:        ":4317",
			OTLPHTTP:        ":4318",
			Prometheus:      ":9090",
			PyroscopeIngest: ":9999",
			Pyroscope:       ":4040",
			Tempo:           ":3200",
			Loki:            ":3100",
			Faro:            ":12347",
			UI:              ":3000",
			Admin:           ":12345",
			Health:          ":13133",
		},
		Metrics: Metrics{
			Retention:          15 * 24 * time.Hour,
			OutOfOrderWindow:   10 * time.Minute,
			MaxExemplars:       100_000,
			QueryTimeout:       2 * time.Minute,
			QueryMaxSamples:    50_000_000,
			QueryMaxConcurrent: 20,
			LookbackDelta:      5 * time.Minute,

			QueryMaxMemoryBytes: 1 << 30,
			QueryMemoryBytes:    4 << 30,

			ResultsCacheMaxBytes:  256 << 20,
			ResultsCacheFreshness: 5 * time.Minute,

			BackgroundReplayMinWALBytes: 32 << 20,
			Head:                        HeadVispyr,

			LongTerm: LongTerm{Enabled: false, After: 24 * time.Hour},
		},
		Limits: Limits{
			MaxRequestBytes:     64 << 20,
			MaxSeriesPerRequest: 100_000,
			MaxInflightBytes:    1 << 30,

			MaxConnectionsPerClient: 1000,
			MaxProfileSamples:       16000,
			MaxTenants:              100,
			Tenant: TenantLimits{
				MaxLabelNamesPerSeries: 30,
				MaxLabelNameLength:     1024,
				MaxLabelValueLength:    2048,
				IngestionBurstSize:     200000,
			},
		},
	}
	c.Traces.Defaults()
	c.Profiles.Defaults()
	c.Logs.Defaults()
	c.Faro = faro.Defaults()
	c.Generator.Defaults()
	c.Prometheus.Defaults()
	return c
}

// LoadFile applies the YAML file at path over c. Unknown fields are errors, so a
// typo does not silently fall back to a default.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	// An empty file (io.EOF) means "no overrides".
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	return nil
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	for name, addr := range c.Listen.byName() {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("listen.%s: %q is not host:port: %w", name, addr, err)
		}
	}
	m := c.Metrics
	switch {
	case m.Retention <= 0:
		return errors.New("metrics.retention: must be positive")
	case m.RetentionSize < 0:
		return errors.New("metrics.retention_size_bytes: must not be negative")
	case m.OutOfOrderWindow < 0:
		return errors.New("metrics.out_of_order_window: must not be negative")
	case m.QueryTimeout <= 0:
		return errors.New("metrics.query_timeout: must be positive")
	case m.QueryMaxSamples <= 0:
		return errors.New("metrics.query_max_samples: must be positive")
	case m.QueryMaxConcurrent <= 0:
		return errors.New("metrics.query_max_concurrent: must be positive")
	case m.QueryMaxMemoryBytes <= 0:
		return errors.New("metrics.query_max_memory_bytes: must be positive")
	case m.QueryMemoryBytes < m.QueryMaxMemoryBytes:
		return errors.New("metrics.query_memory_bytes: must be at least metrics.query_max_memory_bytes")
	case m.LookbackDelta <= 0:
		return errors.New("metrics.lookback_delta: must be positive")
	case m.ResultsCacheMaxBytes < 0:
		return errors.New("metrics.results_cache_max_bytes: must not be negative")
	case m.ResultsCacheFreshness < 0:
		return errors.New("metrics.results_cache_freshness: must not be negative")
	case m.BackgroundReplayMinWALBytes < 0:
		return errors.New("metrics.background_replay_min_wal_bytes: must not be negative")
	case m.LongTerm.Enabled && m.LongTerm.After <= 0:
		return errors.New("metrics.longterm.after: must be positive")
	case m.Head != HeadPrometheus && m.Head != HeadVispyr:
		return fmt.Errorf("metrics.head: %q is neither %q nor %q", m.Head, HeadPrometheus, HeadVispyr)
	}
	l := c.Limits
	switch {
	case l.MaxRequestBytes <= 0:
		return errors.New("limits.max_request_bytes: must be positive")
	case l.MaxSeriesPerRequest <= 0:
		return errors.New("limits.max_series_per_request: must be positive")
	case l.MaxInflightBytes < l.MaxRequestBytes:
		return errors.New("limits.max_inflight_bytes: must be at least limits.max_request_bytes")
	case l.MaxConnectionsPerClient < 0:
		return errors.New("limits.max_connections_per_client: must not be negative")
	case l.MaxConcurrentAppends < 0:
		return errors.New("limits.max_concurrent_appends: must not be negative")
	case l.MaxMemoryBytes < 0:
		return errors.New("limits.max_memory_bytes: must not be negative")
	case l.MaxProfileSamples < 0:
		return errors.New("limits.max_profile_samples: must not be negative")
	case l.MaxTenants < 0:
		return errors.New("limits.max_tenants: must not be negative")
	case l.DiskReserveBytes < 0:
		return errors.New("limits.disk_reserve_bytes: must not be negative")
	}
	if err := l.Tenant.validate(); err != nil {
		return fmt.Errorf("limits.tenant: %w", err)
	}
	for id := range l.Tenants {
		if id == "" {
			return errors.New("limits.tenants: a tenant needs a name")
		}
		if err := l.ForTenant(id).validate(); err != nil {
			return fmt.Errorf("limits.tenants.%s: %w", id, err)
		}
	}
	if u := c.UI.ExternalURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("ui.external_url: %q is not an http(s) URL such as https://vispyr.example.com/", u)
		}
	}
	if err := c.Traces.Validate(); err != nil {
		return fmt.Errorf("traces: %w", err)
	}
	if err := c.Logs.Validate(); err != nil {
		return err
	}
	if err := c.Faro.Validate(); err != nil {
		return fmt.Errorf("faro.%w", err)
	}
	if err := c.Profiles.Validate(); err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	if err := c.Generator.Validate(); err != nil {
		return fmt.Errorf("generator: %w", err)
	}
	if err := c.Forward.Validate(); err != nil {
		return fmt.Errorf("forward.%w", err)
	}
	if err := auth.ValidateTLS(c.TLS); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := c.ACME.Validate(); err != nil {
		return fmt.Errorf("acme.%w", err)
	}
	if c.ACME.Enabled() && c.TLS.TLSCertPath != "" {
		return errors.New("acme.domains: tls.cert_file is set too: the certificate comes from one or the other")
	}
	if err := c.Auth.Validate(); err != nil {
		return fmt.Errorf("auth.%w", err)
	}
	if err := c.Prometheus.Validate(); err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	return nil
}

func (l Listen) byName() map[string]string {
	return map[string]string{
		"otlp_grpc": l.OTLPGRPC, "otlp_http": l.OTLPHTTP, "prometheus": l.Prometheus,
		"pyroscope_ingest": l.PyroscopeIngest, "pyroscope": l.Pyroscope, "tempo": l.Tempo,
		"loki": l.Loki, "faro": l.Faro,
		"ui": l.UI, "admin": l.Admin, "health": l.Health,
	}
}
