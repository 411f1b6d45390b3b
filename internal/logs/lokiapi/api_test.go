package lokiapi

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/receiver/loki"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fixture is a log store behind Loki's push receiver and this query API on
// one server, as :3100 serves them.
type fixture struct {
	srv   *httptest.Server
	store *logs.Store
	api   *API
	base  time.Time // a whole minute, ten minutes ago
}

func newFixture(t *testing.T, lim logs.QueryLimits) *fixture {
	t.Helper()
	st, err := logs.Open(t.TempDir(), logs.Config{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mux := http.NewServeMux()
	loki.NewHandler(st, 1<<20, discard()).Register(mux)
	api := New(st, lim, discard())
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, store: st, api: api, base: time.Now().Add(-10 * time.Minute).Truncate(time.Minute)}
}

// line is one pushed entry: stream labels, offset from base, text, metadata.
type line struct {
	stream string // JSON object of labels
	at     time.Duration
	text   string
	meta   string // JSON object or ""
}

// push sends lines as Loki's JSON push body, one stream per line.
func (f *fixture) push(t *testing.T, tenant string, lines ...line) {
	t.Helper()
	var parts []string
	for _, l := range lines {
		ts := strconv.FormatInt(f.base.Add(l.at).UnixNano(), 10)
		text, _ := json.Marshal(l.text)
		v := fmt.Sprintf(`[%q,%s]`, ts, text)
		if l.meta != "" {
			v = fmt.Sprintf(`[%q,%s,%s]`, ts, text, l.meta)
		}
		parts = append(parts, fmt.Sprintf(`{"stream":%s,"values":[%s]}`, l.stream, v))
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/loki/api/v1/push", strings.NewReader(`{"streams":[`+strings.Join(parts, ",")+`]}`))
	req.Header.Set("Content-Type", "application/json")
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("push: %d %s", resp.StatusCode, b)
	}
}

// reply is an answer's status and body.
type reply struct {
	code int
	body string
}

// get calls path with params (GET).
func (f *fixture) get(t *testing.T, path string, params url.Values, hdr ...string) reply {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path+"?"+params.Encode(), nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b)}
}

// post sends params form-encoded, as Grafana does with httpMethod POST.
func (f *fixture) post(t *testing.T, path string, params url.Values) reply {
	t.Helper()
	resp, err := http.PostForm(f.srv.URL+path, params)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b)}
}

func (f *fixture) ns(d time.Duration) string { return strconv.FormatInt(f.base.Add(d).UnixNano(), 10) }

type streamsResp struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string   `json:"resultType"`
		Flags      []string `json:"encodingFlags"`
		Result     []struct {
			Stream map[string]string `json:"stream"`
			Values [][]json.RawMessage
		} `json:"result"`
		Stats struct {
			Summary struct {
				TotalLinesProcessed  int64   `json:"totalLinesProcessed"`
				TotalBytesProcessed  int64   `json:"totalBytesProcessed"`
				TotalEntriesReturned int     `json:"totalEntriesReturned"`
				ExecTime             float64 `json:"execTime"`
			} `json:"summary"`
		} `json:"stats"`
	} `json:"data"`
}

// lines flattens a streams answer to "app:line" in answer order.
func (r streamsResp) lines() []string {
	var out []string
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			var text string
			json.Unmarshal(v[1], &text)
			out = append(out, s.Stream["app"]+":"+text)
		}
	}
	return out
}

func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

func shopLines() []line {
	return []line{
		{`{"app":"shop","env":"prod"}`, 1 * time.Second, "level=info msg=start", ""},
		{`{"app":"shop","env":"prod"}`, 2 * time.Second, "level=error msg=boom status=500", `{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`},
		{`{"app":"shop","env":"prod"}`, 3 * time.Second, "level=info msg=ok status=200", ""},
		{`{"app":"cart","env":"prod"}`, 4 * time.Second, "level=error msg=empty status=404", ""},
		{`{"app":"cart","env":"dev"}`, 65 * time.Second, "level=info msg=late", ""},
	}
}

