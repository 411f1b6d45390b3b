package signals

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"gopkg.in/yaml.v3"

	"github.com/vispyr/vispyr/internal/logs/logql"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

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

// sendAgentSpanMetrics sends what the agent's Alloy spanmetrics connector
// sends: the duration histogram in ms and the calls counter.
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
	// The connector's calls counter, with the same dimensions.
	c := ms.AppendEmpty()
	c.SetName("traces.spanmetrics.calls")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, ts := range []time.Time{now.Add(-2 * time.Minute), now} {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		h.DataPoints().At(i).Attributes().CopyTo(dp.Attributes())
		dp.SetIntValue(int64(30 * (i + 1)))
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
			UID      string         `yaml:"uid"`
			Type     string         `yaml:"type"`
			URL      string         `yaml:"url"`
			JSONData map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/grafana/provisioning/datasources/vispyr.yaml"), &ds); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"prometheus": "http://vispyr:9090", "tempo": "http://vispyr:3200",
		"grafana-pyroscope-datasource": "http://vispyr:4040", "loki": "http://vispyr:3100"}
	uids := map[string]bool{}
	for _, d := range ds.Datasources {
		if want[d.Type] != d.URL {
			t.Errorf("datasource %s points at %s, want %s", d.Type, d.URL, want[d.Type])
		}
		delete(want, d.Type)
		uids[d.UID] = true
	}
	if len(want) > 0 {
		t.Errorf("datasources missing: %v", want)
	}
	// The trace-to-logs query, as Grafana fills it in, is LogQL Vispyr parses.
	if _, err := logql.ParseExpr(traceToLogsQuery(t, "service_name=\"checkout\"", "ae87dadd90e9935a4bc9660628efd569")); err != nil {
		t.Errorf("trace-to-logs query: %v", err)
	}
	// Every link between datasources names one that is provisioned.
	for _, d := range ds.Datasources {
		for _, ref := range datasourceRefs(d.JSONData) {
			if !uids[ref] {
				t.Errorf("datasource %s links to uid %q, which is not provisioned", d.UID, ref)
			}
		}
	}
}

// traceToLogsQuery returns the Tempo datasource's trace-to-logs query as
// Grafana fills it in for a span with the given tags and trace ID.
func traceToLogsQuery(t *testing.T, tags, traceID string) string {
	t.Helper()
	var ds struct {
		Datasources []struct {
			Type     string `yaml:"type"`
			JSONData struct {
				TracesToLogs struct {
					CustomQuery bool   `yaml:"customQuery"`
					Query       string `yaml:"query"`
				} `yaml:"tracesToLogsV2"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/grafana/provisioning/datasources/vispyr.yaml"), &ds); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds.Datasources {
		if q := d.JSONData.TracesToLogs; d.Type == "tempo" && q.CustomQuery {
			// Provisioning reads "$$" as a literal "$".
			return strings.NewReplacer("$$", "$").Replace(strings.NewReplacer(
				"$${__tags}", tags, "$${__span.traceId}", traceID).Replace(q.Query))
		}
	}
	t.Fatal("the Tempo datasource has no custom trace-to-logs query")
	return ""
}

// datasourceRefs returns every datasourceUid found anywhere under v.
func datasourceRefs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "datasourceUid" {
				out = append(out, s)
			}
			out = append(out, datasourceRefs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, datasourceRefs(x)...)
		}
	}
	return out
}
