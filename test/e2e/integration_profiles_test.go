package e2e

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// The integration profiles of docs/integration-profiles.md: each test runs
// the example files of deploy/profiles as they are, only with the example's
// host names swapped for the test's peers.

// profileFile reads deploy/profiles/<path> with each old string of swap
// (old, new, old, new, ...) replaced, and fails if one is not in the file,
// so the test cannot drift away from the example.
func profileFile(t *testing.T, path string, swap ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "profiles", path))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(swap); i += 2 {
		if !strings.Contains(s, swap[i]) {
			t.Fatalf("%s no longer holds %q: update the test with the example", path, swap[i])
		}
	}
	return strings.NewReplacer(swap...).Replace(s)
}

// fastGenerator makes the generator write every second instead of the
// examples' 15s (flags override the file).
var fastGenerator = []string{"--generator.collection-interval=1s"}

// edgeTraces builds n traces of a client span in client calling a server
// span in server: span metrics for both and one service-graph edge each.
func edgeTraces(client, server string, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	now := time.Now()
	for k, svc := range []string{client, server} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range n {
			sp := spans.AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{0xed, 1: byte(i >> 8), 2: byte(i), 3: byte(len(client)), 15: 1})
			sp.SetSpanID(pcommon.SpanID{0xed, 1: byte(i >> 8), 2: byte(i), 7: byte(k + 1)})
			sp.SetName("GET /items")
			sp.SetKind(ptrace.SpanKindClient)
			if k == 1 {
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetParentSpanID(pcommon.SpanID{0xed, 1: byte(i >> 8), 2: byte(i), 7: 1})
			}
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-20 * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		}
	}
	return td
}

// instantIs waits until api answers q with one sample equal to want.
func instantIs(t *testing.T, name string, api *harness.API, q string, want float64) {
	t.Helper()
	harness.Eventually(t, 60*time.Second, func() (bool, string) {
		_, s, _ := api.Instant(t, q, time.Now())
		got := make([]float64, len(s))
		for i := range s {
			got[i] = s[i].Value.Float()
		}
		return len(got) == 1 && got[0] == want, fmt.Sprintf("%s answers %s with %v, want %v", name, q, got, want)
	})
}

// Profile 1, all in one: metrics, spans (and their span metrics), profiles
// and log lines sent to `vispyr serve` are all queryable from it.
func TestProfileAllInOne(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Config: profileFile(t, "all-in-one/vispyr.yaml"), Args: fastGenerator})

	base := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	acked, sum := fwSeries(t, v.MetricsURL("/api/v1/write"), 2, 10, 10, base)
	td, ids := fwTraces("aio", 0, 3, 4, time.Now())
	postTraces(t, v.OTLPHTTPURL("/v1/traces"), td)
	from := time.Now().Add(-time.Minute).Truncate(time.Second)
	if err := foldedSend(1, from)(v.PyroscopeIngestAddr, "aio"); err != nil {
		t.Fatal(err)
	}
	c := newLogCorpus()
	pushLoki(t, "http://"+v.LokiAddr+"/loki/api/v1/push", c.body)

	holds(t, "vispyr serve", v.MetricsURL(""), base.Add(time.Hour), acked, sum)
	holdsTraces(t, "vispyr serve", tempoTrace(v), ids, 4)
	instantIs(t, "vispyr serve", harness.NewAPI(v.MetricsURL("")), `sum(traces_spanmetrics_calls_total{service="aio"})`, 12)
	if total, _ := flame(t, v.PyroscopeAddr, "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "aio"); total != 15*1e7 {
		t.Errorf("flame graph total %d ns, want the profile's 15 samples of 10ms", total)
	}
	want := corpusLines(t, c)
	if got := vispyrLines(t, "http://"+v.LokiAddr, `{service_name=~"app.+"}`, c); !slices.Equal(got, want) {
		t.Errorf("vispyr holds %d log lines of %d pushed; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
}

// Profile 2, "I already have Prometheus": a real Prometheus 2.42 running
// the example's job federates the span metrics and the service graph.
func TestProfilePrometheusFederates(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Config: profileFile(t, "all-in-one/vispyr.yaml"), Args: fastGenerator})
	prom := harness.StartPrometheus(t, profileFile(t, "prometheus/prometheus.yml",
		"vispyr:9090", v.MetricsAddr, "scrape_interval: 15s", "scrape_interval: 1s"))
	postTraces(t, v.OTLPHTTPURL("/v1/traces"), edgeTraces("fed-web", "federated-app", 40))
	postTraces(t, v.OTLPHTTPURL("/v1/traces"), edgeTraces("fed-mobile", "federated-app", 25))

	prometheus := harness.NewAPI(prom.URL(""))
	instantIs(t, "prometheus through /federate", prometheus, `sum(traces_spanmetrics_calls_total{service="federated-app"})`, 65)
	instantIs(t, "prometheus through /federate", prometheus, `sum(traces_service_graph_request_total{server="federated-app",client="fed-web"})`, 40)
	instantIs(t, "prometheus through /federate", prometheus, `sum(traces_service_graph_request_total{server="federated-app",client="fed-mobile"})`, 25)
	// The latency histogram comes through whole, with its le labels.
	_, buckets, _ := prometheus.Instant(t, `count(traces_spanmetrics_latency_bucket{service="federated-app",span_kind="SPAN_KIND_SERVER"})`, time.Now())
	if len(buckets) != 1 || buckets[0].Value.Float() < 10 {
		t.Fatalf("prometheus federated %v latency buckets, want the whole histogram", buckets)
	}
	// Only what match[] selects: not Vispyr's other series.
	if _, other, _ := prometheus.Instant(t, `count({__name__=~".+", __name__!~"traces_spanmetrics_.+|traces_service_graph_.+|up|scrape_.+"})`, time.Now()); len(other) != 0 {
		t.Errorf("prometheus holds series the job did not select: %v", other)
	}
}

