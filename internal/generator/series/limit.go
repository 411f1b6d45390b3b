package series

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SelfMetrics are the generator's own metrics, labelled by processor.
type SelfMetrics struct {
	DroppedSeries *prometheus.CounterVec
	ActiveSeries  *prometheus.GaugeVec
}

// NewSelfMetrics registers the generator's own metrics with reg.
func NewSelfMetrics(reg prometheus.Registerer) *SelfMetrics {
	m := &SelfMetrics{
		DroppedSeries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_generator_dropped_series_total",
			Help: "Span updates refused because they would have created a series beyond the processor's max_active_series.",
		}, []string{"processor"}),
		ActiveSeries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vispyr_generator_active_series",
			Help: "Series the processor currently keeps in memory and writes at every collection.",
		}, []string{"processor"}),
	}
	if reg != nil {
		reg.MustRegister(m.DroppedSeries, m.ActiveSeries)
	}
	return m
}

// logEvery bounds how often a limit that keeps being hit is logged.
const logEvery = time.Minute

// Limit caps the number of active series of one processor so that memory
// stays bounded whatever cardinality the spans carry. It is guarded by the
// processor's mutex.
type Limit struct {
	max       int
	active    int
	processor string
	dropped   prometheus.Counter
	gauge     prometheus.Gauge
	logger    *slog.Logger
	lastLog   int64 // unix ms
	unlogged  int
}

// NewLimit returns a limit of max series for processor.
func NewLimit(max int, processor string, m *SelfMetrics, logger *slog.Logger) *Limit {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Limit{
		max:       max,
		processor: processor,
		dropped:   m.DroppedSeries.WithLabelValues(processor),
		gauge:     m.ActiveSeries.WithLabelValues(processor),
		logger:    logger,
	}
}

// TryAdd reserves n series and reports whether they fit. A refusal is
// counted, and logged at most once a minute.
func (l *Limit) TryAdd(n int, nowMs int64) bool {
	if l.active+n <= l.max {
		l.active += n
		return true
	}
	l.dropped.Inc()
	l.unlogged++
	if nowMs-l.lastLog >= logEvery.Milliseconds() {
		l.logger.Warn("max active series reached, dropping new series",
			"processor", l.processor, "max_active_series", l.max, "dropped_since_last_log", l.unlogged)
		l.lastLog = nowMs
		l.unlogged = 0
	}
	return false
}

// Remove releases n series.
func (l *Limit) Remove(n int) { l.active -= n }

// Active returns the number of reserved series.
func (l *Limit) Active() int { return l.active }

// Report publishes the active series count.
func (l *Limit) Report() { l.gauge.Set(float64(l.active)) }
