package promwrite

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/forward"
	"github.com/vispyr/vispyr/internal/metrics"
	"github.com/vispyr/vispyr/internal/testpeer"
)

// The load of bench/remotewrite: 20k series of 5 labels, requests of 2k
// samples (one per series), 4 senders (or 16: its -senders 16) each owning
// a share of the series so every series' samples arrive in order.
const (
	benchSeries  = 20000
	benchBatch   = 2000
	benchSenders = 4
)

// BenchmarkHandler compares this handler with Prometheus's stock handler
// behind Vispyr's former guard, each over a fresh TSDB, on the same
// pre-encoded requests. b.N is the number of requests; samples/s is the figure
// to compare.
func BenchmarkHandler(b *testing.B) {
	all := []string{"vispyr", "store", "ownhead", "stock", "gateway"}
	for _, c := range []struct {
		name     string
		v2, http bool
		senders  int
		impls    []string
	}{
		{name: "v1", impls: all}, {name: "v2", v2: true, impls: all}, {name: "v1-http", http: true, impls: all},
		{name: "v1-16senders", senders: 16, impls: []string{"gateway"}},
	} {
		for _, impl := range c.impls {
			b.Run(c.name+"/"+impl, func(b *testing.B) {
				benchHandler(b, impl, c.v2, c.http, cmp.Or(c.senders, benchSenders))
			})
		}
	}
}

// benchHandler runs impl: "vispyr" (this handler over a bare TSDB),
// "store" (over the metrics store as served: the default tenant's TSDB
// reached through the tenant dispatch, with the default tenant limits),
// "ownhead" (the store with metrics.head: vispyr),
// "stock" (Prometheus's handler) or "gateway" (over a forwarder, as vispyr
// gateway serves it, whose destination discards what it gets: the CPU is the
// forwarder's accept and send paths).
func benchHandler(b *testing.B, impl string, v2, overHTTP bool, senders int) {
	bodies := benchLoad(b.N, v2, senders)
	opts := Options{MaxRequestBytes: 64 << 20, MaxSeriesPerRequest: 100000}
	var h http.Handler
	switch impl {
	case "vispyr":
		h = newHandler(openDB(b, 0), opts, discard, prometheus.NewRegistry())
	case "store", "ownhead":
		cfg := config.Default()
		if impl == "ownhead" {
			cfg.Metrics.Head = config.HeadVispyr
		}
		store, err := metrics.Open(cfg.Metrics, cfg.Limits, b.TempDir(), discard, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = store.Close() })
		reg := prometheus.NewRegistry()
		h = NewHandler(store.RemoteWriteAppender(discard, reg), opts, discard, reg)
	case "gateway":
		h = gatewayHandler(b, opts)
	default:
		h = newStock(openDB(b, 0), opts)
	}
	contentType := ctV1
	if v2 {
		contentType = ctV2
	}
	send := func(w *nopWriter, body []byte) int {
		req, _ := http.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Content-Encoding", "snappy")
		w.code = 0
		h.ServeHTTP(w, req)
		return w.code
	}
	if overHTTP {
		srv := httptest.NewServer(h)
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, DisableCompression: true}}
		send = func(_ *nopWriter, body []byte) int {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/write", bytes.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			req.Header.Set("Content-Encoding", "snappy")
			resp, err := client.Do(req)
			if err != nil {
				return 0
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			return resp.StatusCode
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testpeer.CPUTime()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for k := range bodies {
		wg.Add(1)
		go func(bodies [][]byte) {
			defer wg.Done()
			w := &nopWriter{h: http.Header{}}
			for _, body := range bodies {
				if code := send(w, body); code != http.StatusNoContent {
					errs <- fmt.Errorf("status %d", code)
					return
				}
			}
		}(bodies[k])
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := testpeer.CPUTime() - cpu0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*benchBatch)/elapsed.Seconds(), "samples/s")
	// Other processes share the machine: samples per CPU-second of this
	// process is the steadier figure.
	b.ReportMetric(float64(b.N*benchBatch)/cpu.Seconds(), "samples/cpu-s")
}

// gatewayHandler is the handler over a forwarder with one remote-write
// destination, running until the benchmark ends.
func gatewayHandler(b *testing.B, opts Options) http.Handler {
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(dest.Close)
	cfg := forward.Config{Metrics: []forward.Destination{{Name: "dest", URL: dest.URL}}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	fwd, err := forward.New(cfg, b.TempDir(), forward.OpenWALQueue(discard, reg), discard, reg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = fwd.Run(ctx)
	}()
	b.Cleanup(func() {
		cancel()
		<-done
		_ = fwd.Close()
	})
	return NewHandler(metrics.NewRemoteWriteAppender(fwd.Metrics, discard, reg), opts, discard, reg)
}

type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *nopWriter) WriteHeader(code int) { w.code = code }

// benchLoad encodes n requests (v1 or v2), dealt to the senders in turn.
func benchLoad(n int, v2 bool, senders int) [][][]byte {
	out := make([][][]byte, senders)
	ls := make([][]prompb.Label, benchSeries)
	for s := range ls {
		ls[s] = []prompb.Label{
			{Name: "__name__", Value: "bench_metric_" + strconv.Itoa(s%200)},
			{Name: "instance", Value: fmt.Sprintf("host-%02d:9100", s/1000)},
			{Name: "job", Value: "bench"},
			{Name: "mode", Value: [...]string{"idle", "user", "system", "iowait"}[s%4]},
			{Name: "series", Value: strconv.Itoa(s)},
		}
	}
	start := time.Now().Add(-2 * time.Hour).UnixMilli()
	per := (n + senders - 1) / senders
	for k := 0; k < senders && k < n; k++ {
		rng := rand.New(rand.NewPCG(uint64(k), 42))
		var own []int
		for s := k; s < benchSeries; s += senders {
			own = append(own, s)
		}
		var req prompb.WriteRequest
		smp := make([]prompb.Sample, benchBatch)
		for r, i := 0, 0; len(out[k]) < per && len(out[k])+k*per < n; r++ {
			for _, s := range own {
				smp[i] = prompb.Sample{Timestamp: start + int64(r)*15000, Value: float64(rng.IntN(100000)) / 100}
				req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls[s], Samples: smp[i : i+1]})
				if i++; i == benchBatch {
					out[k] = append(out[k], encodeBench(&req, v2))
					req.Timeseries, i = req.Timeseries[:0], 0
					if len(out[k]) == per || len(out[k])+k*per >= n {
						break
					}
				}
			}
		}
	}
	return out
}

func encodeBench(req *prompb.WriteRequest, v2 bool) []byte {
	var m interface{ Marshal() ([]byte, error) } = req
	if v2 {
		syms := writev2.NewSymbolTable()
		r2 := &writev2.Request{}
		var sb labels.ScratchBuilder
		for _, ts := range req.Timeseries {
			r2.Timeseries = append(r2.Timeseries, writev2.TimeSeries{
				LabelsRefs: syms.SymbolizeLabels(ts.ToLabels(&sb, nil), nil),
				Samples:    []writev2.Sample{{Value: ts.Samples[0].Value, Timestamp: ts.Samples[0].Timestamp}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE},
			})
		}
		r2.Symbols = syms.Symbols()
		m = r2
	}
	raw, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	return snappy.Encode(nil, raw)
}
