package tempoapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traces"
)

var base = time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)

// fixture stores two traces: trace 0x0a (frontend GET /cart → backend query, which
// fails) and trace 0x0b (frontend GET /health, fine), one minute later.
func fixture(t *testing.T) (*traces.Store, *httptest.Server) {
	t.Helper()
	s, err := traces.Open(traces.Config{}, t.TempDir(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	send := func(td ptrace.Traces) {
		if err := s.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	send(traceA())
	send(traceB())
	srv := httptest.NewServer(NewHandler(s, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return s, srv
}

func addSpan(ss ptrace.ScopeSpans, trace byte, id, parent byte, name string, kind ptrace.SpanKind, startMs, durMs int) ptrace.Span {
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{15: trace})
	sp.SetSpanID(pcommon.SpanID{7: id})
	if parent != 0 {
		sp.SetParentSpanID(pcommon.SpanID{7: parent})
	}
	sp.SetName(name)
	sp.SetKind(kind)
	st := base.Add(time.Duration(startMs) * time.Millisecond)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(durMs) * time.Millisecond)))
	return sp
}

func service(td ptrace.Traces, name string) ptrace.ScopeSpans {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", name)
	return rs.ScopeSpans().AppendEmpty()
}

func traceA() ptrace.Traces {
	td := ptrace.NewTraces()
	fe := service(td, "frontend")
	root := addSpan(fe, 0x0a, 1, 0, "GET /cart", ptrace.SpanKindServer, 0, 120)
	root.Attributes().PutStr("http.method", "GET")
	root.Attributes().PutInt("http.status_code", 500)
	be := service(td, "backend")
	q := addSpan(be, 0x0a, 2, 1, "SELECT cart", ptrace.SpanKindClient, 10, 100)
	q.Status().SetCode(ptrace.StatusCodeError)
	q.Attributes().PutStr("db.system", "postgresql")
	return td
}

func traceB() ptrace.Traces {
	td := ptrace.NewTraces()
	fe := service(td, "frontend")
	root := addSpan(fe, 0x0b, 3, 0, "GET /health", ptrace.SpanKindServer, 60_000, 2)
	root.Attributes().PutStr("http.method", "GET")
	root.Attributes().PutInt("http.status_code", 200)
	return td
}

func get(t *testing.T, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// compact re-encodes JSON without whitespace so expectations can be written readably.
func compact(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func expectJSON(t *testing.T, srv *httptest.Server, path string, want string) {
	t.Helper()
	code, body, _ := get(t, srv.URL+path)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if got, w := compact(t, body), compact(t, want); got != w {
		t.Errorf("GET %s\n got %s\nwant %s", path, got, w)
	}
}

func TestEchoAndBuildInfo(t *testing.T) {
	_, srv := fixture(t)
	if code, body, _ := get(t, srv.URL+"/api/echo"); code != 200 || body != "echo" {
		t.Fatalf("echo: %d %q", code, body)
	}
	_, body, _ := get(t, srv.URL+"/api/status/buildinfo")
	var bi struct{ Version string }
	json.Unmarshal([]byte(body), &bi)
	if bi.Version != "2.7.0" {
		t.Fatalf("buildinfo version %q", bi.Version)
	}
}

func TestTraceByIDProtobufDecodesAsOTLP(t *testing.T) {
	_, srv := fixture(t)
	want, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(traceA())
	for _, path := range []string{"/api/traces/a", "/api/traces/0000000000000000000000000000000a", "/api/v2/traces/a"} {
		code, body, hdr := get(t, srv.URL+path, "Accept", "application/protobuf")
		if code != 200 || hdr.Get("Content-Type") != "application/protobuf" {
			t.Fatalf("%s: %d %s", path, code, hdr.Get("Content-Type"))
		}
		raw := []byte(body)
		if strings.HasPrefix(path, "/api/v2/") {
			// TraceByIDResponse: field 1 holds the Trace
			num, typ, n := protowire.ConsumeTag(raw)
			if num != 1 || typ != protowire.BytesType {
				t.Fatalf("v2 body starts with field %d type %d", num, typ)
			}
			inner, m := protowire.ConsumeBytes(raw[n:])
			if m < 0 || n+m != len(raw) {
				t.Fatalf("v2 body has trailing or broken fields")
			}
			raw = inner
		}
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(raw)
		if err != nil {
			t.Fatalf("%s: not OTLP TracesData: %v", path, err)
		}
		got, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if string(got) != string(want) {
			t.Fatalf("%s returned\n%s\nwant\n%s", path, got, want)
		}
	}
}

func TestTraceByIDJSON(t *testing.T) {
	_, srv := fixture(t)
	code, body, _ := get(t, srv.URL+"/api/traces/b")
	if code != 200 {
		t.Fatal(code, body)
	}
	want := `{"batches":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"frontend"}}]},
	"scopeSpans":[{"scope":{},"spans":[{"traceId":"0000000000000000000000000000000b","spanId":"0000000000000003",
	"name":"GET /health","kind":2,"startTimeUnixNano":"1795413660000000000",
	"endTimeUnixNano":"1795413660002000000","attributes":[{"key":"http.method","value":{"stringValue":"GET"}},
	{"key":"http.status_code","value":{"intValue":"200"}}],"status":{}}]}]}]}`
	if compact(t, body) != compact(t, want) {
		t.Fatalf("got %s", body)
	}
	code, body, _ = get(t, srv.URL+"/api/v2/traces/b")
	if code != 200 || !strings.HasPrefix(body, `{"trace":{"resourceSpans":[`) || !strings.HasSuffix(body, `"status":"COMPLETE"}`) {
		t.Fatalf("v2 json: %d %s", code, body)
	}
}

func TestTraceByIDErrors(t *testing.T) {
	_, srv := fixture(t)
	f := func(path string, wantCode int, wantBody string) {
		t.Helper()
		code, body, _ := get(t, srv.URL+path)
		if code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("GET %s = %d %q, want %d containing %q", path, code, body, wantCode, wantBody)
		}
	}
	f("/api/traces/c", 404, "trace not found")
	f("/api/v2/traces/c", 404, "trace not found")
	f("/api/traces/xyz", 400, "not hexadecimal")
	f("/api/traces/"+strings.Repeat("a", 33), 400, "1 to 32 hex digits")
	f("/api/traces/a?start=yesterday", 400, "invalid start")
	// another tenant does not see the default tenant's trace
	code, _, _ := get(t, srv.URL+"/api/traces/a", "X-Scope-OrgID", "other")
	if code != 404 {
		t.Errorf("other tenant got %d", code)
	}
}

func TestSearchExactShape(t *testing.T) {
	_, srv := fixture(t)
	q := "/api/search?q=" + urlq(`{resource.service.name="backend" && status=error}`)
	expectJSON(t, srv, q, `{"traces":[{"traceID":"a","rootServiceName":"frontend","rootTraceName":"GET /cart",
		"startTimeUnixNano":"1795413600000000000","durationMs":120,
		"spanSets":[{"spans":[{"spanID":"0000000000000002","name":"SELECT cart","startTimeUnixNano":"1795413600010000000",
		"durationNanos":"100000000","attributes":[{"key":"service.name","value":{"stringValue":"backend"}},
		{"key":"status","value":{"stringValue":"error"}}]}],"matched":1}],
		"serviceStats":{"backend":{"spanCount":1,"errorCount":1},"frontend":{"spanCount":1}}}],
		"metrics":{"inspectedTraces":1,"inspectedSpans":"2","completedJobs":1,"totalJobs":1}}`)
	// inspected counts only the trace read: the other has no error span, which
	// the head's row check rules out without decoding it.
}

func urlq(s string) string {
	return strings.NewReplacer(" ", "%20", "&", "%26", "=", "%3D", "\"", "%22", "{", "%7B", "}", "%7D", "|", "%7C", ">", "%3E").Replace(s)
}

type searchResult struct {
	Traces []struct {
		TraceID         string
		RootServiceName string
		SpanSets        []struct {
			Spans   []struct{ SpanID string }
			Matched int
		}
	}
}

func searchIDs(t *testing.T, srv *httptest.Server, params string) []string {
	t.Helper()
	code, body, _ := get(t, srv.URL+"/api/search?"+params)
	if code != 200 {
		t.Fatalf("search %s: %d %s", params, code, body)
	}
	var r searchResult
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tr := range r.Traces {
		ids = append(ids, tr.TraceID)
	}
	return ids
}

func TestSearchParameters(t *testing.T) {
	s, srv := fixture(t)
	f := func(params string, want ...string) {
		t.Helper()
		got := searchIDs(t, srv, params)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("search %s = %v, want %v", params, got, want)
		}
	}
	f("", "b", "a") // most recent first
	f("q="+urlq("{}"), "b", "a")
	f("limit=1", "b")
	f("q="+urlq(`{name="GET /health"}`), "b")
	f("q="+urlq(`{duration > 50ms}`), "a")
	f("q="+urlq(`{span.http.status_code >= 500}`), "a")
	f("tags="+urlq(`http.status_code=500`), "a")
	f("tags="+urlq(`service.name=backend`), "a")
	f("minDuration=100ms", "a")
	f("maxDuration=10ms", "b")
	f("start=1795413650&end=1795413700", "b")
	f("start=1795413500&end=1795413620", "a")
	f("q=" + urlq(`{resource.service.name="nope"}`))
	// the same results once the head is cut to a block
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	f("", "b", "a")
	f("q="+urlq(`{span.http.status_code >= 500}`), "a")
	f("q=" + urlq(`{resource.service.name="nope"}`))
	f("start=1795413650&end=1795413700", "b")
}

func TestSearchRejectsBadInput(t *testing.T) {
	_, srv := fixture(t)
	f := func(params, want string) {
		t.Helper()
		code, body, _ := get(t, srv.URL+"/api/search?"+params)
		if code != 400 || !strings.Contains(body, want) {
			t.Errorf("search %s = %d %q, want 400 containing %q", params, code, body, want)
		}
	}
	f("q="+urlq(`{name=`), "invalid TraceQL query")
	f("limit=abc", "invalid limit")
	f("minDuration=fast", "invalid minDuration")
	f("tags=novalue", "invalid tags")
	f("start=10&end=5", "end is before start")
	// Tempo's query-frontend bounds, with its messages.
	f("start=1000&end=605801", "range specified by start and end exceeds 168h0m0s. received start=1000 end=605801")
	f("limit=262145", "limit 262145 exceeds max limit 262144")
	f("spss=101", "spans per span set exceeds 100. received 101")
	if code, body, _ := get(t, srv.URL+"/api/search?start=1000&end=605800&limit=262144&spss=100"); code != 200 {
		t.Errorf("search at the bounds: %d %s, want 200", code, body)
	}
}

func TestSearchSpansPerSpanset(t *testing.T) {
	_, srv := fixture(t)
	code, body, _ := get(t, srv.URL+"/api/search?spss=1&q="+urlq(`{trace:id != "x"}`))
	if code != 200 {
		code, body, _ = get(t, srv.URL+"/api/search?spss=1&q="+urlq(`{}`))
	}
	var r searchResult
	json.Unmarshal([]byte(body), &r)
	for _, tr := range r.Traces {
		for _, ss := range tr.SpanSets {
			if len(ss.Spans) > 1 {
				t.Fatalf("spss=1 returned %d spans: %s", len(ss.Spans), body)
			}
		}
	}
	if code != 200 || len(r.Traces) != 2 || r.Traces[1].SpanSets[0].Matched != 2 {
		t.Fatalf("search with spss: %d %s", code, body)
	}
}

func TestReadAfterWriteAndSplitTrace(t *testing.T) {
	s, srv := fixture(t)
	// more spans of trace a arrive after its first part was cut into a block
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	td := ptrace.NewTraces()
	addSpan(service(td, "payments"), 0x0a, 9, 2, "charge", ptrace.SpanKindClient, 20, 30)
	if err := s.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	// searchable at once, from the head
	if got := searchIDs(t, srv, "q="+urlq(`{resource.service.name="payments"}`)); len(got) != 1 || got[0] != "a" {
		t.Fatalf("new span not searchable right after ack: %v", got)
	}
	_, body, _ := get(t, srv.URL+"/api/traces/a", "Accept", "application/protobuf")
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces([]byte(body))
	if err != nil || td.SpanCount() != 3 {
		t.Fatalf("split trace returned %d spans (%v), want 3", td.SpanCount(), err)
	}
}

func TestTags(t *testing.T) {
	s, srv := fixture(t)
	for _, flushed := range []bool{false, true} {
		if flushed {
			s.Flush(context.Background())
		}
		expectJSON(t, srv, "/api/search/tags", `{"tagNames":["db.system","http.method","http.status_code","service.name"]}`)
		expectJSON(t, srv, "/api/v2/search/tags?scope=resource", `{"scopes":[{"name":"resource","tags":["service.name"]}]}`)
		expectJSON(t, srv, "/api/v2/search/tags?scope=span", `{"scopes":[{"name":"span","tags":["db.system","http.method","http.status_code"]}]}`)
		expectJSON(t, srv, "/api/search/tag/service.name/values", `{"tagValues":["backend","frontend"]}`)
		expectJSON(t, srv, "/api/v2/search/tag/resource.service.name/values",
			`{"tagValues":[{"type":"string","value":"backend"},{"type":"string","value":"frontend"}]}`)
		// Grafana double-encodes the tag in the path
		expectJSON(t, srv, "/api/v2/search/tag/span.http.status_code/values",
			`{"tagValues":[{"type":"int","value":"200"},{"type":"int","value":"500"}]}`)
		expectJSON(t, srv, "/api/v2/search/tag/span%252Ehttp%252Emethod/values", `{"tagValues":[{"type":"string","value":"GET"}]}`)
		expectJSON(t, srv, "/api/v2/search/tag/status/values",
			`{"tagValues":[{"type":"keyword","value":"error"},{"type":"keyword","value":"ok"},{"type":"keyword","value":"unset"}]}`)
		expectJSON(t, srv, "/api/v2/search/tag/name/values?q="+urlq(`{resource.service.name="frontend"}`),
			`{"tagValues":[{"type":"string","value":"GET /cart"},{"type":"string","value":"GET /health"}]}`)
		expectJSON(t, srv, "/api/v2/search/tag/span.http.status_code/values?q="+urlq(`{duration>50ms}`),
			`{"tagValues":[{"type":"int","value":"500"}]}`)
	}
	code, body, _ := get(t, srv.URL+"/api/v2/search/tag/nonsense/values")
	if code != 400 || !strings.Contains(body, "invalid tag") {
		t.Fatalf("bad tag: %d %s", code, body)
	}
	_ = pipeline.DefaultTenant
}

type rangeResp struct {
	Series []struct {
		Labels []struct {
			Key   string
			Value struct{ StringValue string }
		}
		Samples []struct {
			TimestampMs string
			Value       float64
		}
		Exemplars []struct {
			Labels []struct {
				Key   string
				Value struct{ StringValue string }
			}
		}
	}
	Status string
}

func TestMetricsQueryRange(t *testing.T) {
	s, srv := fixture(t)
	for _, flushed := range []bool{false, true} {
		if flushed {
			s.Flush(context.Background())
		}
		code, body, _ := get(t, srv.URL+"/api/metrics/query_range?start=1795413590&end=1795413670&step=30s&exemplars=5&q="+
			urlq(`{} | count_over_time() by (resource.service.name)`))
		if code != 200 {
			t.Fatalf("query_range: %d %s", code, body)
		}
		var r rangeResp
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		totals := map[string]float64{}
		exemplars := 0
		for _, se := range r.Series {
			if len(se.Labels) != 1 || se.Labels[0].Key != "resource.service.name" {
				t.Fatalf("labels %+v", se.Labels)
			}
			for _, smp := range se.Samples {
				totals[se.Labels[0].Value.StringValue] += smp.Value
			}
			for _, ex := range se.Exemplars {
				if ex.Labels[0].Key == "trace:id" {
					exemplars++
				}
			}
		}
		if r.Status != "COMPLETE" || totals["frontend"] != 2 || totals["backend"] != 1 || exemplars == 0 {
			t.Fatalf("flushed=%v: totals %v, %d exemplars, body %s", flushed, totals, exemplars, body)
		}
		expectJSON(t, srv, "/api/metrics/query?start=1795413590&end=1795413670&q="+urlq(`{status=error} | count_over_time()`),
			`{"series":[{"labels":[{"key":"__name__","value":{"stringValue":"count_over_time"}}],"value":1}]}`)
	}
	f := func(params, want string) {
		t.Helper()
		code, body, _ := get(t, srv.URL+"/api/metrics/query_range?"+params)
		if code != 400 || !strings.Contains(body, want) {
			t.Errorf("query_range %s = %d %q, want 400 containing %q", params, code, body, want)
		}
	}
	f("q="+urlq(`{}`), "no metrics function")
	f("", "missing q")
	f("q="+urlq(`{} | rate()`)+"&step=often", "invalid step")
	f("q="+urlq(`{} | rate()`)+"&start=soon", "invalid start")
}

func TestStructuralQueryOverTraceSplitAcrossCut(t *testing.T) {
	s, srv := fixture(t)
	// trace a's frontend root and backend child are in a block; a grandchild in the
	// head. A structural query needs both pieces at once.
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	td := ptrace.NewTraces()
	addSpan(service(td, "payments"), 0x0a, 9, 2, "charge", ptrace.SpanKindClient, 20, 30)
	if err := s.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`{resource.service.name="backend"} > {resource.service.name="payments"}`,
		`{resource.service.name="frontend"} && {resource.service.name="payments"}`,
		`{} | count() = 3`,
	} {
		if got := searchIDs(t, srv, "q="+urlq(q)); len(got) != 1 || got[0] != "a" {
			t.Errorf("%s over a split trace = %v, want [a]", q, got)
		}
	}
}
