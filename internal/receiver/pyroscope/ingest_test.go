package pyroscope_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/profiles"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope"
)

func post(t *testing.T, srv *httptest.Server, query, contentType string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/ingest?"+query, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// flame queries like Grafana does and returns the flame graph.
func flame(t *testing.T, srv *httptest.Server, typeID, selector string, start, end time.Time) *querierv1.FlameGraph {
	t.Helper()
	c := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
	resp, err := c.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: typeID, LabelSelector: selector, Start: start.UnixMilli(), End: end.UnixMilli(),
	}))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg.Flamegraph
}

func TestIngestTimeUnits(t *testing.T) {
	store := openStore(t, t.TempDir())
	defer store.Close()
	srv := server(t, store)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ unit, from string }{
		{"s", fmt.Sprint(at.Unix())},
		{"ms", fmt.Sprint(at.UnixMilli())},
		{"us", fmt.Sprint(at.UnixMicro())},
		{"ns", fmt.Sprint(at.UnixNano())},
	} {
		q := url.Values{"name": {"units-" + tc.unit}, "from": {tc.from}, "until": {tc.from}}
		if code, body := post(t, srv, q.Encode(), "binary/octet-stream", []byte("main;work 2\n")); code != 200 {
			t.Fatalf("%s: %d %s", tc.unit, code, body)
		}
		sel := `{service_name="units-` + tc.unit + `"}`
		if g := flame(t, srv, cpuType, sel, at.Add(-time.Second), at.Add(time.Second)); g.Total != 2*10_000_000 {
			t.Errorf("%s: total at the sent time = %d, want 2 samples of 10ms", tc.unit, g.Total)
		}
		if g := flame(t, srv, cpuType, sel, at.Add(time.Hour), at.Add(2*time.Hour)); g.Total != 0 {
			t.Errorf("%s: data found an hour later: unit misread", tc.unit)
		}
	}
}

func TestIngestFoldedFormats(t *testing.T) {
	store := openStore(t, t.TempDir())
	defer store.Close()
	srv := server(t, store)
	now := time.Now()
	from := fmt.Sprint(now.Unix())
	f := func(query, body, typeID, selector string, wantTotal int64) {
		t.Helper()
		if code, resp := post(t, srv, query+"&from="+from, "application/octet-stream", []byte(body)); code != 200 {
			t.Fatalf("%s: %d %s", query, code, resp)
		}
		g := flame(t, srv, typeID, selector, now.Add(-time.Minute), now.Add(time.Minute))
		if g.Total != wantTotal {
			t.Errorf("%s: total %d, want %d", query, g.Total, wantTotal)
		}
	}
	f("name=groups.cpu%7Benv%3Dprod%7D&sampleRate=100", "main;a 3\nmain;b 1\n", cpuType, `{service_name="groups",env="prod"}`, 4*10_000_000)
	f("name=lines&format=lines", "main;a\nmain;a\nmain;b\n", cpuType, `{service_name="lines"}`, 3*10_000_000)
	f("name=heap.inuse_space", "main;alloc 4096\n", "memory:inuse_space:bytes::", `{service_name="heap"}`, 4096)
	f("name=wallapp.wall&sampleRate=1000", "main;sleep 5\n", "wall:wall:nanoseconds:cpu:nanoseconds", `{service_name="wallapp"}`, 5*1_000_000)
}

