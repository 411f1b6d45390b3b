package forward

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// selfMetrics are named after Prometheus's prometheus_remote_storage_* ones;
// an item is a sample (metrics), a span (traces) or a profile (profiles).
type selfMetrics struct {
	items, failed, retried *prometheus.CounterVec
	dropped                *prometheus.CounterVec
	bytes                  *prometheus.CounterVec
	duration               *prometheus.HistogramVec
	highestSent            *prometheus.GaugeVec
	shards                 *prometheus.GaugeVec
	queues                 *queueCollector
}

var destLabels = []string{"signal", "destination"}

func newSelfMetrics(reg prometheus.Registerer) *selfMetrics {
	m := &selfMetrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_forward_items_total",
			Help: "Items (samples, spans, profiles) delivered to the destination.",
		}, destLabels),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_forward_items_failed_total",
			Help: "Items in sends that failed (retried or dropped).",
		}, destLabels),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_forward_items_retried_total",
			Help: "Items sent again after a retryable failure.",
		}, destLabels),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_forward_items_dropped_total",
			Help: "Items dropped for good, by reason (the destination's status, or a corrupt queue record).",
		}, append(destLabels, "reason")),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_forward_sent_bytes_total",
			Help: "Request bytes sent, including retries.",
		}, destLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vispyr_forward_sent_batch_duration_seconds",
			Help:    "Duration of send calls to the destination.",
			Buckets: append(prometheus.DefBuckets, 25, 60),
		}, destLabels),
		highestSent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vispyr_forward_queue_highest_sent_timestamp_seconds",
			Help: "Newest sample timestamp delivered to the destination (metrics only).",
		}, destLabels),
		shards: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vispyr_forward_shards",
			Help: "Parallel senders of the destination.",
		}, destLabels),
		queues: &queueCollector{},
	}
	if reg != nil {
		reg.MustRegister(m.items, m.failed, m.retried, m.dropped, m.bytes, m.duration,
			m.highestSent, m.shards, m.queues)
	}
	return m
}

// dropFull returns a counter of items dropped because a queue of one of
// dests was full; the queues are found by the destinations' order.
func (m *selfMetrics) dropFull(signal string, dests []Destination) func(int) {
	return func(items int) {
		for _, d := range dests {
			m.dropped.WithLabelValues(signal, d.Name, "queue_full").Add(float64(items))
		}
	}
}

// queueCollector reports each destination's backlog and health as it is at
// the scrape, read from the queue itself: a gauge set a few times a second
// could still read 0 records just after a request was acknowledged, and
// whoever waits for a drained queue (a test, a bench, an operator before a
// restart) would stop waiting too soon.
type queueCollector struct {
	mu       sync.Mutex
	statuses []func() DestinationStatus
}

var (
	queueBytesDesc = prometheus.NewDesc("vispyr_forward_queue_bytes",
		"Bytes in the destination's durable queue not yet delivered.", destLabels, nil)
	queueRecordsDesc = prometheus.NewDesc("vispyr_forward_queue_records",
		"Records (accepted requests) in the destination's durable queue not yet delivered.", destLabels, nil)
	// healthy and lastSuccess carry the status page's health to the UI,
	// which reads every process (serve and scraped gateways) by PromQL.
	healthyDesc = prometheus.NewDesc("vispyr_forward_destination_healthy",
		"1 when the destination's last send succeeded (or none was needed) and its queue is not full, else 0.", destLabels, nil)
	lastSuccessDesc = prometheus.NewDesc("vispyr_forward_last_success_timestamp_seconds",
		"When the destination last accepted a batch (0: never since start).", destLabels, nil)
)

func (c *queueCollector) add(status func() DestinationStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statuses = append(c.statuses, status)
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueBytesDesc
	ch <- queueRecordsDesc
	ch <- healthyDesc
	ch <- lastSuccessDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	statuses := c.statuses
	c.mu.Unlock()
	for _, status := range statuses {
		s := status()
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s.Signal, s.Name)
		}
		gauge(queueBytesDesc, float64(s.QueueBytes))
		gauge(queueRecordsDesc, float64(s.QueueRecords))
		gauge(healthyDesc, boolFloat(s.Healthy))
		var last float64
		if !s.LastSuccess.IsZero() {
			last = float64(s.LastSuccess.UnixNano()) / 1e9
		}
		gauge(lastSuccessDesc, last)
	}
}
