package faro

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// captured records what reached the trace and metrics pipelines (the real
// stores behind them are exercised by test/e2e/faro).
type captured struct {
	mu      sync.Mutex
	spans   int
	metrics []pmetric.Metrics
}

func (c *captured) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.spans += td.SpanCount()
	return nil
}

func (c *captured) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.metrics = append(c.metrics, md)
	return nil
}

func newReceiver(t *testing.T, cfg Config) (*httptest.Server, *logs.Store, *captured) {
	t.Helper()
	st, err := logs.Open(t.TempDir(), logs.Config{}, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &captured{}
	srv := httptest.NewServer(NewHandler(cfg, Sinks{Logs: st, Traces: c, Metrics: c}, discard))
	t.Cleanup(srv.Close)
	return srv, st, c
}

func post(t *testing.T, url string, body []byte, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/collect", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func readPayload(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/payload.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stored returns every line of kind in the tenant, with its stream labels.
func stored(t *testing.T, st *logs.Store, tenant, kind string) (ls []labels.Labels, es []logs.Entry) {
	t.Helper()
	it, err := st.Select(context.Background(), tenant, logs.SelectParams{
		Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "kind", kind)},
		Start:    0, End: 1 << 62, Direction: logs.Forward})
	if err != nil {
		t.Fatal(err)
	}
	for it.Next() {
		l, e := it.At()
		ls, es = append(ls, l), append(es, e)
	}
	return ls, es
}

// meta is what every line of testdata/payload.json ends with.
const metaKV = ` sdk_name=@grafana/faro-core sdk_version=2.12.1 sdk_integrations=@grafana/faro-web-tracing:2.12.1` +
	` app_name=shop-frontend app_version=1.4.0 app_environment=production user_id=u-17 user_attr_plan=pro` +
	` session_id=sess-42 session_attr_previousSession=sess-41 page_id=pg-1 page_url="https://shop.example.com/cart?x=1"` +
	` browser_name=Chrome browser_version=126 browser_os=Linux browser_mobile=false` +
	` browser_userAgent="Mozilla/5.0 (X11; Linux x86_64)" browser_language=en-US browser_viewportWidth=1440` +
	` browser_viewportHeight=900 view_name=cart`

const traceKV = ` traceID=0af7651916cd43dd8448eb211c80319c spanID=b7ad6b7169203331`

func TestCollectStoresEachKind(t *testing.T) {
	cfg := Defaults()
	cfg.ExtraLogLabels = map[string]string{"app_environment": "", "team": "web"}
	srv, st, c := newReceiver(t, cfg)
	resp, body := post(t, srv.URL, readPayload(t), map[string]string{"X-Scope-OrgID": "shop"})
	if resp.StatusCode != http.StatusAccepted || body != "ok" {
		t.Fatalf("POST /collect: %d %q, want 202 ok", resp.StatusCode, body)
	}
	want := map[string][]string{
		"log": {`timestamp="2026-12-06 02:00:00.123 +0000 UTC" kind=log message="cart loaded in 120 ms" level=info context_count=4 context_items=3` + traceKV + metaKV},
		"exception": {`timestamp="2026-12-06 02:00:01 +0000 UTC" kind=exception type=TypeError value="cannot read properties of undefined (reading 'price')"` +
			` stacktrace="TypeError: cannot read properties of undefined (reading 'price')\n  at total (https://shop.example.com/app.js:10:5)\n  at render (cart|https://shop.example.com/app.js:42:7)"` +
			fmt.Sprintf(" hash=%s", (exception{Value: "cannot read properties of undefined (reading 'price')"}).keyVals().get("hash")) +
			` context_component=Cart` + traceKV + metaKV},
		"measurement": {
			`timestamp="2026-12-06 02:00:02 +0000 UTC" kind=measurement type=web-vitals lcp=1830.500000 context_rating=good value_lcp=1830.5` + metaKV,
			`timestamp="2026-12-06 02:00:02 +0000 UTC" kind=measurement type=custom basket_total=99.900000 value_basket_total=99.9` + metaKV,
		},
		"event": {`timestamp="2026-12-06 02:00:03 +0000 UTC" kind=event event_name=checkout_clicked event_domain=ui event_data_button=primary` + metaKV},
	}
	for kind, lines := range want {
		ls, es := stored(t, st, "shop", kind)
		if len(es) != len(lines) {
			t.Fatalf("kind %s: %d lines stored, want %d", kind, len(es), len(lines))
		}
		for i, e := range es {
			if e.Line != lines[i] {
				t.Errorf("kind %s line:\n got %s\nwant %s", kind, e.Line, lines[i])
			}
			wantLabels := labels.FromStrings("app_environment", "production", "app_name", "shop-frontend",
				"kind", kind, "service_name", "shop-frontend", "team", "web")
			if !labels.Equal(ls[i], wantLabels) {
				t.Errorf("kind %s labels %v, want %v", kind, ls[i], wantLabels)
			}
		}
		m := es[0].Metadata
		switch kind {
		case "log", "exception":
			if m.Get("trace_id") != "0af7651916cd43dd8448eb211c80319c" || m.Get("span_id") != "b7ad6b7169203331" {
				t.Errorf("kind %s metadata %v: want the trace context", kind, m)
			}
		}
		if lvl := map[string]string{"log": "info", "exception": "error"}[kind]; lvl != "" && m.Get("detected_level") != lvl {
			t.Errorf("kind %s detected_level %q, want %q", kind, m.Get("detected_level"), lvl)
		}
	}
	if c.spans != 1 {
		t.Errorf("%d spans reached the trace pipeline, want 1", c.spans)
	}
	got := map[string]float64{}
	for _, md := range c.metrics {
		rm := md.ResourceMetrics().At(0)
		if svc, _ := rm.Resource().Attributes().Get("service.name"); svc.Str() != "shop-frontend" {
			t.Errorf("gauge resource service.name %q", svc.Str())
		}
		ms := rm.ScopeMetrics().At(0).Metrics()
		for i := range ms.Len() {
			dp := ms.At(i).Gauge().DataPoints().At(0)
			got[ms.At(i).Name()] = dp.DoubleValue()
			if env, _ := dp.Attributes().Get("app_environment"); env.Str() != "production" {
				t.Errorf("%s: app_environment %q", ms.At(i).Name(), env.Str())
			}
		}
	}
	if len(got) != 1 || got["faro_web_vitals_lcp"] != 1830.5 {
		t.Errorf("gauges %v, want only faro_web_vitals_lcp=1830.5 (custom measurements are lines only)", got)
	}
}

