package lokiapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vispyr/vispyr/internal/logs"
)

type legacyStreamsResp struct {
	Streams []struct {
		Labels  string `json:"labels"`
		Entries []struct {
			TS   string `json:"ts"`
			Line string `json:"line"`
		} `json:"entries"`
	} `json:"streams"`
	Stats json.RawMessage `json:"stats"`
}

// legacyLines renders a legacy answer as "labels ts line" per entry.
func legacyLines(r legacyStreamsResp) string {
	var out []string
	for _, s := range r.Streams {
		for _, e := range s.Entries {
			out = append(out, s.Labels+" "+e.TS+" "+e.Line)
		}
	}
	return strings.Join(out, "\n")
}

// The legacy paths Loki 3 still serves answer in Loki's first API's shapes:
// log queries only (with the regexp parameter as a line filter), streams
// with labels as a string and RFC 3339 timestamps, label lists as values.
func TestLegacyReadPaths(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", shopLines()...)
	ts := func(d time.Duration) string { return f.base.Add(d).UTC().Format(time.RFC3339Nano) }

	q := url.Values{"query": {`{env="prod"} | logfmt`}, "regexp": {"status=[45]"}, "start": {f.ns(0)}, "end": {f.ns(time.Hour)}, "direction": {"forward"}}
	rep := f.get(t, "/api/prom/query", q)
	if rep.code != http.StatusOK {
		t.Fatalf("query: %d %s", rep.code, rep.body)
	}
	r := decode[legacyStreamsResp](t, rep)
	// Forward: streams in order of their first line.
	want := `{app="shop", detected_level="error", env="prod", level="error", msg="boom", service_name="shop", status="500", trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} ` + ts(2*time.Second) + ` level=error msg=boom status=500` + "\n" +
		`{app="cart", detected_level="error", env="prod", level="error", msg="empty", service_name="cart", status="404"} ` + ts(4*time.Second) + ` level=error msg=empty status=404`
	if got := legacyLines(r); got != want {
		t.Errorf("legacy query:\n%s\nwant:\n%s", got, want)
	}
	if len(r.Stats) < 3 {
		t.Errorf("no stats in %s", rep.body)
	}

	metric := url.Values{"query": {`count_over_time({app="shop"}[1m])`}, "start": {f.ns(0)}, "end": {f.ns(time.Hour)}}
	if rep := f.get(t, "/api/prom/query", metric); rep.code != http.StatusBadRequest || !strings.Contains(rep.body, "legacy endpoints only support streams result type") {
		t.Errorf("metric query on the legacy path: %d %s", rep.code, rep.body)
	}

	span := url.Values{"start": {f.ns(0)}, "end": {f.ns(time.Hour)}}
	if rep := f.get(t, "/api/prom/label", span); rep.code != 200 || !strings.Contains(rep.body, `{"values":["app","env","service_name"]}`) {
		t.Errorf("legacy labels: %d %s", rep.code, rep.body)
	}
	if rep := f.get(t, "/api/prom/label/app/values", span); rep.code != 200 || !strings.Contains(rep.body, `{"values":["cart","shop"]}`) {
		t.Errorf("legacy label values: %d %s", rep.code, rep.body)
	}
	span.Set("match[]", `{app="cart"}`)
	if rep := f.get(t, "/api/prom/series", span); rep.code != 200 || !strings.Contains(rep.body, `"status":"success"`) || strings.Count(rep.body, `"app":"cart"`) != 2 {
		t.Errorf("legacy series (v1 shape in Loki too): %d %s", rep.code, rep.body)
	}
}

// /api/prom/tail streams in the legacy shape, regexp included.
func TestLegacyTail(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", shopLines()...)
	q := url.Values{"query": {`{app="shop"}`}, "regexp": {"status=5"}, "start": {f.ns(0)}}
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/api/prom/tail?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m struct {
		legacyStreamsResp
		Dropped json.RawMessage `json:"dropped_entries"`
	}
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatal(err)
	}
	want := `{app="shop", detected_level="error", env="prod", service_name="shop", trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} ` + f.base.Add(2*time.Second).UTC().Format(time.RFC3339Nano) + ` level=error msg=boom status=500`
	if got := legacyLines(m.legacyStreamsResp); got != want || string(m.Dropped) != "null" {
		t.Fatalf("legacy tail:\n%s (dropped_entries %s)\nwant:\n%s (null)", got, m.Dropped, want)
	}
}
