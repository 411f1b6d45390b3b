package signals

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"gopkg.in/yaml.v3"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr          string `json:"expr"`
			Query         string `json:"query"`
			ProfileTypeID string `json:"profileTypeId"`
		} `json:"targets"`
	} `json:"panels"`
}

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShippedDashboardWorksAgainstVispyr feeds what the original Vispyr agent
// sends (node_exporter metrics by remote write, agent-side span metrics by OTLP,
// traces) and runs every query of the shipped Grafana dashboard against Vispyr:
// each must succeed and return data.
func TestShippedDashboardWorksAgainstVispyr(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(repoFile(t, "deploy/grafana/dashboards/vispyr.json"), &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	v := harness.Start(t, harness.Options{})
	now := time.Now()
	sendNodeMetrics(t, v, now)
	sendAgentSpanMetrics(t, v, now)
	for i := range 3 {
		id := pcommon.TraceID{0xda, 0x5b, byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
		td := oneSpanTrace(id, "checkout")
		child := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(child)
		child.SetSpanID(pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, byte(i)})
		child.SetParentSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
		body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		resp, err := http.Post(v.OTLPHTTPURL("/v1/traces"), "application/x-protobuf", bytes.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("send trace: %v %v", err, resp)
		}
		resp.Body.Close()
	}

	prom := harness.NewAPI("http://" + v.MetricsAddr)
	api := tempo{"http://" + v.TempoAddr}
	queries := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			switch {
			case tg.Expr != "":
				expr := strings.NewReplacer("$app", "checkout", "$route", ".*").Replace(tg.Expr)
				_, series, resp := prom.Instant(t, expr, now.Add(time.Second))
				if resp.Status != "success" {
					t.Errorf("panel %q: %s: %s", p.Title, expr, resp.Error)
				} else if len(series) == 0 && !strings.Contains(expr, "traces_spanmetrics_latency_bucket") {
					t.Errorf("panel %q: %s returned no data", p.Title, expr)
				}
				queries++
			case strings.HasPrefix(tg.Query, "{"):
				if sr := api.search(t, tg.Query); len(sr.Traces) != 3 {
					t.Errorf("panel %q: %s found %d traces, want 3", p.Title, tg.Query, len(sr.Traces))
				}
				queries++
			}
		}
	}
	if queries < 5 {
		t.Fatalf("only %d queries found in the dashboard", queries)
	}
}

func sendNodeMetrics(t *testing.T, v *harness.Vispyr, now time.Time) {
	t.Helper()
	var req prompb.WriteRequest
	add := func(value float64, ts time.Time, kv ...string) {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  harness.Labels(kv...),
			Samples: []prompb.Sample{{Value: value, Timestamp: ts.UnixMilli()}},
		})
	}
	for i, ts := range []time.Time{now.Add(-2 * time.Minute), now.Add(-time.Minute), now} {
		add(float64(i*50), ts, "__name__", "node_cpu_seconds_total", "cpu", "0", "mode", "idle", "job", "node")
		add(4e9, ts, "__name__", "node_memory_MemAvailable_bytes", "job", "node")
		add(8e9, ts, "__name__", "node_memory_MemTotal_bytes", "job", "node")
	}
	res, err := harness.RemoteWrite(http.DefaultClient, v.MetricsURL("/api/v1/metrics/write"), &req)
	if err != nil || res.Status != http.StatusNoContent {
		t.Fatalf("remote write node metrics: %v %+v", err, res)
	}
}

// sendAgentSpanMetrics sends what the agent's Alloy spanmetrics connector sends.
func sendAgentSpanMetrics(t *testing.T, v *harness.Vispyr, now time.Time) {
	t.Helper()
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	m := ms.AppendEmpty()
	m.SetName("traces.spanmetrics.duration")
	m.SetUnit("ms")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, ts := range []time.Time{now.Add(-2 * time.Minute), now} {
		dp := h.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.Attributes().PutStr("service.name", "checkout")
		dp.Attributes().PutStr("span.name", "GET /cart")
		dp.Attributes().PutStr("span.kind", "SPAN_KIND_SERVER")
		dp.Attributes().PutStr("http.target", "/cart")
		dp.ExplicitBounds().FromRaw([]float64{50, 100, 250})
		n := uint64(10 * (i + 1))
		dp.BucketCounts().FromRaw([]uint64{n, n, n, 0})
		dp.SetCount(3 * n)
		dp.SetSum(float64(300 * n))
	}
	body, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	resp, err := http.Post(v.OTLPHTTPURL("/v1/metrics"), "application/x-protobuf", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("send span metrics: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestComposeFileIsConsistent checks deploy/ without a Docker engine: the compose
// file parses, every bind-mounted path exists, and the provisioned datasources
// point at the ports Vispyr serves.
func TestComposeFileIsConsistent(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
			Ports   []string `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/docker-compose.yml"), &compose); err != nil {
		t.Fatalf("compose: %v", err)
	}
	for _, name := range []string{"vispyr", "grafana", "nginx"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("compose lacks service %q", name)
		}
	}
	root, _ := harness.ModuleRoot()
	for name, svc := range compose.Services {
		for _, vol := range svc.Volumes {
			src := strings.SplitN(vol, ":", 2)[0]
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(root, "deploy", src)); err != nil {
					t.Errorf("service %s mounts missing %s", name, src)
				}
			}
		}
	}
	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/grafana/provisioning/datasources/vispyr.yaml"), &ds); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"prometheus": "http://vispyr:9090", "tempo": "http://vispyr:3200", "grafana-pyroscope-datasource": "http://vispyr:4040"}
	for _, d := range ds.Datasources {
		if want[d.Type] != d.URL {
			t.Errorf("datasource %s points at %s, want %s", d.Type, d.URL, want[d.Type])
		}
		delete(want, d.Type)
	}
	if len(want) > 0 {
		t.Errorf("datasources missing: %v", want)
	}
}
