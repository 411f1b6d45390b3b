package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// tenantTransport sends X-Scope-OrgID on every request, as Grafana's
// datasources and the Prometheus, OTel and Pyroscope clients do when set up
// with a tenant.
type tenantTransport struct{ tenant string }

func (t tenantTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.tenant != "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-Scope-OrgID", t.tenant)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func tenantClient(tenant string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: tenantTransport{tenant}}
}

// Data written as tenant A, by every metrics ingest path and as spans (whose
// span metrics and service graph the generator derives), as traces and as
// profiles, is A's alone: tenant B and requests without X-Scope-OrgID see
// none of it through any query API, label autocomplete included; the same
// for log lines pushed as A. After a kill -9, A's data is still A's.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Config: "generator:\n  collection_interval: 1s\n"})
	const a = "team-a"
	now := time.Now()
	writeTenantA(t, v, a, now)

	traceID := pcommon.TraceID{0xa1, 15: 1}
	apiA := harness.NewAPI(v.MetricsURL(""))
	apiA.Client = tenantClient(a)
	// A sees everything it wrote, the generated span metrics included.
	names := []string{"a_rw_total", "a_otlp_http", "a_otlp_grpc", "a_otlp_prom",
		`traces_spanmetrics_calls_total{service="svc-a"}`, `traces_service_graph_request_total{client="svc-a"}`}
	seesAll := func(api *harness.API) {
		t.Helper()
		for _, q := range names {
			harness.Eventually(t, 20*time.Second, func() (bool, string) {
				_, res, resp := api.Instant(t, q, time.Now())
				return len(res) > 0, "tenant A: " + q + " gave " + resp.Body
			})
		}
	}
	seesAll(apiA)
	if ex := apiA.Get(t, "/api/v1/query_exemplars", exemplarParams(now)); !strings.Contains(ex.Body, "a1000000") {
		t.Errorf("tenant A sees no exemplar of its trace: %s", ex.Body)
	}
	if body := federate(t, tenantClient(a), v); !strings.Contains(body, "a_rw_total") {
		t.Errorf("tenant A's /federate lacks its series: %q", body)
	}
	expectProfiles(t, v, a, true)
	expectTraces(t, v, a, traceID, true)
	pushLogs(t, v, a, now)
	expectLogs(t, v, a, true)

	for _, other := range []string{"team-b", ""} {
		t.Run("seen as "+map[string]string{"team-b": "tenant B", "": "no header"}[other], func(t *testing.T) {
			api := harness.NewAPI(v.MetricsURL(""))
			api.Client = tenantClient(other)
			for _, q := range append(names, `{only_a="yes"}`, `{__name__=~"a_.+"}`) {
				if _, res, resp := api.Instant(t, q, time.Now()); len(res) != 0 || resp.HTTPStatus != 200 {
					t.Errorf("query %s: %d %s", q, resp.HTTPStatus, resp.Body)
				}
			}
			rng := api.Get(t, "/api/v1/query_range", url.Values{"query": {`{only_a="yes"}`},
				"start": {harness.FormatTime(now.Add(-time.Hour))}, "end": {harness.FormatTime(time.Now())}, "step": {"15"}})
			for path, params := range map[string]url.Values{
				"/api/v1/series":                 {"match[]": {`{only_a="yes"}`, `{__name__=~"a_.+"}`, `{service="svc-a"}`}},
				"/api/v1/labels":                 nil,
				"/api/v1/label/__name__/values":  nil,
				"/api/v1/label/only_a/values":    nil,
				"/api/v1/label/service/values":   nil,
				"/api/v1/label/client/values":    nil,
				"/api/v1/query_exemplars":        exemplarParams(now),
				"/api/v1/metadata":               nil,
				"/api/v1/status/tsdb":            nil,
				"/api/v1/query_range (rendered)": nil,
			} {
				resp := rng
				if !strings.Contains(path, "(") {
					resp = api.Get(t, path, params)
				}
				for _, leak := range []string{"only_a", "a_rw_total", "a_otlp", "svc-a", "a1000000"} {
					if resp.HTTPStatus != 200 || strings.Contains(resp.Body, leak) {
						t.Errorf("%s: %d, shows %q: %s", path, resp.HTTPStatus, leak, resp.Body)
						break
					}
				}
			}
			if body := federate(t, tenantClient(other), v); strings.Contains(body, "a_") || strings.Contains(body, "svc-a") {
				t.Errorf("/federate shows tenant A's series: %q", body)
			}
			expectProfiles(t, v, other, false)
			expectTraces(t, v, other, traceID, false)
			expectLogs(t, v, other, false)
		})
	}

	// Tenant TSDBs are opened again at start-up, WAL replayed.
	v.Restart()
	for _, q := range []string{"a_rw_total", "a_otlp_http"} {
		if _, res, resp := apiA.Instant(t, q, time.Now()); len(res) == 0 {
			t.Errorf("after kill -9, tenant A lost %s: %s", q, resp.Body)
		}
	}
	if _, res, _ := harness.NewAPI(v.MetricsURL("")).Instant(t, "a_rw_total", time.Now()); len(res) != 0 {
		t.Error("after restart, the default tenant sees tenant A's series")
	}
	expectLogs(t, v, a, true)
	expectLogs(t, v, "team-b", false)
}