// testPprof writes a CPU pprof with one span-labelled sample.
func testPprof(t *testing.T, gz bool) []byte {
	t.Helper()
	fn := []*profile.Function{{ID: 1, Name: "main.main"}, {ID: 2, Name: "main.handler"}, {ID: 3, Name: "main.inlined"}}
	loc := []*profile.Location{
		{ID: 1, Line: []profile.Line{{Function: fn[0]}}},
		{ID: 2, Line: []profile.Line{{Function: fn[2]}, {Function: fn[1]}}}, // inlined into handler
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10_000_000,
		TimeNanos: time.Now().UnixNano(),
		Function:  fn, Location: loc,
		Sample: []*profile.Sample{
			{Location: []*profile.Location{loc[1], loc[0]}, Value: []int64{2, 20_000_000}, Label: map[string][]string{"span_id": {"00000000000000ff"}}},
			{Location: []*profile.Location{loc[0]}, Value: []int64{1, 10_000_000}},
		},
	}
	var buf bytes.Buffer
	var err error
	if gz {
		err = p.Write(&buf)
	} else {
		err = p.WriteUncompressed(&buf)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestIngestPprofForms(t *testing.T) {
	store := openStore(t, t.TempDir())
	defer store.Close()
	srv := server(t, store)
	now := time.Now()
	check := func(app string) {
		t.Helper()
		g := flame(t, srv, cpuType, `{service_name="`+app+`"}`, now.Add(-time.Minute), now.Add(time.Minute))
		if g.Total != 30_000_000 {
			t.Errorf("%s: total %d, want 30ms", app, g.Total)
		}
		// Inlined frames become their own level under the function they were inlined into.
		if len(g.Levels) != 4 || g.Names[g.Levels[3].Values[3]] != "main.inlined" {
			t.Errorf("%s: want total/main/handler/inlined levels, got names %v levels %d", app, g.Names, len(g.Levels))
		}
		c := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
		sp, err := c.SelectMergeSpanProfile(context.Background(), connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
			ProfileTypeID: cpuType, LabelSelector: `{service_name="` + app + `"}`, SpanSelector: []string{"00000000000000ff"},
			Start: now.Add(-time.Minute).UnixMilli(), End: now.Add(time.Minute).UnixMilli(),
		}))
		if err != nil {
			t.Fatal(err)
		}
		if sp.Msg.Flamegraph.Total != 20_000_000 {
			t.Errorf("%s: span profile total %d, want the span's 20ms", app, sp.Msg.Flamegraph.Total)
		}
	}
	for _, gz := range []bool{true, false} {
		app := fmt.Sprintf("raw-gz-%v", gz)
		if code, body := post(t, srv, "format=pprof&name="+app, "application/octet-stream", testPprof(t, gz)); code != 200 {
			t.Fatalf("%s: %d %s", app, code, body)
		}
		check(app)
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	w, _ := mw.CreateFormFile("profile", "profile.pprof")
	w.Write(testPprof(t, true))
	w, _ = mw.CreateFormField("sample_type_config")
	w.Write([]byte(`{"samples":{"units":"samples","display-name":"cpu"}}`))
	mw.Close()
	if code, body := post(t, srv, "name=multipart&spyName=gospy", mw.FormDataContentType(), form.Bytes()); code != 200 {
		t.Fatalf("multipart: %d %s", code, body)
	}
	check("multipart")
}

func TestIngestErrors(t *testing.T) {
	store := openStore(t, t.TempDir())
	defer store.Close()
	srv := server(t, store)
	f := func(query, ct string, body []byte, wantCode int, wantMsg string) {
		t.Helper()
		code, msg := post(t, srv, query, ct, body)
		if code != wantCode || !strings.Contains(msg, wantMsg) {
			t.Errorf("%s: got %d %q, want %d mentioning %q", query, code, msg, wantCode, wantMsg)
		}
	}
	f("format=pprof&name=x", "application/octet-stream", []byte("not a profile"), 400, "pprof")
	f("format=pprof&name=x", "application/octet-stream", append([]byte{0x1f, 0x8b}, "garbage"...), 400, "gunzip")
	f("format=pprof", "application/octet-stream", testPprof(t, true), 400, "name")
	f("name=x{a=", "application/octet-stream", []byte("a 1"), 400, "name")
	f("name=x&from=yesterday", "application/octet-stream", []byte("a 1"), 400, "from")
	f("name=x", "application/octet-stream", []byte("a;b notanumber"), 400, "line 1")
	// Values whose scaled sample or total would wrap past int64 (a negative flame graph).
	f("name=x", "application/octet-stream", []byte("a;b 9223372036854775807"), 400, "line 1: value 9223372036854775807 overflows")
	f("name=x.alloc_objects", "application/octet-stream", []byte("a;b 9223372036854775807\na;c 1"), 400, "line 2")
	f("name=x.alloc_objects", "application/octet-stream", []byte("a;b 9223372036854775806\na;c 1"), 200, "")
	f("name=x&format=jfr", "application/octet-stream", []byte("x"), 422, "jfr")
	f("name=x&format=speedscope", "application/octet-stream", []byte("x"), 422, "not supported")
	f("name=x", "multipart/form-data; boundary=zz", []byte("--zz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--zz--\r\n"), 400, "profile")
	// What a web page can send cross-origin without a preflight.
	for _, ct := range []string{"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded"} {
		f("name=x", ct, []byte("a;b 1"), 415, "unsupported Content-Type")
	}
	f("name=x", "binary/octet-stream", []byte("a;b 1"), 200, "")
	f("name=x", "application/octet-stream", bytes.Repeat([]byte("a"), pyroscope.MaxBodyBytes+1), 413, "exceeds")

	resp, err := http.Get(srv.URL + "/ingest?name=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /ingest: %d, want 405", resp.StatusCode)
	}
}

