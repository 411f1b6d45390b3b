package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// fwSeries writes requests × series × samples of fw_test into url, samples
// a second apart in the past (so VictoriaMetrics answers them at once), and
// returns how many samples were acknowledged with a 2xx and their value sum.
func fwSeries(t *testing.T, url string, requests, series, samples int, base time.Time) (acked int, sum float64) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	for r := range requests {
		req := &prompb.WriteRequest{}
		var reqSum float64
		for s := range series {
			ts := prompb.TimeSeries{Labels: harness.Labels("__name__", "fw_test", "series", strconv.Itoa(s))}
			for i := range samples {
				v := float64(r*samples + i)
				ts.Samples = append(ts.Samples, prompb.Sample{Value: v, Timestamp: base.Add(time.Duration(r*samples+i) * time.Second).UnixMilli()})
				reqSum += v
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		res, err := harness.RemoteWrite(client, url, req)
		if err != nil {
			t.Fatalf("remote write %d: %v", r, err)
		}
		if res.Status/100 == 2 {
			acked += series * samples
			sum += reqSum
		}
	}
	return acked, sum
}

// holds waits until the destination's PromQL API answers count and sum of
// fw_test samples equal to what the gateway acknowledged.
func holds(t *testing.T, name, base string, at time.Time, acked int, sum float64) {
	t.Helper()
	api := harness.NewAPI(base)
	harness.Eventually(t, 60*time.Second, func() (bool, string) {
		_, c, _ := api.Instant(t, `sum(count_over_time(fw_test[2h]))`, at)
		_, s, _ := api.Instant(t, `sum(sum_over_time(fw_test[2h]))`, at)
		if len(c) != 1 || len(s) != 1 {
			return false, fmt.Sprintf("%s holds no fw_test yet", name)
		}
		gotC, gotS := c[0].Value.Float(), s[0].Value.Float()
		return int(gotC) == acked && gotS == sum,
			fmt.Sprintf("%s holds %v samples summing to %v; the gateway acknowledged %d summing to %v", name, gotC, gotS, acked, sum)
	})
}

func TestGatewayForwardsRemoteWrite(t *testing.T) {
	t.Parallel()
	prom := harness.StartPrometheus(t, "global: {}\n", "--web.enable-remote-write-receiver")
	vm := harness.StartVictoriaMetrics(t)
	peer := harness.Start(t, harness.Options{})
	gw := harness.Start(t, harness.Options{Command: "gateway", Config: fmt.Sprintf(`
forward:
  metrics:
    - name: prometheus
      url: %s
      queue: {batch_deadline: 200ms, max_batch_items: 500}
    - name: victoriametrics
      url: %s
      queue: {batch_deadline: 200ms}
    - name: vispyr
      url: %s
      protocol: "2.0"
      queue: {batch_deadline: 200ms}
`, prom.URL("/api/v1/write"), vm.URL("/api/v1/write"), peer.MetricsURL("/api/v1/write"))})

	base := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	acked, sum := fwSeries(t, gw.MetricsURL("/api/v1/write"), 20, 50, 10, base)
	if acked != 20*50*10 {
		t.Fatalf("gateway acknowledged %d of %d samples", acked, 20*50*10)
	}
	at := base.Add(time.Hour)
	holds(t, "prometheus 2.42 (remote write 1.0)", prom.URL(""), at, acked, sum)
	holds(t, "victoria-metrics (remote write 1.0)", vm.URL(""), at, acked, sum)
	holds(t, "vispyr serve (remote write 2.0)", peer.MetricsURL(""), at, acked, sum)
}

// A destination stopped under load, the gateway killed with -9 during the
// outage and restarted: once the destination is back, every sample the
// gateway acknowledged arrives.
func TestGatewayOutageAndKill9(t *testing.T) {
	t.Parallel()
	vmAddr, vmDir := "127.0.0.1:"+strconv.Itoa(testpeer.FreePort(t)), filepath.Join(t.TempDir(), "vm")
	vm := harness.StartVictoriaMetricsAt(t, vmAddr, vmDir)
	gw := harness.Start(t, harness.Options{Command: "gateway", Config: fmt.Sprintf(`
forward:
  metrics:
    - url: http://%s/api/v1/write
      queue: {batch_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}
`, vmAddr)})
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	// Each phase writes its own seconds, so no sample repeats another.
	phase := func(n int) (int, float64) {
		return fwSeries(t, gw.MetricsURL("/api/v1/write"), 5, 40, 10, base.Add(time.Duration(n)*50*time.Second))
	}
	acked, sum := phase(0)
	if err := vm.Stop(30 * time.Second); err != nil {
		t.Logf("stop victoria-metrics: %v", err)
	}
	a, s := phase(1) // queued: the destination is down
	acked, sum = acked+a, sum+s
	time.Sleep(time.Second) // a few failed sends and retries
	gw.Kill9()
	gw.Restart()
	a, s = phase(2)
	acked, sum = acked+a, sum+s
	if acked != 3*5*40*10 {
		t.Fatalf("gateway acknowledged %d of %d samples", acked, 3*5*40*10)
	}
	vm = harness.StartVictoriaMetricsAt(t, vmAddr, vmDir)
	holds(t, "victoria-metrics after the outage", vm.URL(""), base.Add(time.Hour), acked, sum)
}

// A destination answering 400 (Prometheus refusing an out-of-order sample)
// is not retried: the batch is dropped, counted and the others still flow.
func TestGatewayDropsPermanentErrors(t *testing.T) {
	t.Parallel()
	prom := harness.StartPrometheus(t, "global: {}\n", "--web.enable-remote-write-receiver")
	gw := harness.Start(t, harness.Options{Command: "gateway", Config: fmt.Sprintf(`
forward:
  metrics:
    - name: prom
      url: %s
      queue: {batch_deadline: 50ms, min_backoff: 10ms, max_backoff: 100ms}
`, prom.URL("/api/v1/write"))})
	now := time.Now().Truncate(time.Second)
	write := func(at time.Time, v float64) {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  harness.Labels("__name__", "fw_order", "job", "x"),
			Samples: []prompb.Sample{{Value: v, Timestamp: at.UnixMilli()}},
		}}}
		res, err := harness.RemoteWrite(&http.Client{Timeout: 10 * time.Second}, gw.MetricsURL("/api/v1/write"), req)
		if err != nil || res.Status/100 != 2 {
			t.Fatalf("write to gateway: %v %+v", err, res)
		}
	}
	api := harness.NewAPI(prom.URL(""))
	write(now, 1)
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		_, s, _ := api.Instant(t, `fw_order`, now)
		return len(s) == 1, "prometheus has not got the first sample"
	})
	write(now.Add(-time.Minute), 2) // out of order: Prometheus answers 400
	// Prometheus refuses a whole v1 request for one bad sample: let the bad
	// one go alone, then check that what follows still flows.
	time.Sleep(500 * time.Millisecond)
	write(now.Add(time.Second), 3)
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		_, s, _ := api.Instant(t, `fw_order`, now.Add(time.Second))
		return len(s) == 1 && s[0].Value.Float() == 3, "prometheus has not got the sample after the refused one"
	})
	time.Sleep(time.Second) // a retry storm would show here
	got400 := scrape(t, prom.URL("/metrics"), `prometheus_http_requests_total{code="400",handler="/api/v1/write"}`)
	if got400 != 1 {
		t.Fatalf("prometheus answered 400 %v times; want exactly 1 (no retries of a permanent error)", got400)
	}
	if d := scrape(t, gw.AdminURL("/metrics"), `vispyr_forward_items_dropped_total{destination="prom",reason="http_400",signal="metrics"}`); d != 1 {
		t.Fatalf("gateway counted %v dropped samples, want 1", d)
	}
}