func TestQueryRangeStreamsAsLoki(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", shopLines()...)
	q := url.Values{"query": {`{env="prod"} |= "status"`}, "start": {f.ns(0)}, "end": {f.ns(time.Hour)}, "limit": {"100"}}

	r := decode[streamsResp](t, f.get(t, "/loki/api/v1/query_range", q))
	if r.Status != "success" || r.Data.ResultType != "streams" {
		t.Fatalf("%+v", r)
	}
	// Backward by default: newest first.
	if got := strings.Join(r.lines(), "|"); got != "cart:level=error msg=empty status=404|shop:level=info msg=ok status=200|shop:level=error msg=boom status=500" &&
		got != "shop:level=info msg=ok status=200|shop:level=error msg=boom status=500|cart:level=error msg=empty status=404" {
		t.Fatalf("lines %q", got)
	}
	if s := r.Data.Stats.Summary; s.TotalLinesProcessed != 3 || s.TotalEntriesReturned != 3 || s.TotalBytesProcessed == 0 {
		t.Fatalf("stats %+v", s)
	}
	// The boom line carries trace_id: without categorize-labels Loki folds
	// structured metadata into the stream's labels, so it is a stream apart.
	var withTrace int
	for _, s := range r.Data.Result {
		if s.Stream["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" {
			withTrace++
		}
		if len(s.Values[0]) != 2 {
			t.Fatalf("uncategorized entry has %d elements", len(s.Values[0]))
		}
	}
	if withTrace != 1 {
		t.Fatalf("trace_id streams: %d in %+v", withTrace, r.Data.Result)
	}

	// Forward with a limit, by POST form as Grafana may send.
	q.Set("direction", "FORWARD")
	q.Set("limit", "2")
	r = decode[streamsResp](t, f.post(t, "/loki/api/v1/query_range", q))
	if got := strings.Join(r.lines(), "|"); got != "shop:level=error msg=boom status=500|shop:level=info msg=ok status=200" {
		t.Fatalf("forward limit 2: %q", got)
	}

	// Nanosecond, float-second and RFC3339 bounds select the same lines.
	for _, start := range []string{f.ns(3 * time.Second), fmt.Sprintf("%d.000", f.base.Add(3*time.Second).Unix()), f.base.Add(3 * time.Second).UTC().Format(time.RFC3339)} {
		q := url.Values{"query": {`{app="shop"}`}, "start": {start}, "end": {f.ns(time.Hour)}}
		r = decode[streamsResp](t, f.get(t, "/loki/api/v1/query_range", q))
		if got := strings.Join(r.lines(), "|"); got != "shop:level=info msg=ok status=200" {
			t.Fatalf("start=%s: %q", start, got)
		}
	}
}

func TestQueryRangeCategorizedLabels(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", shopLines()...)
	q := url.Values{"query": {`{app="shop"} | logfmt | level="error"`}, "start": {f.ns(0)}, "end": {f.ns(time.Hour)}}
	rep := f.get(t, "/loki/api/v1/query_range", q, encodingFlagsHeader, "categorize-labels")
	r := decode[streamsResp](t, rep)
	body := rep.body
	if len(r.Data.Flags) != 1 || r.Data.Flags[0] != "categorize-labels" || len(r.Data.Result) != 1 {
		t.Fatalf("%s", body)
	}
	s := r.Data.Result[0]
	if s.Stream["app"] != "shop" || s.Stream["trace_id"] != "" || s.Stream["level"] != "" {
		t.Fatalf("stream labels %v", s.Stream)
	}
	var cat struct {
		StructuredMetadata map[string]string `json:"structuredMetadata"`
		Parsed             map[string]string `json:"parsed"`
	}
	if len(s.Values) != 1 || len(s.Values[0]) != 3 {
		t.Fatalf("values %s", body)
	}
	json.Unmarshal(s.Values[0][2], &cat)
	if cat.StructuredMetadata["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || cat.Parsed["status"] != "500" || cat.Parsed["level"] != "error" {
		t.Fatalf("categories %+v", cat)
	}
}

type matrixResp struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

func TestQueryRangeMatrixAndInstantVector(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", shopLines()...)
	q := url.Values{"query": {`sum by (app) (count_over_time({env=~"prod|dev"}[1m]))`},
		"start": {f.ns(time.Minute)}, "end": {f.ns(2 * time.Minute)}, "step": {"60000ms"}}
	r := decode[matrixResp](t, f.get(t, "/loki/api/v1/query_range", q))
	if r.Data.ResultType != "matrix" || len(r.Data.Result) != 2 {
		t.Fatalf("%+v", r)
	}
	got := map[string]string{}
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			got[fmt.Sprintf("%s@%.3f", s.Metric["app"], v[0])] = v[1].(string)
		}
	}
	t1, t2 := f.base.Add(time.Minute).Unix(), f.base.Add(2*time.Minute).Unix()
	want := map[string]string{
		fmt.Sprintf("shop@%d.000", t1): "3", fmt.Sprintf("cart@%d.000", t1): "1", fmt.Sprintf("cart@%d.000", t2): "1",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v want %v", got, want)
	}

	// Instant: the same at one time, as a vector.
	iq := url.Values{"query": {`sum(count_over_time({app="shop"}[5m]))`}, "time": {f.ns(5 * time.Minute)}}
	v := decode[matrixResp](t, f.get(t, "/loki/api/v1/query", iq))
	if v.Data.ResultType != "vector" || len(v.Data.Result) != 1 || v.Data.Result[0].Value[1] != "3" {
		t.Fatalf("%+v", v)
	}
}