// overloaded is a store that sheds load, to check the 429 mapping.
type overloaded struct{}

func (overloaded) ConsumeProfiles(context.Context, *profiles.Batch) error {
	return pipeline.ErrOverloaded
}

func TestIngestOverloadIs429(t *testing.T) {
	srv := httptest.NewServer(pyroscope.NewHandler(overloaded{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/ingest?name=x", "application/octet-stream", strings.NewReader("a;b 1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("overload: %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	c := pushv1connect.NewPusherServiceClient(http.DefaultClient, srv.URL)
	_, err = c.Push(context.Background(), connect.NewRequest(pushRequest(t, "x")))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted {
		t.Errorf("push overload: %v, want resource_exhausted", err)
	}
}

// TestIngestInflightLimit: with the shared in-flight budget used up, ingest is
// refused with 429 and Retry-After before the body is read.
func TestIngestInflightLimit(t *testing.T) {
	store := openStore(t, t.TempDir())
	defer store.Close()
	budget := limits.NewInflight(1 << 20)
	h := pyroscope.NewHandler(store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, pyroscope.WithInflight(budget))
	srv := httptest.NewServer(h)
	defer srv.Close()
	if code, body := post(t, srv, "name=small", "application/octet-stream", []byte("a;b 1")); code != 200 {
		t.Fatalf("small request with budget free: %d %s", code, body)
	}
	if !budget.Acquire(1 << 20) {
		t.Fatal("budget should be free again after the request")
	}
	resp, err := http.Post(srv.URL+"/ingest?name=x", "application/octet-stream", strings.NewReader("a;b 1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over budget: %d Retry-After %q, want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func pushRequest(t *testing.T, app string) *pushv1.PushRequest {
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: app}, {Name: "region", Value: "eu"}},
		Samples: []*pushv1.RawSample{{RawProfile: testPprof(t, true), ID: "x"}},
	}}}
}

// TestPushAPI pushes with connect's proto and JSON codecs, as SDKs and Alloy do.
func TestPushAPI(t *testing.T) {
	store := openStore(t, t.TempDir())
	defer store.Close()
	srv := server(t, store)
	now := time.Now()
	for _, tc := range []struct {
		app  string
		opts []connect.ClientOption
	}{
		{"push-proto", nil},
		{"push-json", []connect.ClientOption{connect.WithProtoJSON()}},
		{"push-gzip", []connect.ClientOption{connect.WithSendGzip()}},
	} {
		c := pushv1connect.NewPusherServiceClient(http.DefaultClient, srv.URL, tc.opts...)
		if _, err := c.Push(context.Background(), connect.NewRequest(pushRequest(t, tc.app))); err != nil {
			t.Fatalf("%s: %v", tc.app, err)
		}
		g := flame(t, srv, cpuType, `{service_name="`+tc.app+`",region="eu"}`, now.Add(-time.Minute), now.Add(time.Minute))
		if g.Total != 30_000_000 {
			t.Errorf("%s: total %d, want 30ms", tc.app, g.Total)
		}
	}
	c := pushv1connect.NewPusherServiceClient(http.DefaultClient, srv.URL)
	bad := pushRequest(t, "bad")
	bad.Series[0].Samples[0].RawProfile = []byte("nope")
	_, err := c.Push(context.Background(), connect.NewRequest(bad))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.Contains(ce.Message(), "pprof") {
		t.Errorf("bad push: %v, want invalid_argument naming pprof", err)
	}
}
