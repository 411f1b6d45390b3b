package otlp

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// Option configures a receiver.
type Option func(*options)

type options struct {
	reg  prometheus.Registerer
	logs pipeline.Logs
}

// WithLogs makes the receiver take OTLP logs (gRPC LogsService, POST /v1/logs)
// and hand them, converted with logpush.FromOTLP, to logs.
func WithLogs(logs pipeline.Logs) Option { return func(o *options) { o.logs = logs } }

func logsOption(opts []Option) pipeline.Logs {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o.logs
}

// WithRegisterer makes the receiver report its counters to reg.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// telemetry counts what the receivers accept and refuse, by signal and reason.
type telemetry struct {
	received *prometheus.CounterVec // signal
	rejected *prometheus.CounterVec // signal, reason
}

func newTelemetry(opts []Option) *telemetry {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.reg == nil {
		o.reg = prometheus.NewRegistry() // counted, but nowhere exposed
	}
	return &telemetry{
		received: promauto.With(o.reg).NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_otlp_received_items_total",
			Help: "Spans and metric data points acknowledged by the OTLP receivers.",
		}, []string{"signal"}),
		rejected: promauto.With(o.reg).NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_otlp_rejected_requests_total",
			Help: "OTLP requests refused, by signal and reason.",
		}, []string{"signal", "reason"}),
	}
}

func (t *telemetry) accept(signal string, items int) {
	t.received.WithLabelValues(signal).Add(float64(items))
}

func (t *telemetry) reject(signal, reason string) {
	t.rejected.WithLabelValues(signal, reason).Inc()
}

// reason names a consumer error for the rejected counter.
func reason(err error) string {
	switch {
	case pipeline.IsInvalid(err):
		return "invalid"
	case errors.Is(err, pipeline.ErrOverloaded):
		return "overloaded"
	case pipeline.IsDiskFull(err):
		return "disk_full"
	default:
		return "unavailable"
	}
}