// TestGrafanaHealthCheck sends what Grafana's Loki datasource sends to test
// a datasource: an instant vector(1)+vector(1) at time=4000000000 (meant as
// 4 s in nanoseconds; ten digits read as seconds, as Loki reads them), then
// expects one sample valued 2.
func TestGrafanaHealthCheck(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	q := url.Values{"query": {"vector(1)+vector(1)"}, "direction": {"backward"}, "time": {"4000000000"}}
	rep := f.get(t, "/loki/api/v1/query", q)
	r := decode[matrixResp](t, rep)
	body := rep.body
	if r.Data.ResultType != "vector" || len(r.Data.Result) != 1 {
		t.Fatalf("%s", body)
	}
	if v := r.Data.Result[0].Value; fmt.Sprintf("%.0f", v[0]) != "4000000000" || v[1] != "2" {
		t.Fatalf("sample %v in %s", v, body)
	}
	if rep := f.get(t, "/ready", nil); rep.code != 200 || !strings.Contains(rep.body, "ready") {
		t.Fatalf("ready: %+v", rep)
	}
	bi := decode[map[string]string](t, f.get(t, "/loki/api/v1/status/buildinfo", nil))
	if bi["version"] != Version {
		t.Fatalf("buildinfo %v", bi)
	}
}

