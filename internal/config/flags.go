package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vispyr/vispyr/internal/forward"
)

// EnvPrefix starts the environment variable of every flag: --metrics.retention is
// VISPYR_METRICS_RETENTION.
const EnvPrefix = "VISPYR_"

// bind registers one flag per configurable field, each writing into c.
func bind(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for all embedded storage")
	fs.StringVar(&c.LogLevel, "log.level", c.LogLevel, "debug, info, warn or error")

	l := &c.Listen
	fs.StringVar(&l.OTLPGRPC, "otlp.grpc-address", l.OTLPGRPC, "OTLP gRPC listen address (empty: off)")
	fs.StringVar(&l.OTLPHTTP, "otlp.http-address", l.OTLPHTTP, "OTLP HTTP listen address (empty: off)")
	fs.StringVar(&l.Prometheus, "metrics.listen-address", l.Prometheus, "Prometheus API and remote-write listen address")
	fs.StringVar(&l.PyroscopeIngest, "pyroscope.ingest-address", l.PyroscopeIngest, "Pyroscope ingest-only listen address")
	fs.StringVar(&l.Pyroscope, "pyroscope.listen-address", l.Pyroscope, "Pyroscope query and ingest listen address")
	fs.StringVar(&l.Tempo, "tempo.listen-address", l.Tempo, "Tempo query API listen address")
	fs.StringVar(&l.Loki, "loki.listen-address", l.Loki, "Loki push and query API listen address")
	fs.StringVar(&l.Faro, "faro.listen-address", l.Faro, "Faro browser receiver listen address (/collect)")
	fs.StringVar(&l.UI, "ui.listen-address", l.UI, "built-in UI listen address")
	fs.StringVar(&l.Admin, "admin.listen-address", l.Admin, "admin listen address: /metrics, /-/ready, /debug/pprof")
	fs.StringVar(&l.Health, "health.listen-address", l.Health, "health-check listen address (/health/status)")

	m := &c.Metrics
	fs.DurationVar(&m.Retention, "metrics.retention", m.Retention, "how long samples are kept")
	fs.Int64Var(&m.RetentionSize, "metrics.retention-size-bytes", m.RetentionSize, "largest TSDB size before the oldest blocks go (0: no limit)")
	fs.DurationVar(&m.OutOfOrderWindow, "metrics.out-of-order-window", m.OutOfOrderWindow, "how far back out-of-order samples are accepted")
	fs.Int64Var(&m.MaxExemplars, "metrics.max-exemplars", m.MaxExemplars, "exemplars kept in memory")
	fs.DurationVar(&m.QueryTimeout, "metrics.query-timeout", m.QueryTimeout, "longest a PromQL query may run")
	fs.IntVar(&m.QueryMaxSamples, "metrics.query-max-samples", m.QueryMaxSamples, "most samples one PromQL query may load")
	fs.IntVar(&m.QueryMaxConcurrent, "metrics.query-max-concurrent", m.QueryMaxConcurrent, "PromQL queries run at once")
	fs.Int64Var(&m.QueryMaxMemoryBytes, "metrics.query-max-memory-bytes", m.QueryMaxMemoryBytes, "most memory one PromQL query may hold, estimated before it runs")
	fs.Int64Var(&m.QueryMemoryBytes, "metrics.query-memory-bytes", m.QueryMemoryBytes, "most memory all running PromQL queries may hold together")
	fs.DurationVar(&m.LookbackDelta, "metrics.lookback-delta", m.LookbackDelta, "PromQL lookback delta")
	fs.Int64Var(&m.ResultsCacheMaxBytes, "metrics.results-cache-max-bytes", m.ResultsCacheMaxBytes, "memory for cached range query results (0: no cache)")
	fs.BoolVar(&m.LongTerm.Enabled, "metrics.longterm.enabled", m.LongTerm.Enabled, "rewrite old TSDB blocks into the long-term tier (well under half the disk)")
	fs.DurationVar(&m.LongTerm.After, "metrics.longterm.after", m.LongTerm.After, "how old a day of samples must be before it moves to the long-term tier")
	fs.BoolVar(&m.LongTerm.Downsample, "metrics.longterm.downsample", m.LongTerm.Downsample, "keep 5m and 1h aggregates in long-term blocks for range queries with a step of at least 5 windows")
	fs.DurationVar(&m.ResultsCacheFreshness, "metrics.results-cache-freshness", m.ResultsCacheFreshness, "steps newer than this are never cached, so late samples show")
	fs.StringVar(&m.Head, "metrics.head", m.Head, "where float samples wait before blocks: vispyr (Vispyr's own head, histograms in Prometheus's beside it) or prometheus (Prometheus's TSDB head for all)")
	fs.Int64Var(&m.BackgroundReplayMinWALBytes, "metrics.background-replay-min-wal-bytes", m.BackgroundReplayMinWALBytes, "a head that would read this many bytes at start-up (head chunks, snapshot, the WAL past the snapshot) replays in the background while a fresh head takes writes (0: always before ready)")

	p := &c.Prometheus
	fs.StringVar(&p.ConfigFile, "prometheus.config.file", p.ConfigFile, "Prometheus configuration file (prometheus.yml: global, scrape_configs, rule_files, alerting)")
	fs.StringVar(&p.ExternalURL, "prometheus.external-url", p.ExternalURL, "URL users reach the UI at, for alert links (empty: ui.external_url, else http://<hostname>:<UI port>)")
	fs.BoolVar(&p.SelfScrape.Enabled, "prometheus.self-scrape", p.SelfScrape.Enabled, "scrape Vispyr's own /metrics into its store as job=\"vispyr\"")
	fs.DurationVar(&p.SelfScrape.Interval, "prometheus.self-scrape-interval", p.SelfScrape.Interval, "self-scrape interval")
	fs.BoolVar(&p.DefaultRules.Enabled, "prometheus.default-rules", p.DefaultRules.Enabled, "evaluate the shipped service (span metrics) and host (node_exporter) alert rules")
	fs.DurationVar(&p.DefaultRules.Interval, "prometheus.default-rules.interval", p.DefaultRules.Interval, "evaluation interval of the shipped rules")
	fs.DurationVar(&p.DefaultRules.For, "prometheus.default-rules.for", p.DefaultRules.For, "how long a shipped alert's condition must hold before it fires")
	fs.DurationVar(&p.DefaultRules.RateWindow, "prometheus.default-rules.rate-window", p.DefaultRules.RateWindow, "rate() window of the shipped alerts")
	fs.Float64Var(&p.DefaultRules.ErrorRatio, "prometheus.default-rules.error-ratio", p.DefaultRules.ErrorRatio, "error ratio (0..1) of a service's server spans above which it alerts")
	fs.DurationVar(&p.DefaultRules.P99Latency, "prometheus.default-rules.p99-latency", p.DefaultRules.P99Latency, "p99 server-span latency above which a service alerts")

	lim := &c.Limits
	fs.Int64Var(&lim.MaxRequestBytes, "limits.max-request-bytes", lim.MaxRequestBytes, "largest decompressed request body")
	fs.IntVar(&lim.MaxSeriesPerRequest, "limits.max-series-per-request", lim.MaxSeriesPerRequest, "most series in one write request")
	fs.Int64Var(&lim.MaxInflightBytes, "limits.max-inflight-bytes", lim.MaxInflightBytes, "most request bytes being ingested at once before 429")
	fs.IntVar(&lim.MaxConnectionsPerClient, "limits.max-connections-per-client", lim.MaxConnectionsPerClient, "most connections one client IP holds open per port (0: no limit)")
	fs.Int64Var(&lim.MaxMemoryBytes, "limits.max-memory-bytes", lim.MaxMemoryBytes, "memory ceiling of the process (0: 70% of the machine's or cgroup's memory)")
	fs.Int64Var(&lim.DiskReserveBytes, "limits.disk-reserve-bytes", lim.DiskReserveBytes, "free space kept on the data dir's filesystem: below it writes get 503 and readiness turns false (0: 5% of the filesystem, 64 MiB..1 GiB)")
	fs.IntVar(&lim.MaxTenants, "limits.max-tenants", lim.MaxTenants, "most tenants the metrics store keeps before 429 (0: no limit)")
	fs.IntVar(&lim.MaxProfileSamples, "limits.max-profile-samples", lim.MaxProfileSamples, "most samples in one profile before 400 (0: no limit)")

	fw := &c.Forward
	fs.Var(destinationFlag{&fw.Metrics}, "forward.metrics.url", "remote-write URL to forward metrics to (more destinations: forward.metrics in YAML)")
	fs.Var(destinationFlag{&fw.Traces}, "forward.traces.url", "OTLP URL to forward traces to: http://host:4318 or grpc://host:4317")
	fs.Var(destinationFlag{&fw.Profiles}, "forward.profiles.url", "Pyroscope URL to forward profiles to")
	fs.Var(destinationFlag{&fw.Logs}, "forward.logs.url", "Loki URL to forward log lines to (http://loki:3100)")

	bindTLS(fs, &c.TLS)
}