func TestCollectJSONFormat(t *testing.T) {
	cfg := Defaults()
	cfg.LogFormat = FormatJSON
	srv, st, _ := newReceiver(t, cfg)
	if resp, body := post(t, srv.URL, readPayload(t), nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	_, es := stored(t, st, pipeline.DefaultTenant, "measurement")
	if len(es) != 2 || !strings.HasPrefix(es[0].Line, `{"app_environment":"production","app_name":"shop-frontend"`) ||
		!strings.Contains(es[0].Line, `"value_lcp":1830.5`) {
		t.Fatalf("json lines %v", es)
	}
}

func TestCollectRefusals(t *testing.T) {
	cfg := Defaults()
	cfg.APIKey = "s3cret"
	cfg.MaxPayloadBytes = 4096
	cfg.RateLimiting.Rate, cfg.RateLimiting.BurstSize = 0.001, 8
	cfg.CORSAllowedOrigins = []string{"https://shop.example.com"}
	srv, _, _ := newReceiver(t, cfg)
	small := []byte(`{"meta":{"app":{"name":"a"}},"logs":[{"message":"hi","level":"info"}]}`)
	key := map[string]string{"x-api-key": "s3cret"}
	check := func(name string, body []byte, hdr map[string]string, code int, msg string) *http.Response {
		t.Helper()
		resp, got := post(t, srv.URL, body, hdr)
		if resp.StatusCode != code || !strings.Contains(got, msg) {
			t.Errorf("%s: %d %q, want %d containing %q", name, resp.StatusCode, got, code, msg)
		}
		return resp
	}
	check("no key", small, nil, 401, "API key not provided or incorrect")
	check("wrong key", small, map[string]string{"x-api-key": "nope"}, 401, "API key")
	check("right key", small, key, 202, "ok")
	check("too big", bytes.Repeat([]byte(" "), 5000), key, 413, "max_payload_bytes")
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(small)
	zw.Close()
	check("gzip (requestCompression)", zipped.Bytes(), map[string]string{"x-api-key": "s3cret", "Content-Encoding": "gzip"}, 202, "ok")
	zipped.Reset()
	zw = gzip.NewWriter(&zipped)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 5000))
	zw.Close()
	check("gzip bomb", zipped.Bytes(), map[string]string{"x-api-key": "s3cret", "Content-Encoding": "gzip"}, 413, "max_payload_bytes")
	check("not json", []byte(`{"logs":[{"message":1}]}`), key, 400, "decode faro payload")
	check("bad traces", []byte(`{"traces":{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}}`), key, 400, "traces")

	// CORS: the allowed origin's preflight is answered with the headers the SDK sends.
	pre, _ := http.NewRequest("OPTIONS", srv.URL+"/collect", nil)
	pre.Header.Set("Origin", "https://shop.example.com")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-encoding,content-type,idempotency-key,x-api-key,x-faro-session-id")
	resp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "x-api-key") {
		t.Errorf("preflight from an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	pre.Header.Set("Origin", "https://evil.example.com")
	resp, err = http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed: %v", resp.Header)
	}

	// The burst of 8 is spent by the 8 requests above: the next is refused.
	r := check("rate limited", small, key, 429, "rate_limiting")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// failingLogs is a log pipeline that refuses every push with err.
type failingLogs struct{ err error }

func (f failingLogs) ConsumeLogs(context.Context, *logpush.Request) error { return f.err }

func TestCollectStoreErrors(t *testing.T) {
	for _, tc := range []struct {
		err   error
		code  int
		retry bool
	}{
		{fmt.Errorf("log store: %w", pipeline.ErrOverloaded), 429, true},
		{fmt.Errorf("log store refuses writes: %w", pipeline.ErrDiskFull), 503, true},
		{pipeline.Invalid(fmt.Errorf("line too long")), 400, false},
		{fmt.Errorf("boom"), 500, false},
	} {
		srv := httptest.NewServer(NewHandler(Defaults(), Sinks{Logs: failingLogs{tc.err}}, discard))
		resp, body := post(t, srv.URL, readPayload(t), nil)
		srv.Close()
		if resp.StatusCode != tc.code || (resp.Header.Get("Retry-After") != "") != tc.retry || !strings.Contains(body, tc.err.Error()) {
			t.Errorf("%v: answered %d %q Retry-After=%q, want %d", tc.err, resp.StatusCode, body, resp.Header.Get("Retry-After"), tc.code)
		}
	}
}

func TestVitalClockNeverRepeats(t *testing.T) {
	var c vitalClock
	a, b := c.stamp("s", 1000), c.stamp("s", 1000)
	if a != 1000 || b != 1001 || c.stamp("other", 1000) != 1000 {
		t.Fatalf("stamps %d %d: want 1000 1001, other series independent", a, b)
	}
}
