// Package rwload builds a Prometheus remote-write (v1) workload before any
// target starts and sends it with concurrent senders, each owning a shard of
// the series so every series' samples arrive in order.
package rwload

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/vispyr/vispyr/internal/metrics/nodeshape"
)

// Load is a pre-encoded remote-write workload: every request body is built
// and snappy-compressed before any target starts, so that sending costs the
// load generator little more than a write to a socket.
type Load struct {
	Series, Batch, Senders, Rounds int
	Interval                       time.Duration
	Start                          time.Time // timestamp of round 0

	// Bodies[k] are sender k's requests, in the order they must be sent:
	// each series belongs to one sender, so its samples arrive in order.
	Bodies       [][][]byte
	Samples      int64
	EncodedBytes int64

	shape Shape
}

// Shape names series s and gives its next value after v.
type Shape struct {
	Labels func(s int) []prompb.Label // sorted by name, as remote write requires
	Next   func(s int, v float64, rng *rand.Rand) float64
}

// NodeShape is node_exporter-like: 200 names, 20 instances per 20,000 series,
// job "bench"; values as NewLoad says.
var NodeShape = Shape{Labels: seriesLabels, Next: nodeshape.Next}

// NewLoad builds series×rounds samples: series s gets one sample per
// round, timestamped start + round*interval. Values mix what node_exporter
// scrapes look like, a quarter each: integer counters growing by random
// steps (bytes, packets), float counters growing by random two-decimal steps
// (CPU seconds), gauges with random two-decimal values, and gauges that
// rarely change (memory totals, up).
func NewLoad(series, batch, senders, rounds int, interval time.Duration, start time.Time) (*Load, error) {
	return NewShaped(NodeShape, series, batch, senders, rounds, interval, start)
}

// NewShaped is NewLoad with series named and valued by shape.
func NewShaped(shape Shape, series, batch, senders, rounds int, interval time.Duration, start time.Time) (*Load, error) {
	l := &Load{Series: series, Batch: batch, Senders: senders, Rounds: rounds, Interval: interval, Start: start,
		Bodies: make([][][]byte, senders), shape: shape}
	labels := make([][]prompb.Label, series)
	for s := range labels {
		labels[s] = shape.Labels(s)
	}
	var wg sync.WaitGroup
	errs := make([]error, senders)
	var encoded atomic.Int64
	for k := 0; k < senders; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			bodies, n, err := l.encodeSender(k, labels)
			l.Bodies[k], errs[k] = bodies, err
			encoded.Add(n)
		}(k)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	l.Samples = int64(series) * int64(rounds)
	l.EncodedBytes = encoded.Load()
	return l, nil
}

// seriesLabels is nodeshape's series s, as remote write sends it.
func seriesLabels(s int) []prompb.Label {
	var b labels.ScratchBuilder
	var out []prompb.Label
	nodeshape.Labels(&b, s).Range(func(l labels.Label) {
		out = append(out, prompb.Label{Name: l.Name, Value: l.Value})
	})
	return out
}

// encodeSender encodes the requests of sender k, which owns the series
// s with s%senders == k.
func (l *Load) encodeSender(k int, labels [][]prompb.Label) ([][]byte, int64, error) {
	var own []int
	for s := k; s < l.Series; s += l.Senders {
		own = append(own, s)
	}
	values := make([]float64, len(own))
	rngs := make([]*rand.Rand, len(own))
	for i, s := range own {
		rngs[i] = rand.New(rand.NewPCG(uint64(s), 42))
	}
	var (
		bodies  [][]byte
		total   int64
		req     prompb.WriteRequest
		samples = make([]prompb.Sample, l.Batch)
		buf     []byte
	)
	flush := func() error {
		if len(req.Timeseries) == 0 {
			return nil
		}
		size := req.Size()
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		n, err := req.MarshalToSizedBuffer(buf[:size])
		if err != nil {
			return fmt.Errorf("marshal request: %w", err)
		}
		body := snappy.Encode(nil, buf[size-n:size])
		bodies = append(bodies, body)
		total += int64(len(body))
		req.Timeseries = req.Timeseries[:0]
		return nil
	}
	for r := 0; r < l.Rounds; r++ {
		ts := l.Start.Add(time.Duration(r) * l.Interval).UnixMilli()
		for i, s := range own {
			values[i] = l.shape.Next(s, values[i], rngs[i])
			j := len(req.Timeseries)
			samples[j] = prompb.Sample{Timestamp: ts, Value: values[i]}
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: labels[s], Samples: samples[j : j+1]})
			if len(req.Timeseries) == l.Batch {
				if err := flush(); err != nil {
					return nil, 0, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, 0, err
	}
	return bodies, total, nil
}

// RunResult is what one run of the load against one target measured.
type RunResult struct {
	Elapsed  time.Duration
	Requests int64
	Retries  int64 // 429/5xx answers retried, as Prometheus would
	Failures int64 // 4xx answers: samples the target refused
	FirstErr string
	Latency  []time.Duration
}

// Run sends every request to url with Senders concurrent senders and
// returns when all have been acknowledged or refused.
func (l *Load) Run(url string) *RunResult {
	tr := &http.Transport{MaxIdleConnsPerHost: l.Senders, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	defer tr.CloseIdleConnections()
	res := &RunResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for k := range l.Bodies {
		wg.Add(1)
		go func(bodies [][]byte) {
			defer wg.Done()
			lat := make([]time.Duration, 0, len(bodies))
			for _, body := range bodies {
				t0 := time.Now()
				status, msg := sendWithRetry(client, url, body, res)
				lat = append(lat, time.Since(t0))
				atomic.AddInt64(&res.Requests, 1)
				if status/100 != 2 {
					atomic.AddInt64(&res.Failures, 1)
					mu.Lock()
					if res.FirstErr == "" {
						res.FirstErr = fmt.Sprintf("status %d: %s", status, msg)
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			res.Latency = append(res.Latency, lat...)
			mu.Unlock()
		}(l.Bodies[k])
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res
}

// sendWithRetry posts body until it gets an answer that is not 429/5xx or
// a transport error, backing off like Prometheus's queue manager.
func sendWithRetry(client *http.Client, url string, body []byte, res *RunResult) (int, string) {
	backoff := 30 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := client.Do(req)
		status, msg := 0, ""
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			status, msg = resp.StatusCode, string(b)
			if status/100 == 2 || (status/100 == 4 && status != http.StatusTooManyRequests) {
				return status, msg
			}
		} else {
			msg = err.Error()
		}
		if attempt >= 50 {
			return status, "gave up after retries: " + msg
		}
		atomic.AddInt64(&res.Retries, 1)
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}
