package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/prometheus/prometheus/prompb"

	"github.com/vispyr/vispyr/bench/internal/rwload"
)

// The data: node_exporter-like series (100 per instance: ten names × ten
// devices, instances spread over eight jobs), and span-metrics latency
// histograms (classic buckets, Tempo's names) as the last twentieth.

var nodeNames = [10]string{
	"node_cpu_seconds_total", "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
	"node_disk_read_bytes_total", "node_disk_written_bytes_total", "node_context_switches_total",
	"node_memory_MemAvailable_bytes", "node_filesystem_avail_bytes", "node_load1", "node_hwmon_temp_celsius",
}

var jobs = [8]string{"node", "api", "db", "cache", "ingress", "batch", "search", "queue"}

// buckets are the histogram's le values; cdf the share of requests at or
// under each, so buckets are cumulative and histogram_quantile needs no fix.
var (
	buckets = [12]string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	cdf     = [12]float64{0.05, 0.12, 0.3, 0.5, 0.7, 0.85, 0.93, 0.97, 0.99, 0.995, 0.999, 1}
)

const spansPerService = 10

// dashboardShape is series s of n.
func dashboardShape(n int) rwload.Shape {
	node := n - n/20
	return rwload.Shape{
		Labels: func(s int) []prompb.Label {
			if s < node {
				return nodeLabels(s)
			}
			return spanLabels(s - node)
		},
		Next: func(s int, v float64, rng *rand.Rand) float64 {
			if s >= node {
				j := s - node
				group := j / len(buckets)
				return v + float64(int(cdf[j%len(buckets)]*float64(50+group%50)))
			}
			if (s%100)/10 >= 6 { // gauges
				return float64(rng.IntN(1_000_000)) / 100
			}
			return v + float64(rng.IntN(10_000))/100
		},
	}
}

func nodeLabels(s int) []prompb.Label {
	inst := s / 100
	return []prompb.Label{ // sorted by name
		{Name: "__name__", Value: nodeNames[(s%100)/10]},
		{Name: "device", Value: "dev" + strconv.Itoa(s%10)},
		{Name: "instance", Value: fmt.Sprintf("host-%04d:9100", inst)},
		{Name: "job", Value: jobs[inst%len(jobs)]},
	}
}

func spanLabels(j int) []prompb.Label {
	group := j / len(buckets)
	return []prompb.Label{
		{Name: "__name__", Value: "traces_spanmetrics_latency_bucket"},
		{Name: "job", Value: "tempo"},
		{Name: "le", Value: buckets[j%len(buckets)]},
		{Name: "service", Value: "svc-" + strconv.Itoa(group/spansPerService)},
		{Name: "span_name", Value: "span-" + strconv.Itoa(group%spansPerService)},
	}
}
