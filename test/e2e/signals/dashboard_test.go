package signals

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// grafanaDashboard is what Grafana reads from a dashboard to run its queries.
type grafanaDashboard struct {
	Templating struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr          string `json:"expr"`  // Prometheus
			Query         string `json:"query"` // Tempo: TraceQL or a trace ID
			QueryType     string `json:"queryType"`
			ProfileTypeID string `json:"profileTypeId"` // Pyroscope
			LabelSelector string `json:"labelSelector"`
			Datasource    struct {
				Type string `json:"type"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

type grafanaVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": "..."}
	Regex      string          `json:"regex"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

func (v grafanaVariable) queryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	json.Unmarshal(v.Query, &o)
	return o.Query
}

var (
	labelValuesRe = regexp.MustCompile(`^label_values\((?:(.+),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	queryResultRe = regexp.MustCompile(`^query_result\((.+)\)$`)
)

// variableValues runs a Prometheus query variable as Grafana's Prometheus
// datasource does: label_values over the labels API with the dashboard's time
// range, query_result as an instant query at its end whose series Grafana
// renders as `name{l="v",…} value timestamp`, then the variable's regex.
func variableValues(t *testing.T, prom *harness.API, v grafanaVariable, start, end time.Time) []string {
	t.Helper()
	q := v.queryText()
	var texts []string
	switch {
	case labelValuesRe.MatchString(q):
		m := labelValuesRe.FindStringSubmatch(q)
		params := url.Values{"start": {harness.FormatTime(start)}, "end": {harness.FormatTime(end)}}
		if m[1] != "" {
			params.Set("match[]", m[1])
		}
		r := prom.Get(t, "/api/v1/label/"+m[2]+"/values", params).MustSucceed(t)
		if err := json.Unmarshal(r.Data, &texts); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
	case queryResultRe.MatchString(q):
		expr := queryResultRe.FindStringSubmatch(q)[1]
		_, series, resp := prom.Instant(t, expr, end)
		if resp.Status != "success" {
			t.Fatalf("variable %s: %s: %s", v.Name, expr, resp.Error)
		}
		for _, s := range series {
			name := s.Metric["__name__"]
			var parts []string
			for k, val := range s.Metric {
				if k != "__name__" {
					parts = append(parts, fmt.Sprintf("%s=%q", k, val))
				}
			}
			slices.Sort(parts)
			texts = append(texts, fmt.Sprintf("%s{%s} %v %d", name, strings.Join(parts, ","), s.Value.Float(), s.Value.Millis()))
		}
	default:
		t.Fatalf("variable %s: query %q is neither label_values nor query_result", v.Name, q)
	}
	return applyVariableRegex(t, texts, v.Regex)
}

// applyVariableRegex keeps what Grafana keeps: the first capture group of
// each match (the whole text without one), de-duplicated, sorted.
func applyVariableRegex(t *testing.T, texts []string, regex string) []string {
	if regex == "" {
		slices.Sort(texts)
		return slices.Compact(texts)
	}
	re, err := regexp.Compile(strings.TrimSuffix(strings.TrimPrefix(regex, "/"), "/"))
	if err != nil {
		t.Fatalf("variable regex %s: %v", regex, err)
	}
	var out []string
	for _, s := range texts {
		if m := re.FindStringSubmatch(s); m != nil {
			out = append(out, m[len(m)-1])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func interpolate(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
		s = strings.ReplaceAll(s, "$"+k, v)
	}
	return s
}

// TestShippedDashboardAnswersAsGrafanaAsksIt loads the shipped "Vispyr
// Observability" dashboard and runs every variable and panel query as Grafana
// would, against data from real clients in both span-metric namings: the
// original agent's (Alloy's spanmetrics connector over OTLP: service_name,
// http_target, duration_milliseconds) and Vispyr's own generator fed by
// telemetrygen's spans (Tempo's naming: service, latency in seconds). Host
// panels read a real node_exporter that Vispyr scrapes; the profile panel reads
// wall profiles from the agent's @pyroscope/nodejs client.
func TestShippedDashboardAnswersAsGrafanaAsksIt(t *testing.T) {
	var d grafanaDashboard
	if err := json.Unmarshal(repoFile(t, "deploy/grafana/dashboards/vispyr.json"), &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	node := harness.StartNodeExporter(t)
	promCfg := filepath.Join(t.TempDir(), "prometheus.yml")
	os.WriteFile(promCfg, []byte("scrape_configs:\n  - job_name: node\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['"+node.Addr+"']\n"), 0o644)
	v := harness.Start(t, harness.Options{Config: fastGenerator, Args: []string{"--prometheus.config.file=" + promCfg}})
	start := time.Now().Add(-15 * time.Minute) // the dashboard's range: last 15 minutes

	sendAgentSpanMetrics(t, v, time.Now())
	tg := testpeer.Binary(t, "telemetrygen")
	if out, err := exec.Command(tg, "traces", "--otlp-insecure", "--otlp-endpoint", v.OTLPGRPCAddr,
		"--traces", "5", "--child-spans", "2", "--service", "shop").CombinedOutput(); err != nil {
		t.Fatalf("telemetrygen: %v\n%s", err, out)
	}
	runNodeAgentProfiler(t, "http://"+v.PyroscopeIngestAddr, "shop")

	prom := harness.NewAPI("http://" + v.MetricsAddr)
	vars := func() map[string][]string {
		end := time.Now()
		out := map[string][]string{}
		for _, vr := range d.Templating.List {
			if vr.Type == "query" {
				out[vr.Name] = variableValues(t, prom, vr, start, end)
			}
		}
		return out
	}
	// Span metrics of the generator appear within its 1 s collection interval;
	// node_exporter's rate needs two scrapes.
	var values map[string][]string
	harness.Eventually(t, 20*time.Second, func() (bool, string) {
		values = vars()
		_, cpu, _ := prom.Instant(t, `rate(node_cpu_seconds_total[5m])`, time.Now())
		return slices.Contains(values["app"], "shop") && len(cpu) > 0, fmt.Sprintf("variables %v, cpu series %d", values, len(cpu))
	})
	if !slices.Equal(values["app"], []string{"checkout", "shop"}) {
		t.Errorf("$app offers %q, want the agent's checkout and the generator's shop", values["app"])
	}
	if !slices.Contains(values["route"], "/cart") {
		t.Errorf("$route offers %q, want the agent's /cart", values["route"])
	}
	allRoutes := ".*"
	for _, vr := range d.Templating.List {
		if vr.Name == "route" && vr.IncludeAll {
			allRoutes = vr.AllValue
		}
	}

	// Every Prometheus panel query, once per choice a user would make: the
	// agent's service on its route, and the generator's service on All routes.
	// Each must succeed; each panel must show data for each choice, from
	// whichever of its targets reads that naming.
	end := time.Now()
	for _, choice := range []map[string]string{
		{"app": "checkout", "route": "/cart"},
		{"app": "shop", "route": allRoutes},
	} {
		for _, p := range d.Panels {
			prometheusTargets, withData := 0, 0
			for _, tg := range p.Targets {
				if tg.Datasource.Type != "prometheus" {
					continue
				}
				prometheusTargets++
				expr := interpolate(tg.Expr, choice)
				series := prom.QueryRange(t, expr, start, end, 15*time.Second)
				if len(series) > 0 {
					withData++
				}
			}
			if prometheusTargets > 0 && withData == 0 {
				t.Errorf("panel %q shows no data for app=%s route=%s", p.Title, choice["app"], choice["route"])
			}
		}
	}

	checkTracePanels(t, d, tempo{"http://" + v.TempoAddr}, start)
	checkProfilePanel(t, d, "http://"+v.PyroscopeAddr, start)
}

// checkTracePanels runs the TraceQL panels as Grafana's Tempo datasource does
// and opens the waterfall panel on a trace the table links to.
func checkTracePanels(t *testing.T, d grafanaDashboard, api tempo, start time.Time) {
	t.Helper()
	var traceID string
	waterfalls := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Datasource.Type != "tempo" {
				continue
			}
			if !strings.HasPrefix(tg.Query, "{") {
				waterfalls++
				continue
			}
			sr := api.search(t, tg.Query)
			if len(sr.Traces) != 5 {
				t.Errorf("panel %q: %s found %d traces, want telemetrygen's 5", p.Title, tg.Query, len(sr.Traces))
			}
			if len(sr.Traces) > 0 {
				traceID = sr.Traces[0].TraceID
			}
		}
	}
	if waterfalls == 0 || traceID == "" {
		t.Fatalf("no waterfall panel (%d) or no trace to open", waterfalls)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Datasource.Type == "tempo" && !strings.HasPrefix(tg.Query, "{") {
				id := interpolate(tg.Query, map[string]string{"trace_id": traceID})
				td, code, err := api.traceV2(id)
				if err != nil || td.SpanCount() != 3 {
					t.Errorf("panel %q: trace %s: %d %v, %d spans, want 3", p.Title, id, code, err, td.SpanCount())
				}
			}
		}
	}
}

// checkProfilePanel asks for the flame graph as Grafana's Pyroscope datasource
// does for a "profile" query.
func checkProfilePanel(t *testing.T, d grafanaDashboard, base string, start time.Time) {
	t.Helper()
	client := querierv1connect.NewQuerierServiceClient(http.DefaultClient, base)
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.ProfileTypeID == "" {
				continue
			}
			n++
			fg, err := client.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
				ProfileTypeID: tg.ProfileTypeID, LabelSelector: tg.LabelSelector,
				Start: start.UnixMilli(), End: time.Now().UnixMilli(),
			}))
			if err != nil {
				t.Fatalf("panel %q: %v", p.Title, err)
			}
			g := fg.Msg.Flamegraph
			if g.Total == 0 || !slices.ContainsFunc(g.Names, func(s string) bool { return strings.Contains(s, "vispyrNodeBusy") }) {
				t.Errorf("panel %q: flame graph of %s has total %d and lacks the agent's busy function", p.Title, tg.ProfileTypeID, g.Total)
			}
		}
	}
	if n == 0 {
		t.Error("no profile panel in the dashboard")
	}
}

// runNodeAgentProfiler runs the agent's profiler, @pyroscope/nodejs (0.6.4:
// 0.4.5, the original's, races its own heap profiler under load, see
// internal/receiver/pyroscope TestNodeSDK), installed by
// .ci/install.d/40-profiles.sh, against ingest.
func runNodeAgentProfiler(t *testing.T, ingest, app string) {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "internal", "receiver", "pyroscope", "testdata", "node")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "pyroscope-06"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node agent missing (run .ci/install.d/40-profiles.sh): %v", err)
		}
		t.Skipf("node agent missing (run .ci/install.d/40-profiles.sh): %v", err)
	}
	cmd := exec.Command(node, "app.js", "pyroscope-06", ingest, app)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node agent: %v\n%s", err, out)
	}
}
