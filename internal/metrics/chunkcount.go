package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The TSDB status API's chunkCount is, in Prometheus, its head's
// prometheus_tsdb_head_chunks gauge as its registry gathers it: the TSDB
// keeps no other count of its head's chunks, in order and out of order.
// Vispyr reads the same gauge of each tenant's TSDB (tsdbGauges keeps it,
// registered or not) and adds the chunks of the tenant's own head.
const headChunksMetric = "prometheus_tsdb_head_chunks"

// tsdbGauges passes a TSDB's metrics on to next (nil drops them, as for a
// tenant other than the default, which registers none) and keeps its
// gauges in a registry of the tenant's own.
type tsdbGauges struct {
	next   prometheus.Registerer
	gauges *prometheus.Registry
}

func newTSDBGauges(next prometheus.Registerer) *tsdbGauges {
	return &tsdbGauges{next: next, gauges: prometheus.NewRegistry()}
}

func (r *tsdbGauges) Register(c prometheus.Collector) error {
	if r.next != nil {
		if err := r.next.Register(c); err != nil {
			return err
		}
	}
	if _, ok := c.(prometheus.Gauge); ok {
		// Only the head's chunk gauge is read: one registered again (a
		// collector the TSDB makes anew) keeps the first.
		_ = r.gauges.Register(c)
	}
	return nil
}

func (r *tsdbGauges) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *tsdbGauges) Unregister(c prometheus.Collector) bool {
	ok := r.gauges.Unregister(c)
	if r.next != nil {
		ok = r.next.Unregister(c)
	}
	return ok
}

// headChunks is the tenant's chunkCount: its TSDB head's chunks, as
// Prometheus reports them, and its own head's, open and closed.
func (t *tenantDB) headChunks() (int64, error) {
	mfs, err := t.tsdbGauges.gauges.Gather()
	if err != nil {
		return 0, fmt.Errorf("tsdb head chunks: %w", err)
	}
	var n int64
	for _, mf := range mfs {
		if mf.GetName() == headChunksMetric && len(mf.GetMetric()) > 0 {
			n = int64(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	if t.own != nil {
		n += int64(t.own.head.NumChunks())
	}
	return n, nil
}

// headChunksGatherer is what Prometheus's TSDB status handler gathers the
// default tenant's chunkCount from: its headChunksMetric, counting both
// heads. The API's self_metrics lists it alone (Vispyr's own metrics are
// on /metrics).
func headChunksGatherer(t *tenantDB) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		n, err := t.headChunks()
		if err != nil {
			return nil, err
		}
		name, help, v := headChunksMetric, "Chunks in the metrics store's heads (the TSDB's and Vispyr's own).", float64(n)
		return []*dto.MetricFamily{{Name: &name, Help: &help, Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &v}}}}}, nil
	})
}
