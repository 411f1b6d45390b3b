package prommgr

import (
	"fmt"
	"net"

	promconfig "github.com/prometheus/prometheus/config"
	"go.yaml.in/yaml/v2"
)

// SelfJob is the job name of the self-scrape.
const SelfJob = "vispyr"

// addSelfScrape appends the job that scrapes Vispyr's own admin /metrics,
// unless it is off, there is no admin port, or the user's configuration
// already has a job of that name (theirs wins).
func (m *Manager) addSelfScrape(cfg *promconfig.Config) error {
	ss := m.opts.Config.SelfScrape
	if !ss.Enabled || m.opts.AdminAddr == "" {
		return nil
	}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == SelfJob {
			return nil
		}
	}
	target, err := selfTarget(m.opts.AdminAddr)
	if err != nil {
		return err
	}
	// Through YAML, so Prometheus's own defaults for a scrape job apply.
	src := fmt.Sprintf("job_name: %s\nscrape_interval: %s\nstatic_configs:\n  - targets: [%q]\n",
		SelfJob, ss.Interval, target)
	sc := &promconfig.ScrapeConfig{}
	if err := yaml.UnmarshalStrict([]byte(src), sc); err != nil {
		return fmt.Errorf("build self-scrape job: %w", err)
	}
	if err := sc.Validate(cfg.GlobalConfig); err != nil {
		return fmt.Errorf("build self-scrape job: %w", err)
	}
	cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, sc)
	return nil
}

// selfTarget turns a listen address into one to connect to: a wildcard host
// becomes the loopback.
func selfTarget(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("self-scrape target %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
