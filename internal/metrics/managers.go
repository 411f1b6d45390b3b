package metrics

import (
	promconfig "github.com/prometheus/prometheus/config"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"
)

// Managers answer the API's questions about scrape targets, rules, alerts and
// Alertmanagers, and name the Prometheus configuration in force
// (internal/prommgr implements it).
type Managers interface {
	apiv1.ScrapePoolsRetriever
	apiv1.TargetRetriever
	apiv1.AlertmanagerRetriever
	apiv1.RulesRetriever
	Config() promconfig.Config
	// GlobalURLOptions turn a target's loopback URL into one users can open.
	GlobalURLOptions() apiv1.GlobalURLOptions
}

// managersOrEmpty answers with empty lists when nothing scrapes or evaluates.
func managersOrEmpty(m Managers) Managers {
	if m == nil {
		return noScrape{}
	}
	return m
}

func (noScrape) Config() promconfig.Config { return promconfig.DefaultConfig }

func (noScrape) GlobalURLOptions() apiv1.GlobalURLOptions {
	return apiv1.GlobalURLOptions{ListenAddress: ":9090", Host: "localhost:9090", Scheme: "http"}
}
