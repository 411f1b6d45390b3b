package prommgr

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config is the `prometheus:` section of Vispyr's configuration: the part of a
// Prometheus server that is not storage or PromQL.
type Config struct {
	// ConfigFile is a Prometheus configuration file (prometheus.yml), read
	// unchanged: global, scrape_configs, rule_files, alerting. Empty: no scrape
	// jobs, rules or Alertmanagers beyond the self-scrape and default rules.
	ConfigFile string `yaml:"config_file"`
	// ExternalURL is where users reach Vispyr's UI; alert links (the
	// generatorURL Alertmanager shows) open its explorer there. Empty:
	// ui.external_url, or without one http://<hostname>:<UI port>.
	ExternalURL string `yaml:"external_url"`
	// SelfScrape scrapes Vispyr's own admin /metrics into its store, job="vispyr".
	SelfScrape SelfScrape `yaml:"self_scrape"`
	// DefaultRules are the shipped recording and alerting rules.
	DefaultRules DefaultRules `yaml:"default_rules"`
}

// SelfScrape configures the scrape of Vispyr's own /metrics.
type SelfScrape struct {
	Enabled  bool          `yaml:"enabled"`
	Interval time.Duration `yaml:"interval"`
}

// DefaultRules configures the shipped rules (see rules/vispyr.rules.yml.tmpl):
// RED alerts per service on the span metrics and host alerts on node_exporter data.
type DefaultRules struct {
	Enabled bool `yaml:"enabled"`
	// Interval is how often the shipped groups are evaluated.
	Interval time.Duration `yaml:"interval"`
	// For is how long a condition must hold before its alert fires.
	For time.Duration `yaml:"for"`
	// ErrorRatio is the share of a service's server spans in error (0..1) above
	// which VispyrServiceErrorRatioHigh fires.
	ErrorRatio float64 `yaml:"error_ratio"`
	// P99Latency is the p99 server-span latency above which
	// VispyrServiceLatencyP99High fires.
	P99Latency time.Duration `yaml:"p99_latency"`
	// RateWindow is the range of the rate() the service alerts take.
	RateWindow time.Duration `yaml:"rate_window"`
	// HostCPU, HostMemory and HostDisk are the used fractions (0..1) above
	// which the host alerts fire.
	HostCPU    float64 `yaml:"host_cpu"`
	HostMemory float64 `yaml:"host_memory"`
	HostDisk   float64 `yaml:"host_disk"`
}

// Defaults fills in the defaults: self-scrape on every 15s, default rules off.
func (c *Config) Defaults() {
	c.SelfScrape = SelfScrape{Enabled: true, Interval: 15 * time.Second}
	c.DefaultRules = DefaultRules{
		Interval: time.Minute, For: 5 * time.Minute, RateWindow: 5 * time.Minute,
		ErrorRatio: 0.05, P99Latency: time.Second,
		HostCPU: 0.9, HostMemory: 0.9, HostDisk: 0.9,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("external_url: %q is not an absolute URL", c.ExternalURL)
		}
	}
	if c.SelfScrape.Enabled && c.SelfScrape.Interval <= 0 {
		return errors.New("self_scrape.interval: must be positive")
	}
	r := c.DefaultRules
	if !r.Enabled {
		return nil
	}
	switch {
	case r.Interval <= 0:
		return errors.New("default_rules.interval: must be positive")
	case r.For < 0:
		return errors.New("default_rules.for: must not be negative")
	case r.RateWindow <= 0:
		return errors.New("default_rules.rate_window: must be positive")
	case r.ErrorRatio <= 0 || r.ErrorRatio >= 1:
		return errors.New("default_rules.error_ratio: must be between 0 and 1")
	case r.P99Latency <= 0:
		return errors.New("default_rules.p99_latency: must be positive")
	}
	for name, v := range map[string]float64{"host_cpu": r.HostCPU, "host_memory": r.HostMemory, "host_disk": r.HostDisk} {
		if v <= 0 || v >= 1 {
			return fmt.Errorf("default_rules.%s: must be between 0 and 1", name)
		}
	}
	return nil
}
