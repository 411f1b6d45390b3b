package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// writeSamples remote-writes one series with the given values one second
// apart, ending at end, and fails unless Vispyr acknowledges with 204.
func writeSamples(t *testing.T, v *harness.Vispyr, labels []prompb.Label, end time.Time, values ...float64) {
	t.Helper()
	ts := prompb.TimeSeries{Labels: labels}
	for i, val := range values {
		at := end.Add(time.Duration(i-len(values)+1) * time.Second)
		ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: val})
	}
	res, err := harness.RemoteWrite(nil, v.MetricsURL("/api/v1/write"), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}})
	if err != nil {
		t.Fatalf("remote write: %v", err)
	}
	if res.Status != http.StatusNoContent {
		t.Fatalf("remote write: status %d, want 204: %s", res.Status, res.Body)
	}
}

// promtool, Prometheus's own CLI, queries Vispyr like a Prometheus server.
func TestPromtoolQueries(t *testing.T) {
	t.Parallel()
	promtool := testpeer.Binary(t, "promtool")
	v := harness.Start(t, harness.Options{})
	end := time.Now().Truncate(time.Second)
	writeSamples(t, v, harness.Labels("__name__", "e2e_promtool", "case", "cli"), end, 40, 41, 42)

	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	unix := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

	out := run("query", "instant", "--time="+unix(end), "http://"+v.MetricsAddr, "e2e_promtool")
	if want := `e2e_promtool{case="cli"} => 42 @[` + unix(end); !strings.Contains(out, want) {
		t.Errorf("promtool query instant printed %q, want it to contain %q", out, want)
	}

	out = run("query", "range", "--start="+unix(end.Add(-2*time.Second)), "--end="+unix(end),
		"--step=1s", "http://"+v.MetricsAddr, "e2e_promtool")
	for i, want := range []string{"40 @[", "41 @[", "42 @["} {
		if !strings.Contains(out, want+unix(end.Add(time.Duration(i-2)*time.Second))) {
			t.Errorf("promtool query range printed %q, want %q at %s", out, want, unix(end.Add(time.Duration(i-2)*time.Second)))
		}
	}

	out = run("query", "instant", "-o", "json", "--time="+unix(end), "http://"+v.MetricsAddr, "sum(e2e_promtool) * 2")
	if !strings.Contains(out, `"84"`) {
		t.Errorf("promtool -o json sum*2 printed %q, want value \"84\"", out)
	}
}

// Grafana's Prometheus datasource "Save & test": a form POST of 1+1 at
// time=4 must be a scalar, then buildinfo must look like Prometheus (not
// Mimir, not Thanos).
func TestGrafanaHealthCheck(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	api := harness.NewAPI(v.MetricsURL(""))

	resp, err := http.Post(v.MetricsURL("/api/v1/query"), "application/x-www-form-urlencoded",
		strings.NewReader("query=1%2B1&time=4"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || r.Status != "success" {
		t.Fatalf("POST 1+1: status %d %q, decode err %v", resp.StatusCode, r.Status, err)
	}
	if r.Data.ResultType != "scalar" || len(r.Data.Result) != 2 ||
		string(r.Data.Result[0]) != "4" || string(r.Data.Result[1]) != `"2"` {
		t.Errorf("1+1 at time=4 = %s %s, want scalar [4,\"2\"]", r.Data.ResultType, r.Data.Result)
	}
	// Grafana retries with GET when configured so.
	typ, _, _ := api.Instant(t, "1+1", time.Unix(4, 0))
	if typ != "scalar" {
		t.Errorf("GET 1+1: resultType %q, want scalar", typ)
	}

	bi := api.Get(t, "/api/v1/status/buildinfo", nil).MustSucceed(t)
	var info map[string]any
	if err := json.Unmarshal(bi.Data, &info); err != nil {
		t.Fatalf("decode buildinfo: %v", err)
	}
	for _, k := range []string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} {
		if _, ok := info[k].(string); !ok {
			t.Errorf("buildinfo data.%s missing or not a string: %s", k, bi.Body)
		}
	}
	if f, ok := info["features"].(map[string]any); ok && len(f) > 0 {
		t.Errorf("buildinfo has features %v: Grafana would take Vispyr for Mimir", f)
	}
	if r := api.Get(t, "/api/v1/status/flags", nil); r.HTTPStatus != http.StatusNotFound {
		t.Errorf("/api/v1/status/flags = %d, want 404 (Grafana takes a 200 for Thanos)", r.HTTPStatus)
	}
	rules := api.Get(t, "/api/v1/rules", nil).MustSucceed(t)
	if !strings.Contains(string(rules.Data), `"groups"`) {
		t.Errorf("/api/v1/rules data = %s, want a groups list", rules.Data)
	}
	// Grafana's label browser.
	writeSamples(t, v, harness.Labels("__name__", "e2e_grafana", "env", "prod"), time.Now(), 1)
	window := url.Values{"start": {harness.FormatTime(time.Now().Add(-time.Hour))}, "end": {harness.FormatTime(time.Now().Add(time.Minute))}}
	if r := api.PostForm(t, "/api/v1/labels", window).MustSucceed(t); !strings.Contains(string(r.Data), `"env"`) {
		t.Errorf("POST /api/v1/labels = %s, want label env", r.Body)
	}
	if r := api.Get(t, "/api/v1/label/__name__/values", window).MustSucceed(t); !strings.Contains(string(r.Data), `"e2e_grafana"`) {
		t.Errorf("GET /api/v1/label/__name__/values = %s, want e2e_grafana", r.Body)
	}
	series := url.Values{"match[]": {`{__name__="e2e_grafana"}`}}
	for k, v := range window {
		series[k] = v
	}
	sr := api.PostForm(t, "/api/v1/series", series).MustSucceed(t)
	var got []map[string]string
	if err := json.Unmarshal(sr.Data, &got); err != nil || len(got) != 1 || got[0]["env"] != "prod" {
		t.Errorf("POST /api/v1/series match[]=e2e_grafana = %s, want one series with env=prod", sr.Body)
	}
	if r := api.Get(t, "/api/v1/label/env/values", url.Values{"match[]": {"e2e_grafana"}}).MustSucceed(t); string(r.Data) != `["prod"]` {
		t.Errorf("GET /api/v1/label/env/values?match[]=e2e_grafana = %s, want [\"prod\"]", r.Data)
	}
}
