package wal

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one WAL's self-metrics, labelled wal="<Options.Name>".
type metrics struct {
	fsyncs           prometheus.Counter
	writtenBytes     prometheus.Counter
	fsyncDuration    prometheus.Observer
	writeFailures    prometheus.Counter
	corruptions      prometheus.Counter
	preallocFailures prometheus.Counter
	bytes            prometheus.Gauge
}

func newMetrics(name string, reg prometheus.Registerer) *metrics {
	l := prometheus.Labels{"wal": name}
	return &metrics{
		fsyncs: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_wal_fsyncs_total", Help: "WAL fsyncs (one per group commit of concurrent appends; several may run at once).", ConstLabels: l,
		})),
		writtenBytes: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_wal_written_bytes_total", Help: "Bytes made durable in the WAL.", ConstLabels: l,
		})),
		fsyncDuration: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vispyr_wal_fsync_duration_seconds", Help: "Time to write and fsync one group commit.", ConstLabels: l,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		})),
		writeFailures: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_wal_write_failures_total", Help: "Group commits that failed (for example on a full disk); their appends were refused.", ConstLabels: l,
		})),
		corruptions: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "vispyr_wal_corruptions_total",
			Help:        "Damaged records found in the WAL (torn by a crash or corrupt); the rest of their segment was cut off.",
			ConstLabels: l,
		})),
		preallocFailures: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_wal_preallocation_failures_total", Help: "Failed attempts to preallocate the next segment (for example on a full disk); segments grew by appends meanwhile.", ConstLabels: l,
		})),
		bytes: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vispyr_wal_bytes", Help: "Bytes the WAL's segments hold on disk, preallocated ones included.", ConstLabels: l,
		})),
	}
}

// register registers c, or returns the collector already registered under
// the same name and labels: a WAL reopened in the same process keeps its
// counters.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}