func TestErrorsAsLoki(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{MaxEntries: 50, MaxLength: 24 * time.Hour, MaxSeries: 2})
	f.push(t, "", shopLines()...)
	rng := url.Values{"start": {f.ns(0)}, "end": {f.ns(time.Hour)}}
	with := func(kv ...string) url.Values {
		q := url.Values{}
		for k, v := range rng {
			q[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return q
	}
	for _, c := range []struct {
		path string
		q    url.Values
		code int
		msg  string
	}{
		{"/loki/api/v1/query_range", with("query", `{app="shop"`), 400, "parse error at line 1, col"},
		{"/loki/api/v1/query_range", with("query", `{app=~".*"}`), 400, "queries require at least one regexp or equality matcher"},
		{"/loki/api/v1/query_range", with(), 400, "query parameter is required"},
		{"/loki/api/v1/query", url.Values{"query": {`{app="shop"}`}}, 400, "log queries are not supported as an instant query type"},
		{"/loki/api/v1/query_range", with("query", `{app="shop"}`, "limit", "51"), 400, "max entries limit per query exceeded, limit > max_entries_limit_per_query (51 > 50)"},
		{"/loki/api/v1/query_range", with("query", `{app="shop"}`, "limit", "-1"), 400, "limit must be a positive value"},
		{"/loki/api/v1/query_range", with("query", `{app="shop"}`, "direction", "sideways"), 400, "invalid direction"},
		{"/loki/api/v1/query_range", with("query", `{app="shop"}`, "start", "yesterday"), 400, "invalid start"},
		{"/loki/api/v1/query_range", with("query", `{app="shop"}`, "start", f.ns(2*time.Hour)), 400, "end timestamp must not be before"},
		{"/loki/api/v1/query_range", with("query", `{app="shop"}`, "start", f.ns(-48*time.Hour)), 400, "the query time range exceeds the limit (query length: 2d1h, limit: 1d)"},
		{"/loki/api/v1/query_range", with("query", `rate({app="shop"}[1m])`, "step", "0.1"), 400, "exceeded maximum resolution of 11,000 points per timeseries"},
		{"/loki/api/v1/query_range", with("query", `rate({app="shop"}[1m])`, "step", "-5"), 400, "zero or negative query resolution step"},
		{"/loki/api/v1/query_range", with("query", `count_over_time({env=~".+"}[1h])`, "step", "60"), 400, "maximum number of series (2) reached for a single query"},
		{"/loki/api/v1/labels", url.Values{"query": {`{app=`}}, 400, "parse error"},
		{"/loki/api/v1/index/volume", with(), 400, "query parameter is required"},
		{"/loki/api/v1/tail", url.Values{"query": {`{app="shop"}`}, "delay_for": {"6"}}, 400, "delay_for can't be greater than 5"},
	} {
		rep := f.get(t, c.path, c.q)
		if rep.code != c.code || !strings.Contains(rep.body, c.msg) {
			t.Errorf("%s %v: %d %q, want %d %q", c.path, c.q, rep.code, rep.body, c.code, c.msg)
		}
	}
}

func TestLabelsValuesSeriesAndTenants(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", shopLines()...)
	f.push(t, "team-b", line{`{"app":"billing","region":"eu"}`, time.Second, "hello", ""})
	rng := url.Values{"start": {f.ns(0)}, "end": {f.ns(time.Hour)}}

	type strs struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	names := decode[strs](t, f.get(t, "/loki/api/v1/labels", rng))
	if strings.Join(names.Data, ",") != "app,env,service_name" {
		t.Fatalf("labels %v", names.Data)
	}
	q := url.Values{"query": {`{env="dev"}`}, "start": rng["start"], "end": rng["end"]}
	vals := decode[strs](t, f.get(t, "/loki/api/v1/label/app/values", q))
	if strings.Join(vals.Data, ",") != "cart" {
		t.Fatalf("values %v", vals.Data)
	}
	vals = decode[strs](t, f.get(t, "/loki/api/v1/label/app/values", rng))
	if strings.Join(vals.Data, ",") != "cart,shop" {
		t.Fatalf("values %v", vals.Data)
	}
	// Another tenant sees only its own streams.
	b := decode[strs](t, f.get(t, "/loki/api/v1/label/app/values", rng, "X-Scope-OrgID", "team-b"))
	if strings.Join(b.Data, ",") != "billing" {
		t.Fatalf("team-b values %v", b.Data)
	}
	empty := decode[strs](t, f.get(t, "/loki/api/v1/label/nope/values", rng))
	if empty.Data == nil || len(empty.Data) != 0 {
		t.Fatalf("unknown label: %+v", empty)
	}

	type series struct {
		Data []map[string]string `json:"data"`
	}
	sq := url.Values{"match[]": {`{app="shop"}`, `{env="dev"}`}, "start": rng["start"], "end": rng["end"]}
	s := decode[series](t, f.post(t, "/loki/api/v1/series", sq))
	if len(s.Data) != 2 || s.Data[0]["app"] != "cart" || s.Data[0]["env"] != "dev" || s.Data[1]["app"] != "shop" || s.Data[1]["service_name"] != "shop" {
		t.Fatalf("series %v", s.Data)
	}
}

func TestIndexStatsAndVolume(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", shopLines()...)
	rng := url.Values{"start": {f.ns(0)}, "end": {f.ns(time.Hour)}}
	q := url.Values{"query": {`{env="prod"} |= "status"`}, "start": rng["start"], "end": rng["end"]}
	st := decode[indexStats](t, f.get(t, "/loki/api/v1/index/stats", q))
	prodBytes := uint64(len("level=info msg=start") + len("level=error msg=boom status=500") + len("level=info msg=ok status=200") + len("level=error msg=empty status=404"))
	if st.Streams != 2 || st.Entries != 4 || st.Bytes != prodBytes || st.Chunks == 0 {
		t.Fatalf("stats %+v want 2 streams, 4 entries, %d bytes", st, prodBytes)
	}

	vq := url.Values{"query": {`{app=~".+"}`}, "start": rng["start"], "end": rng["end"]}
	v := decode[matrixResp](t, f.get(t, "/loki/api/v1/index/volume", vq))
	if v.Data.ResultType != "vector" || len(v.Data.Result) != 2 {
		t.Fatalf("volume %+v", v)
	}
	// Largest first: shop has three lines.
	if v.Data.Result[0].Metric["app"] != "shop" || len(v.Data.Result[0].Metric) != 1 || v.Data.Result[1].Metric["app"] != "cart" {
		t.Fatalf("volume order %+v", v.Data.Result)
	}
	shopBytes := len("level=info msg=start") + len("level=error msg=boom status=500") + len("level=info msg=ok status=200")
	if v.Data.Result[0].Value[1] != strconv.Itoa(shopBytes) {
		t.Fatalf("shop volume %v want %d", v.Data.Result[0].Value, shopBytes)
	}
	vq.Set("targetLabels", "env")
	v = decode[matrixResp](t, f.get(t, "/loki/api/v1/index/volume", vq))
	if len(v.Data.Result) != 2 || v.Data.Result[0].Metric["env"] != "prod" || v.Data.Result[1].Metric["env"] != "dev" {
		t.Fatalf("by env %+v", v.Data.Result)
	}
	vq.Del("targetLabels")
	vq.Set("aggregateBy", "labels")
	v = decode[matrixResp](t, f.get(t, "/loki/api/v1/index/volume", vq))
	if len(v.Data.Result) != 1 || fmt.Sprint(v.Data.Result[0].Metric) != "map[app:]" {
		t.Fatalf("by labels %+v", v.Data.Result)
	}

	rq := url.Values{"query": {`{app="cart"}`}, "start": rng["start"], "end": {f.ns(2 * time.Minute)}, "step": {"60"}}
	m := decode[matrixResp](t, f.get(t, "/loki/api/v1/index/volume_range", rq))
	if m.Data.ResultType != "matrix" || len(m.Data.Result) != 1 || len(m.Data.Result[0].Values) != 2 {
		t.Fatalf("volume_range %+v", m)
	}
	if m.Data.Result[0].Values[0][1] != strconv.Itoa(len("level=error msg=empty status=404")) || m.Data.Result[0].Values[1][1] != strconv.Itoa(len("level=info msg=late")) {
		t.Fatalf("volume_range values %v", m.Data.Result[0].Values)
	}
}

func TestAnswersGzipped(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	var ls []line
	for i := range 200 {
		ls = append(ls, line{`{"app":"shop"}`, time.Duration(i) * time.Millisecond, fmt.Sprintf("level=info msg=request-%d", i), ""})
	}
	f.push(t, "", ls...)
	q := url.Values{"query": {`{app="shop"}`}, "start": {f.ns(0)}, "end": {f.ns(time.Hour)}, "limit": {"1000"}}
	req, _ := http.NewRequest("GET", f.srv.URL+"/loki/api/v1/query_range?"+q.Encode(), nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	r := decode[streamsResp](t, reply{200, string(b)})
	if n := len(r.lines()); n != 200 {
		t.Fatalf("%d lines", n)
	}
}

// TestInterval returns entries at least interval apart, as Loki's interval does.
func TestInterval(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	var ls []line
	for i := range 10 {
		ls = append(ls, line{`{"app":"shop"}`, time.Duration(i) * time.Second, fmt.Sprintf("n=%d", i), ""})
	}
	f.push(t, "", ls...)
	q := url.Values{"query": {`{app="shop"}`}, "start": {f.ns(0)}, "end": {f.ns(time.Hour)}, "interval": {"3s"}, "direction": {"forward"}}
	r := decode[streamsResp](t, f.get(t, "/loki/api/v1/query_range", q))
	if got := strings.Join(r.lines(), ","); got != "shop:n=0,shop:n=3,shop:n=6,shop:n=9" {
		t.Fatalf("forward: %s", got)
	}
	q.Set("direction", "backward")
	q.Set("limit", "2")
	r = decode[streamsResp](t, f.get(t, "/loki/api/v1/query_range", q))
	if got := strings.Join(r.lines(), ","); got != "shop:n=9,shop:n=6" {
		t.Fatalf("backward limit 2: %s", got)
	}
}