// pushLogs sends one line as tenant through Loki's push API, as Promtail and
// Alloy's loki.write do with tenant_id set.
func pushLogs(t *testing.T, v *harness.Vispyr, tenant string, now time.Time) {
	t.Helper()
	body := `{"streams":[{"stream":{"app":"logs-a","only_a":"yes"},"values":[["` +
		itoa(now.UnixNano()) + `","secret line of svc-a"]]}]}`
	req, err := http.NewRequest(http.MethodPost, "http://"+v.LokiAddr+"/loki/api/v1/push", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Scope-OrgID", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("loki push as %s: %d %s", tenant, resp.StatusCode, b)
	}
}

// expectLogs checks whether tenant sees logs-a's line through LogQL and
// through the label APIs Grafana's Loki datasource autocompletes from.
func expectLogs(t *testing.T, v *harness.Vispyr, tenant string, want bool) {
	t.Helper()
	c := tenantClient(tenant)
	rng := url.Values{"start": {itoa(time.Now().Add(-time.Hour).UnixNano())}, "end": {itoa(time.Now().Add(time.Minute).UnixNano())}}
	for _, path := range []string{
		"/loki/api/v1/query_range?limit=10&query=" + url.QueryEscape(`{app=~".+"} |= "secret"`) + "&" + rng.Encode(),
		"/loki/api/v1/labels?" + rng.Encode(),
		"/loki/api/v1/label/app/values?" + rng.Encode(),
		"/loki/api/v1/series?match[]=" + url.QueryEscape(`{app=~".+"}`) + "&" + rng.Encode(),
	} {
		resp, err := c.Get("http://" + v.LokiAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		shown := strings.Contains(string(b), "logs-a") || strings.Contains(string(b), "only_a")
		if resp.StatusCode != 200 || shown != want {
			t.Errorf("tenant %q: %s: %d %s; want logs-a shown: %v", tenant, path, resp.StatusCode, b, want)
		}
	}
}

func exemplarParams(now time.Time) url.Values {
	return url.Values{"query": {`{__name__=~"a_rw_total|traces_spanmetrics_latency_bucket"}`},
		"start": {harness.FormatTime(now.Add(-time.Hour))}, "end": {harness.FormatTime(time.Now().Add(time.Minute))}}
}

// writeTenantA writes as tenant a through remote write, OTLP metrics over
// HTTP (:4318 and :9090) and gRPC, OTLP spans and a Pyroscope profile.
func writeTenantA(t *testing.T, v *harness.Vispyr, a string, now time.Time) {
	t.Helper()
	ms := now.UnixMilli()
	body, err := harness.EncodeWriteRequest(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:    harness.Labels("__name__", "a_rw_total", "job", "a", "only_a", "yes"),
		Samples:   []prompb.Sample{{Value: 1, Timestamp: ms}},
		Exemplars: []prompb.Exemplar{{Labels: harness.Labels("trace_id", "a1000000000000000000000000000001"), Value: 1, Timestamp: ms}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := harness.PostRemoteWrite(nil, v.MetricsURL("/api/v1/write"), body, http.Header{"X-Scope-OrgID": {a}}); err != nil || res.Status != 204 {
		t.Fatalf("remote write as %s: %v %+v", a, err, res)
	}
	post := func(url string, body []byte) {
		t.Helper()
		resp, err := tenantClient(a).Post(url, "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s as %s: %d %s", url, a, resp.StatusCode, b)
		}
	}
	for name, url := range map[string]string{
		"a_otlp_http": v.OTLPHTTPURL("/v1/metrics"), "a_otlp_prom": v.MetricsURL("/api/v1/otlp/v1/metrics"),
	} {
		b, err := pmetricotlp.NewExportRequestFromMetrics(gauge(name, now)).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		post(url, b)
	}
	conn, err := grpc.NewClient(v.OTLPGRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-scope-orgid", a), 20*time.Second)
	defer cancel()
	if _, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(gauge("a_otlp_grpc", now))); err != nil {
		t.Fatalf("OTLP gRPC metrics as %s: %v", a, err)
	}

	// A client span of svc-a calling svc-b's server span: span metrics and a
	// service-graph edge, with an exemplar of the trace.
	td := ptrace.NewTraces()
	for i, svc := range []string{"svc-a", "svc-b"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0xa1, 15: 1})
		sp.SetSpanID(pcommon.SpanID{0xa1, 7: byte(i + 1)})
		sp.SetName("GET /a")
		sp.SetKind(ptrace.SpanKindClient)
		if i == 1 {
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetParentSpanID(pcommon.SpanID{0xa1, 7: 1})
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-20 * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	post(v.OTLPHTTPURL("/v1/traces"), b)

	from, until := now.Add(-10*time.Second).Unix(), now.Unix()
	req, _ := http.NewRequest(http.MethodPost, "http://"+v.PyroscopeIngestAddr+"/ingest?format=folded&name=app-a%7Bonly_a%3Dyes%7D&from="+
		itoa(from)+"&until="+itoa(until), strings.NewReader("main;work 10\n"))
	req.Header.Set("Content-Type", "binary/octet-stream")
	resp, err := tenantClient(a).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("Pyroscope ingest as %s: %s", a, resp.Status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func gauge(name string, now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc-a")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	dp.SetDoubleValue(1)
	dp.Attributes().PutStr("only_a", "yes")
	return md
}

func federate(t *testing.T, c *http.Client, v *harness.Vispyr) string {
	t.Helper()
	resp, err := c.Get(v.MetricsURL("/federate?" + url.Values{"match[]": {`{only_a="yes"}`, `{service="svc-a"}`, `{client="svc-a"}`}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/federate: %s %s", resp.Status, b)
	}
	return string(b)
}

// expectProfiles checks whether tenant sees app-a's profile through label
// values (autocomplete) and a merged flame graph.
func expectProfiles(t *testing.T, v *harness.Vispyr, tenant string, want bool) {
	t.Helper()
	q := querierv1connect.NewQuerierServiceClient(tenantClient(tenant), "http://"+v.PyroscopeAddr)
	start, end := time.Now().Add(-time.Hour).UnixMilli(), time.Now().Add(time.Minute).UnixMilli()
	lv, err := q.LabelValues(context.Background(), connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name", Start: start, End: end}))
	if err != nil {
		t.Fatalf("profile label values as %q: %v", tenant, err)
	}
	if got := strings.Contains(strings.Join(lv.Msg.Names, ","), "app-a"); got != want {
		t.Errorf("tenant %q: service_name values %v, app-a shown: %v, want %v", tenant, lv.Msg.Names, got, want)
	}
	ln, err := q.LabelNames(context.Background(), connect.NewRequest(&typesv1.LabelNamesRequest{Start: start, End: end}))
	if err != nil {
		t.Fatalf("profile label names as %q: %v", tenant, err)
	}
	if got := strings.Contains(strings.Join(ln.Msg.Names, ","), "only_a"); got != want {
		t.Errorf("tenant %q: profile label names %v, only_a shown: %v, want %v", tenant, ln.Msg.Names, got, want)
	}
	fg, err := q.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: "process_cpu:cpu:nanoseconds:cpu:nanoseconds", LabelSelector: `{service_name="app-a"}`, Start: start, End: end}))
	if err != nil {
		t.Fatalf("flame graph as %q: %v", tenant, err)
	}
	if got := fg.Msg.Flamegraph.GetTotal() > 0; got != want {
		t.Errorf("tenant %q: app-a flame graph total %d, want shown: %v", tenant, fg.Msg.Flamegraph.GetTotal(), want)
	}
}

// expectTraces checks whether tenant sees svc-a's trace: by ID, by search
// and through tag autocomplete (Tempo v1 and v2).
func expectTraces(t *testing.T, v *harness.Vispyr, tenant string, id pcommon.TraceID, want bool) {
	t.Helper()
	c := tenantClient(tenant)
	get := func(path string) (int, string) {
		resp, err := c.Get("http://" + v.TempoAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	harness.Eventually(t, 10*time.Second, func() (bool, string) {
		code, body := get("/api/v2/traces/" + strings.ToLower(hexID(id)))
		return (code == 200) == want, "trace by ID as " + tenant + ": " + body[:min(len(body), 200)]
	})
	for _, path := range []string{
		"/api/search?q=" + url.QueryEscape(`{resource.service.name="svc-a"}`) + "&start=" + itoa(time.Now().Add(-time.Hour).Unix()) + "&end=" + itoa(time.Now().Add(time.Minute).Unix()),
		"/api/search/tag/service.name/values",
		"/api/v2/search/tag/resource.service.name/values",
	} {
		code, body := get(path)
		if code != 200 || strings.Contains(body, "svc-a") != want {
			t.Errorf("tenant %q: %s: %d %s; want svc-a shown: %v", tenant, path, code, body, want)
		}
	}
}

func hexID(id pcommon.TraceID) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 32)
	for _, b := range id {
		out = append(out, digits[b>>4], digits[b&15])
	}
	return string(out)
}