// A full queue answers remote write 503 with Retry-After, and the gateway
// reports not ready until the queue drains.
func TestGatewayFullQueue(t *testing.T) {
	t.Parallel()
	down := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) // nothing listens
	gw := harness.Start(t, harness.Options{Command: "gateway", Config: fmt.Sprintf(`
forward:
  metrics:
    - url: http://%s/api/v1/write
      queue: {max_bytes: 1048576, batch_deadline: 100ms, max_backoff: 200ms}
`, down)})
	client := &http.Client{Timeout: 10 * time.Second}
	var full harness.RemoteWriteResult
	for i := 0; i < 500 && full.Status == 0; i++ {
		req := &prompb.WriteRequest{}
		for s := range 1000 {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  harness.Labels("__name__", "fw_full", "series", strconv.Itoa(s*7919+i*104729), "request", strconv.Itoa(i)),
				Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
			})
		}
		res, err := harness.RemoteWrite(client, gw.MetricsURL("/api/v1/write"), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status/100 != 2 {
			full = res
		}
	}
	if full.Status != http.StatusServiceUnavailable || full.Header.Get("Retry-After") == "" {
		t.Fatalf("full queue answered %d (Retry-After %q), want 503 with Retry-After", full.Status, full.Header.Get("Retry-After"))
	}
	harness.Eventually(t, 10*time.Second, func() (bool, string) {
		resp, err := client.Get(gw.AdminURL("/-/ready"))
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable, "gateway still ready with a full queue: " + resp.Status
	})
}

// scrape returns the value of one sample line of a /metrics page (0 when absent).
func scrape(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
