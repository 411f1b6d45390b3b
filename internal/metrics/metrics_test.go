package metrics

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/receiver/promwrite"
)

// testHead is the metrics.head openTest opens the store with;
// TestOwnHeadServesTheAPI runs tests again with it set to vispyr.
var testHead = config.HeadPrometheus

func openTest(t *testing.T, lim config.Limits) (*Storage, *httptest.Server) {
	t.Helper()
	cfg := config.Default()
	cfg.Metrics.Head = testHead
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	s, err := Open(cfg.Metrics, cfg.Limits, t.TempDir(), logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rw := promwrite.NewHandler(s.RemoteWriteAppender(slog.New(slog.DiscardHandler), reg), promwrite.Options{
		MaxRequestBytes: lim.MaxRequestBytes, MaxSeriesPerRequest: lim.MaxSeriesPerRequest,
		Inflight: limits.NewInflight(lim.MaxInflightBytes),
	}, logger, reg)
	srv := httptest.NewServer(s.NewAPI(APIOptions{Metrics: cfg.Metrics, RemoteWrite: rw}, logger, reg))
	t.Cleanup(srv.Close)
	return s, srv
}

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func get(t *testing.T, u string) apiResponse {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode %s: %v", u, err)
	}
	return r
}

// The original Vispyr agent's Alloy sends span metrics by OTLP; they must arrive
// under exactly the names its dashboard queries (COMPAT §9).
func TestOTLPSpanMetricsGetPrometheusNames(t *testing.T) {
	s, srv := openTest(t, config.Default().Limits)
	now := time.Now()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "alloy")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()

	h := ms.AppendEmpty()
	h.SetName("traces.spanmetrics.duration")
	h.SetUnit("ms")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := hist.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	dp.Attributes().PutStr("service.name", "checkout")
	dp.Attributes().PutStr("span.kind", "SPAN_KIND_SERVER")
	dp.ExplicitBounds().FromRaw([]float64{50, 100})
	dp.BucketCounts().FromRaw([]uint64{3, 1, 1})
	dp.SetCount(5)
	dp.SetSum(420)
	ex := dp.Exemplars().AppendEmpty()
	ex.SetTimestamp(pcommon.NewTimestampFromTime(now))
	ex.SetDoubleValue(180)
	ex.SetTraceID(pcommon.TraceID{0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
	ex.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})

	c := ms.AppendEmpty()
	c.SetName("traces.spanmetrics.calls")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	cdp := sum.DataPoints().AppendEmpty()
	cdp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	cdp.Attributes().PutStr("service.name", "checkout")
	cdp.SetIntValue(5)

	if err := s.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(now.Unix()+1, 10)
	q := func(expr string) string {
		r := get(t, srv.URL+"/api/v1/query?time="+ts+"&query="+url.QueryEscape(expr))
		if r.Status != "success" {
			t.Fatalf("%s: %s %s", expr, r.ErrorType, r.Error)
		}
		return string(r.Data)
	}
	if got := q(`traces_spanmetrics_duration_milliseconds_bucket{service_name="checkout",le="+Inf",job="alloy"}`); !strings.Contains(got, `"5"`) {
		t.Errorf("+Inf bucket: %s", got)
	}
	if got := q(`traces_spanmetrics_calls_total{service_name="checkout"}`); !strings.Contains(got, `"5"`) {
		t.Errorf("calls_total: %s", got)
	}
	r := get(t, srv.URL+"/api/v1/query_exemplars?start="+strconv.FormatInt(now.Unix()-60, 10)+"&end="+strconv.FormatInt(now.Unix()+60, 10)+
		"&query="+url.QueryEscape("traces_spanmetrics_duration_milliseconds_bucket"))
	if r.Status != "success" || !strings.Contains(string(r.Data), "abcd0102030405060708090a0b0c0d0e") {
		t.Errorf("exemplar with trace_id not returned: %s %s", r.Data, r.Error)
	}
}

func writeRequest(t *testing.T, series, samples int, base time.Time) []byte {
	t.Helper()
	var req prompb.WriteRequest
	for i := range series {
		ts := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "bench_metric"}, {Name: "series", Value: strconv.Itoa(i)},
		}}
		for j := range samples {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(j), Timestamp: base.Add(time.Duration(j) * time.Second).UnixMilli()})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