// Profile 3, "I already have VictoriaMetrics": serve keeps the samples and
// the span metrics and forwards both to a real VictoriaMetrics.
func TestProfileVictoriaMetrics(t *testing.T) {
	t.Parallel()
	vm := harness.StartVictoriaMetrics(t)
	v := harness.Start(t, harness.Options{Args: fastGenerator,
		Config: profileFile(t, "victoriametrics/vispyr.yaml", "victoriametrics:8428", vm.Addr)})

	base := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	acked, sum := fwSeries(t, v.MetricsURL("/api/v1/write"), 3, 20, 10, base)
	postTraces(t, v.OTLPHTTPURL("/v1/traces"), edgeTraces("vm-web", "vm-api", 30))
	holds(t, "vispyr serve", v.MetricsURL(""), base.Add(time.Hour), acked, sum)
	holds(t, "victoria-metrics", vm.URL(""), base.Add(time.Hour), acked, sum)
	instantIs(t, "victoria-metrics", harness.NewAPI(vm.URL("")), `sum(traces_spanmetrics_calls_total{service="vm-api"})`, 30)
	instantIs(t, "victoria-metrics", harness.NewAPI(vm.URL("")), `sum(traces_service_graph_request_total{client="vm-web",server="vm-api"})`, 30)
}

// Profile 4, "I already have a Collector": an OpenTelemetry Collector (the
// Jaeger v2 distribution) running the example's pipelines receives
// telemetrygen's traces, metrics and logs and exports them to Vispyr, which
// also names span metrics as the Collector's spanmetrics connector does.
func TestProfileCollector(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Config: profileFile(t, "collector/vispyr.yaml"), Args: fastGenerator})
	grpcAddr, httpAddr := "127.0.0.1:"+fmt.Sprint(testpeer.FreePort(t)), "127.0.0.1:"+fmt.Sprint(testpeer.FreePort(t))
	harness.StartCollector(t, profileFile(t, "collector/collector.yaml",
		"0.0.0.0:4317", grpcAddr, "0.0.0.0:4318", httpAddr, "http://vispyr:4318", v.OTLPHTTPURL("")), grpcAddr)

	tg := testpeer.Binary(t, "telemetrygen")
	for _, args := range [][]string{
		{"traces", "--traces=20", "--child-spans=2"},
		{"metrics", "--metrics=10", "--otlp-metric-name=profile_collector", "--metric-type=Sum", "--aggregation-temporality=cumulative"},
		{"logs", "--logs=15", "--body=through the collector"},
	} {
		out, err := exec.Command(tg, append(args, "--otlp-insecure", "--otlp-endpoint="+grpcAddr, "--service=via-collector", "--rate=100")...).CombinedOutput()
		if err != nil {
			t.Fatalf("telemetrygen %s: %v\n%s", args[0], err, out)
		}
	}
	api := harness.NewAPI(v.MetricsURL(""))
	// telemetrygen sends a root span and two children per trace: 60 spans,
	// counted under Tempo's names and the Collector connector's alike.
	instantIs(t, "vispyr", api, `sum(traces_spanmetrics_calls_total{service="via-collector"})`, 60)
	instantIs(t, "vispyr", api, `sum(traces_span_metrics_calls_total{service_name="via-collector"})`, 60)
	instantIs(t, "vispyr", api, `sum(traces_span_metrics_duration_milliseconds_count{service_name="via-collector"})`, 60)
	waitSeries(t, api, `profile_collector_total{job="via-collector"}`, 9)
	c := logCorpus{start: time.Now().Add(-5 * time.Minute), end: time.Now().Add(time.Minute)}
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		got := vispyrLines(t, "http://"+v.LokiAddr, `{service_name="via-collector"} |= "through the collector"`, c)
		return len(got) == 15, fmt.Sprintf("vispyr holds %d of the 15 log records", len(got))
	})
}

