package prommgr

import (
	"net/http"
	"net/url"

	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"
)

// The Prometheus API's retrievers (web/api/v1), answered by the managers.

func (m *Manager) ScrapePools() []string                       { return m.scrape.ScrapePools() }
func (m *Manager) TargetsActive() map[string][]*scrape.Target  { return m.scrape.TargetsActive() }
func (m *Manager) TargetsDropped() map[string][]*scrape.Target { return m.scrape.TargetsDropped() }
func (m *Manager) TargetsDroppedCounts() map[string]int        { return m.scrape.TargetsDroppedCounts() }
func (m *Manager) ScrapePoolConfig(pool string) (*promconfig.ScrapeConfig, error) {
	return m.scrape.ScrapePoolConfig(pool)
}
func (m *Manager) Alertmanagers() []*url.URL            { return m.notifier.Alertmanagers() }
func (m *Manager) DroppedAlertmanagers() []*url.URL     { return m.notifier.DroppedAlertmanagers() }
func (m *Manager) RuleGroups() []*rules.Group           { return m.rules.RuleGroups() }
func (m *Manager) AlertingRules() []*rules.AlertingRule { return m.rules.AlertingRules() }

// Config is the Prometheus configuration in force (for /api/v1/status/config).
func (m *Manager) Config() promconfig.Config {
	m.cfgMu.RLock()
	defer m.cfgMu.RUnlock()
	if m.cfg == nil {
		return promconfig.DefaultConfig
	}
	return *m.cfg
}

// GlobalURLOptions give the API what it needs to turn a loopback target's URL
// into one reachable from the user's browser (the external URL's host).
func (m *Manager) GlobalURLOptions() apiv1.GlobalURLOptions {
	listen := m.opts.PrometheusAddr
	if listen == "" {
		listen = ":9090"
	}
	return apiv1.GlobalURLOptions{ListenAddress: listen, Host: m.externalURL.Host, Scheme: m.externalURL.Scheme}
}

// ReloadHandler answers POST (and PUT) /-/reload as Prometheus's lifecycle
// API does: 200 once the new configuration is in force, 500 with the reason
// (the bad file and line) when it was refused and the old one kept.
func (m *Manager) ReloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "Only POST or PUT requests allowed", http.StatusMethodNotAllowed)
			return
		}
		if err := m.Reload(); err != nil {
			http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
			return
		}
	})
}