func postWrite(t *testing.T, u, contentType string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(string(body)))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRemoteWriteAndAlloyAlias(t *testing.T) {
	_, srv := openTest(t, config.Default().Limits)
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, path := range []string{"/api/v1/write", "/api/v1/metrics/write"} {
		code, body := postWrite(t, srv.URL+path, "application/x-protobuf", writeRequest(t, 3, 2, base))
		if code != http.StatusNoContent {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	r := get(t, srv.URL+"/api/v1/query?time="+strconv.FormatInt(base.Unix()+1, 10)+"&query=count(bench_metric)")
	if !strings.Contains(string(r.Data), `"3"`) {
		t.Fatalf("count(bench_metric) = %s", r.Data)
	}
}

func TestRemoteWriteRejectsBadInput(t *testing.T) {
	lim := config.Default().Limits
	lim.MaxRequestBytes = 4096
	lim.MaxSeriesPerRequest = 5
	_, srv := openTest(t, lim)
	good := writeRequest(t, 2, 1, time.Now())
	f := func(name, ct string, body []byte, want int, msg string) {
		t.Helper()
		code, got := postWrite(t, srv.URL+"/api/v1/write", ct, body)
		if code != want || !strings.Contains(got, msg) {
			t.Errorf("%s: got %d %q, want %d containing %q", name, code, got, want, msg)
		}
	}
	f("truncated snappy", "application/x-protobuf", good[:len(good)/2], http.StatusBadRequest, "snappy")
	f("garbage protobuf", "application/x-protobuf", snappy.Encode(nil, []byte("\x0a\xff\xff\xff\xff garbage")), http.StatusBadRequest, "protobuf")
	f("wrong content type", "application/json", good, http.StatusUnsupportedMediaType, "")
	f("too many series", "application/x-protobuf", writeRequest(t, 6, 1, time.Now()), http.StatusBadRequest, "limit of 5")
	f("oversized", "application/x-protobuf", writeRequest(t, 5, 100, time.Now()), http.StatusRequestEntityTooLarge, "limit")
	// Still serving.
	if code, body := postWrite(t, srv.URL+"/api/v1/write", "application/x-protobuf", good); code != http.StatusNoContent {
		t.Fatalf("good write after bad ones: %d %s", code, body)
	}
}

func TestQueryAPIShapesForGrafana(t *testing.T) {
	_, srv := openTest(t, config.Default().Limits)
	resp, err := http.PostForm(srv.URL+"/api/v1/query", url.Values{"query": {"1+1"}, "time": {"4"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != `{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}` {
		t.Errorf("Grafana health check answer: %s", b)
	}
	r := get(t, srv.URL+"/api/v1/status/buildinfo")
	var bi map[string]any
	_ = json.Unmarshal(r.Data, &bi)
	for _, k := range []string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} {
		if _, ok := bi[k]; !ok {
			t.Errorf("buildinfo lacks %q: %s", k, r.Data)
		}
	}
	if _, ok := bi["features"]; ok {
		t.Errorf("buildinfo has features; Grafana would take Vispyr for Mimir")
	}
	if bad := get(t, srv.URL+"/api/v1/query?query="+url.QueryEscape("sum(")); bad.Status != "error" || bad.ErrorType != "bad_data" {
		t.Errorf("invalid PromQL: %+v", bad)
	}
	// Browsers send Origin on every POST; Grafana in the browser and Vispyr's UI do.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/query", strings.NewReader("query=1%2B1&time=4"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://localhost:3000")
	cors, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("query with Origin: %v", err)
	}
	cors.Body.Close()
	if cors.StatusCode != http.StatusOK || cors.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("query with Origin: %d, CORS header %q", cors.StatusCode, cors.Header.Get("Access-Control-Allow-Origin"))
	}
	flags, _ := http.Get(srv.URL + "/api/v1/status/flags")
	flags.Body.Close()
	if flags.StatusCode != http.StatusNotFound {
		t.Errorf("/status/flags = %d, want 404 (Grafana would take Vispyr for Thanos)", flags.StatusCode)
	}
}
