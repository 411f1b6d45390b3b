package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

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
