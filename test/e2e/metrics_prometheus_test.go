package e2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// Debian's Prometheus scrapes Debian's node_exporter and remote-writes to
// Vispyr's /api/v1/write; a second Prometheus in agent mode (scrape and
// forward only, as the original Vispyr agent's Alloy does) writes to the
// Alloy path /api/v1/metrics/write. The data comes back from Vispyr's
// query_range with the values Prometheus itself has.
func TestPrometheusRemoteWritesNodeExporter(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	ne := harness.StartNodeExporter(t)
	const queue = `queue_config: {batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}`
	prom := harness.StartPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [%q]
remote_write:
  - url: %s
    %s
`, ne.Addr, v.MetricsURL("/api/v1/write"), queue))
	harness.StartPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
  external_labels: {via: alloy-path}
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [%q]
remote_write:
  - url: %s
    %s
`, ne.Addr, v.MetricsURL("/api/v1/metrics/write"), queue), "--enable-feature=agent")

	api := harness.NewAPI(v.MetricsURL(""))
	start := time.Now().Add(-time.Minute)
	var lastScrape time.Time

	// Wait until a few scrapes have arrived through both paths, so rate() has
	// points to work with.
	harness.Eventually(t, 45*time.Second, func() (bool, string) {
		end := time.Now()
		for _, q := range []string{`up{job="node",via=""}`, `up{job="node",via="alloy-path"}`} {
			s := api.QueryRange(t, q, start, end, time.Second)
			if len(s) != 1 || len(s[0].Values) < 3 {
				return false, fmt.Sprintf("%s: %d series, want 1 with >= 3 points: %+v", q, len(s), s)
			}
			for _, p := range s[0].Values {
				if p.V != "1" {
					return false, fmt.Sprintf("%s = %s at %v, want 1", q, p.V, p.T)
				}
			}
			if s[0].Metric["instance"] != ne.Addr {
				return false, fmt.Sprintf("%s instance=%q, want %q", q, s[0].Metric["instance"], ne.Addr)
			}
			lastScrape = time.UnixMilli(s[0].Values[len(s[0].Values)-1].Millis())
		}
		return true, ""
	})

	cpu := api.QueryRange(t, `node_cpu_seconds_total{job="node",mode="idle",via=""}`, start, time.Now(), time.Second)
	if len(cpu) == 0 {
		t.Fatal("node_cpu_seconds_total{mode=idle}: no series")
	}
	for _, s := range cpu {
		if s.Metric["cpu"] == "" {
			t.Errorf("series %v has no cpu label", s.Metric)
		}
		for i := 1; i < len(s.Values); i++ {
			if s.Values[i].Float() < s.Values[i-1].Float() {
				t.Errorf("counter %v went down: %v then %v", s.Metric, s.Values[i-1], s.Values[i])
			}
		}
	}

	// The "Vispyr Observability" dashboard's CPU and memory panels.
	for _, q := range []string{
		`100 - (avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)`,
		`100 * (1 - node_memory_MemAvailable_bytes{via=""} / node_memory_MemTotal_bytes{via=""})`,
	} {
		typ, res, _ := api.Instant(t, q, time.Now())
		if typ != "vector" || len(res) != 1 {
			t.Fatalf("%s: %s with %d elements, want a 1-element vector", q, typ, len(res))
		}
		if f := res[0].Value.Float(); math.IsNaN(f) || f < 0 || f > 100 {
			t.Errorf("%s = %v, want a percentage", q, f)
		}
	}

	// What Vispyr stored is what Prometheus scraped: compare a sample value
	// at the same instant in both, one Vispyr has surely received.
	at := lastScrape
	promAPI := harness.NewAPI(prom.URL(""))
	_, want, _ := promAPI.Instant(t, `node_memory_MemTotal_bytes`, at)
	_, got, _ := api.Instant(t, `node_memory_MemTotal_bytes{via=""}`, at)
	if len(want) != 1 || len(got) != 1 || want[0].Value.V != got[0].Value.V {
		t.Errorf("node_memory_MemTotal_bytes at %v: prometheus %+v, vispyr %+v", at, want, got)
	}

	// Prometheus's own counters: samples were sent, none failed.
	counters := scrapeCounters(t, prom.URL("/metrics"))
	for _, name := range []string{"prometheus_remote_storage_samples_total", "prometheus_remote_storage_samples_failed_total"} {
		if _, ok := counters[name]; !ok {
			t.Fatalf("prometheus /metrics has no %s", name)
		}
	}
	if counters["prometheus_remote_storage_samples_total"] == 0 {
		t.Error("prometheus reports no samples sent")
	}
	if n := counters["prometheus_remote_storage_samples_failed_total"]; n != 0 {
		t.Errorf("prometheus reports %v samples failed sending to vispyr", n)
	}
	v.CheckServing(t)
}

// scrapeCounters fetches a Prometheus text exposition and sums each metric
// over its label sets.
func scrapeCounters(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sums := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if i := strings.LastIndexByte(line, ' '); i >= 0 {
			rest = line[i+1:]
		}
		f, err := strconv.ParseFloat(rest, 64)
		if err == nil {
			sums[name] += f
		}
	}
	return sums
}
