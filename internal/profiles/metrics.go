package profiles

import "github.com/prometheus/client_golang/prometheus"

type storeMetrics struct {
	profiles, samples, rejected  prometheus.Counter
	blocksWritten, blocksDeleted prometheus.Counter
	diskBytes, blocks            prometheus.Gauge
	headSamples, headSeries      prometheus.GaugeFunc
}

func newStoreMetrics(reg prometheus.Registerer, head func() (samples, series int)) *storeMetrics {
	m := &storeMetrics{
		profiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_profiles_ingested_profiles_total", Help: "Profiles (one per series and sample type) stored.",
		}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_profiles_ingested_samples_total", Help: "Profile samples stored.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_profiles_rejected_overload_total", Help: "Ingest batches refused because the WAL was behind.",
		}),
		blocksWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_profiles_blocks_written_total", Help: "Profile blocks written from the head.",
		}),
		blocksDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_profiles_blocks_deleted_total", Help: "Profile blocks deleted by retention.",
		}),
		diskBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vispyr_profiles_disk_bytes", Help: "Bytes used by profile blocks and WAL.",
		}),
		blocks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vispyr_profiles_blocks", Help: "Profile blocks on disk.",
		}),
	}
	m.headSamples = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vispyr_profiles_head_samples", Help: "Samples held in memory by the profile head.",
	}, func() float64 { n, _ := head(); return float64(n) })
	m.headSeries = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vispyr_profiles_head_series", Help: "Series held in memory by the profile head.",
	}, func() float64 { _, n := head(); return float64(n) })
	if reg != nil {
		reg.MustRegister(m.profiles, m.samples, m.rejected, m.blocksWritten, m.blocksDeleted, m.diskBytes, m.blocks,
			m.headSamples, m.headSeries)
	}
	return m
}
