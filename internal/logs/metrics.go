package logs

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Option configures Open beyond the `logs:` section.
type Option func(*options)

type options struct {
	reg prometheus.Registerer
}

// WithRegisterer registers the store's metrics (and its WAL's) with reg.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// metrics count what the store accepts and refuses, named like the other
// stores' (vispyr_traces_*, vispyr_profiles_*) for the self-monitoring page.
type metrics struct {
	lines    prometheus.Counter
	refused  prometheus.Counter
	overload prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Store) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		lines: f.NewCounter(prometheus.CounterOpts{Name: "vispyr_logs_ingested_lines_total",
			Help: "Log lines made durable by the log store."}),
		refused: f.NewCounter(prometheus.CounterOpts{Name: "vispyr_logs_refused_lines_total",
			Help: "Log lines refused by the log store's limits and validation."}),
		overload: f.NewCounter(prometheus.CounterOpts{Name: "vispyr_logs_overloaded_total",
			Help: "Pushes refused because the head was over its memory budget."}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "vispyr_logs_head_bytes", Help: "Line bytes not yet in blocks."},
		func() float64 { return float64(s.headBytes.Load()) })
	return m
}