// Profile 5, gateway only: everything sent to the example gateway, as any
// tenant, arrives at the central engines (here a second Vispyr, which speaks
// Mimir's, Tempo's, Pyroscope's and Loki's push protocols) as tenant team-a,
// the span metrics the gateway derived included.
func TestProfileGateway(t *testing.T) {
	t.Parallel()
	central := harness.Start(t, harness.Options{})
	gw := harness.Start(t, harness.Options{Command: "gateway", Args: fastGenerator, Config: profileFile(t, "gateway/gateway.yaml",
		"http://mimir:8080/api/v1/push", central.MetricsURL("/api/v1/write"),
		"http://tempo:4318", "http://"+central.OTLPHTTPAddr,
		"http://pyroscope:4040", "http://"+central.PyroscopeAddr,
		"http://loki:3100", "http://"+central.LokiAddr)})

	const sender, team = "app-says", "team-a"
	now := time.Now()
	writeTenantA(t, gw, sender, now)
	pushLogs(t, gw, sender, now)

	api := harness.NewAPI(central.MetricsURL(""))
	api.Client = tenantClient(team)
	for _, q := range []string{"a_rw_total", "a_otlp_http", "a_otlp_grpc", "a_otlp_prom",
		`traces_spanmetrics_calls_total{service="svc-a"}`, `traces_service_graph_request_total{client="svc-a",server="svc-b"}`} {
		harness.Eventually(t, 30*time.Second, func() (bool, string) {
			_, res, resp := api.Instant(t, q, time.Now())
			return len(res) > 0, "central as team-a: " + q + " gave " + resp.Body
		})
	}
	expectTraces(t, central, team, pcommon.TraceID{0xa1, 15: 1}, true)
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		return profileTotal(t, central, team, "app-a") > 0, "central as team-a has no profile of app-a yet"
	})
	expectProfiles(t, central, team, true)
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		body := mustGetAs(t, team, "http://"+central.LokiAddr+"/loki/api/v1/query_range?limit=10&query="+url.QueryEscape(`{app="logs-a"}`)+
			"&start="+itoa(now.Add(-time.Minute).UnixNano())+"&end="+itoa(time.Now().UnixNano()))
		return strings.Contains(body, "secret line of svc-a"), "central as team-a has not the log line yet: " + body
	})
	// Nothing is kept under the sender's own tenant.
	other := harness.NewAPI(central.MetricsURL(""))
	other.Client = tenantClient(sender)
	if _, res, _ := other.Instant(t, `{__name__=~"a_.+|traces_.+"}`, time.Now()); len(res) != 0 {
		t.Errorf("central holds series under the sender's tenant: %v", res)
	}
	expectTraces(t, central, sender, pcommon.TraceID{0xa1, 15: 1}, false)
	expectLogs(t, central, sender, false)
}

// profileTotal is the merged flame graph total of service's CPU profiles,
// as tenant.
func profileTotal(t *testing.T, v *harness.Vispyr, tenant, service string) int64 {
	t.Helper()
	q := querierv1connect.NewQuerierServiceClient(tenantClient(tenant), "http://"+v.PyroscopeAddr)
	fg, err := q.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", LabelSelector: `{service_name="` + service + `"}`,
		Start: time.Now().Add(-time.Hour).UnixMilli(), End: time.Now().Add(time.Minute).UnixMilli()}))
	if err != nil {
		t.Fatalf("flame graph of %s as %q: %v", service, tenant, err)
	}
	return fg.Msg.Flamegraph.GetTotal()
}

// mustGetAs GETs u as tenant and returns the body of a 200.
func mustGetAs(t *testing.T, tenant, u string) string {
	t.Helper()
	resp, err := tenantClient(tenant).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s as %q: %s %s", u, tenant, resp.Status, b)
	}
	return string(b)
}
