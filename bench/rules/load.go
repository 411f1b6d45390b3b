package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strconv"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

const rulesPerMetric = 10

// ruleYAML is one group per metric name, each with the ten rules a dashboard
// and alert set typically run over one metric: rates and aggregations by
// instance and shard, quantiles, topk, and two alerts that never fire.
func ruleYAML(metrics int, interval time.Duration) string {
	var b bytes.Buffer
	b.WriteString("groups:\n")
	for m := 0; m < metrics; m++ {
		n := metricName(m)
		fmt.Fprintf(&b, "  - name: g%d\n    interval: %s\n    rules:\n", m, interval)
		for i, expr := range []string{
			"sum by (instance) (rate(%s[5m]))", "sum by (shard) (rate(%s[5m]))", "sum(rate(%s[5m]))",
			"max by (instance) (%s)", "avg by (shard) (%s)", "count by (instance) (%s)",
			"quantile by (shard) (0.9, %s)", "topk(5, rate(%s[1m]))",
		} {
			fmt.Fprintf(&b, "      - record: %s:r%d\n        expr: %s\n", n, i, fmt.Sprintf(expr, n))
		}
		fmt.Fprintf(&b, "      - alert: %sRateHigh\n        expr: rate(%s[5m]) > 1e12\n", n, n)
		fmt.Fprintf(&b, "      - alert: %sNegative\n        expr: %s < -1\n        for: 1m\n", n, n)
	}
	return b.String()
}

func metricName(m int) string { return "bench_metric_" + strconv.Itoa(m) + "_total" }

// load is the same samples for every target: counters growing by random steps.
type load struct {
	metrics, perMetric, points int
	start                      time.Time
	step                       time.Duration
}

func newLoad(metrics, perMetric int, from, to time.Time, step time.Duration) *load {
	return &load{metrics: metrics, perMetric: perMetric, points: int(to.Sub(from)/step) + 1, start: from, step: step}
}

func (l *load) series() int { return l.metrics * l.perMetric }

// send writes every series, 1,000 series per request with all their points.
func (l *load) send(url string) error {
	rng := rand.New(rand.NewSource(1))
	client := &http.Client{Timeout: time.Minute}
	var ts []prompb.TimeSeries
	flush := func() error {
		if len(ts) == 0 {
			return nil
		}
		raw, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
		if err != nil {
			return err
		}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("remote write: %s: %s", resp.Status, body)
		}
		ts = ts[:0]
		return nil
	}
	for m := 0; m < l.metrics; m++ {
		for s := 0; s < l.perMetric; s++ {
			samples := make([]prompb.Sample, l.points)
			v := 0.0
			for p := range samples {
				v += float64(rng.Intn(100))
				samples[p] = prompb.Sample{Value: v, Timestamp: l.start.Add(time.Duration(p) * l.step).UnixMilli()}
			}
			ts = append(ts, prompb.TimeSeries{Labels: []prompb.Label{
				{Name: "__name__", Value: metricName(m)},
				{Name: "instance", Value: "host-" + strconv.Itoa(s%100)},
				{Name: "job", Value: "bench"},
				{Name: "shard", Value: strconv.Itoa(s / 100)},
			}, Samples: samples})
			if len(ts) == 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}