// destinationFlag sets the URL of a signal's first forward destination,
// adding it when the YAML has none.
type destinationFlag struct{ dests *[]forward.Destination }

func (f destinationFlag) String() string {
	if f.dests == nil || len(*f.dests) == 0 {
		return ""
	}
	return (*f.dests)[0].URL
}

func (f destinationFlag) Set(v string) error {
	if len(*f.dests) == 0 {
		*f.dests = append(*f.dests, forward.Destination{})
	}
	(*f.dests)[0].URL = v
	return nil
}

// Load builds the configuration for args (without the program and command name):
// defaults, then the --config YAML file, then VISPYR_* environment variables, then
// flags, then validation.
func Load(name string, args []string, getenv func(string) string) (Config, error) {
	// First pass: learn --config and which flags were given, on a scratch config.
	scratch := Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	configFile := fs.String("config", "", "YAML configuration file")
	bind(fs, &scratch)
	bindAll(fs, &scratch)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	cfg := Default()
	if *configFile != "" {
		if err := cfg.LoadFile(*configFile); err != nil {
			return Config{}, err
		}
	}
	// Second pass: apply env and explicit flags over the file.
	final := flag.NewFlagSet(name, flag.ContinueOnError)
	bind(final, &cfg)
	bindAll(final, &cfg)
	var err error
	final.VisitAll(func(f *flag.Flag) {
		if v := getenv(EnvName(f.Name)); v != "" && err == nil {
			if e := final.Set(f.Name, v); e != nil {
				err = envError(f, v)
			}
		}
	})
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" && err == nil {
			err = final.Set(f.Name, f.Value.String())
		}
	})
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

// EnvName is the environment variable that sets the flag called flagName.
func EnvName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return EnvPrefix + strings.ToUpper(r.Replace(flagName))
}

// Usage prints every flag with its default, for `vispyr serve --help`.
func Usage(name string) { usage(os.Stdout, name) }

func usage(w io.Writer, name string) {
	c := Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.String("config", "", "YAML configuration file")
	bind(fs, &c)
	bindAll(fs, &c)
	fs.SetOutput(w)
	fs.PrintDefaults()
}
