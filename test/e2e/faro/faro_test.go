// Package faro runs the real Grafana Faro Web SDK in headless Chromium against
// `vispyr serve`: a page on another origin posting to the Faro port with CORS
// and an API key, and a page whose own backend forwards /faro to Vispyr (the
// same-origin proxy pattern of docs/faro.md).
package faro

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

const apiKey = "faro-e2e-key"

// prerequisites returns node and the testdata dir with the SDK installed by
// .ci/install.d/46-faro.sh.
func prerequisites(t *testing.T) (node, dir string) {
	t.Helper()
	dir, _ = filepath.Abs("testdata")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@grafana", "faro-web-sdk", "dist", "bundle", "faro-web-sdk.iife.js"))
	}
	if err == nil {
		_, err = exec.LookPath("chromium")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Faro SDK, node or chromium missing (run .ci/install.d/46-faro.sh): %v", err)
		}
		t.Skipf("Faro SDK, node or chromium missing (run .ci/install.d/46-faro.sh): %v", err)
	}
	return node, dir
}

// pageHandler serves the test page for app, posting to collectURL (with the
// API key when key is set), and the SDK's prebuilt browser bundles.
func pageHandler(dir, app string, collectURL func() string, key string) http.Handler {
	mux := http.NewServeMux()
	bundles := map[string]string{
		"/faro-web-sdk.iife.js":     "node_modules/@grafana/faro-web-sdk/dist/bundle/faro-web-sdk.iife.js",
		"/faro-web-tracing.iife.js": "node_modules/@grafana/faro-web-tracing/dist/bundle/faro-web-tracing.iife.js",
	}
	for path, file := range bundles {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript")
			http.ServeFile(w, r, filepath.Join(dir, file))
		})
	}
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		b, err := os.ReadFile(filepath.Join(dir, "page.html"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		page := strings.NewReplacer("{{APP}}", app, "{{URL}}", collectURL(), "{{KEY}}", key).Replace(string(b))
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, page)
	})
	return mux
}

// proxyBackend is an application's backend that serves its page and forwards
// /faro/collect to Vispyr's /collect, adding the API key, so the browser posts
// to its own origin and holds no key.
func proxyBackend(dir, app string, faroAddr func() string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", pageHandler(dir, app, func() string { return "/faro/collect" }, ""))
	mux.Handle("POST /faro/collect", &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(&url.URL{Scheme: "http", Host: faroAddr()})
		r.Out.URL.Path = "/collect"
		r.Out.Header.Set("x-api-key", apiKey)
	}})
	return mux
}

type pageResult struct {
	TraceID string   `json:"traceId"`
	Collect []any    `json:"collect"`
	Errors  []string `json:"errors"`
}

func TestFaroBrowserSDK(t *testing.T) {
	node, dir := prerequisites(t)
	var faroAddr string
	apps := []string{"faro-e2e-cors", "faro-e2e-proxied"}
	direct := httptest.NewServer(pageHandler(dir, apps[0], func() string { return "http://" + faroAddr + "/collect" }, apiKey))
	defer direct.Close()
	proxied := httptest.NewServer(proxyBackend(dir, apps[1], func() string { return faroAddr }))
	defer proxied.Close()

	data := t.TempDir()
	v := harness.Start(t, harness.Options{DataDir: data, Config: "faro:\n  api_key: " + apiKey +
		"\n  cors_allowed_origins: [\"" + direct.URL + "\"]\n  extra_log_labels:\n    app_environment: \"\"\n"})
	faroAddr = v.FaroAddr

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "browser.mjs", "/collect", direct.URL+"/", proxied.URL+"/")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, out)
	}
	var results map[string]pageResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("browser output %q: %v", out, err)
	}
	traceIDs := map[string]string{}
	for i, page := range []string{direct.URL + "/", proxied.URL + "/"} {
		r := results[page]
		t.Logf("%s: trace %s, /collect answers %v", apps[i], r.TraceID, r.Collect)
		if len(r.Errors) > 0 || len(r.Collect) == 0 {
			t.Errorf("%s: page errors %v, /collect answers %v", apps[i], r.Errors, r.Collect)
		}
		for _, s := range r.Collect {
			if s != float64(http.StatusAccepted) {
				t.Errorf("%s: a /collect was answered %v, want 202", apps[i], s)
			}
		}
		traceIDs[apps[i]] = r.TraceID
	}

	// The browser's span is in the trace store, under the app's name.
	client := &http.Client{Timeout: 5 * time.Second}
	for app, id := range traceIDs {
		harness.Eventually(t, 10*time.Second, func() (bool, string) {
			req, _ := http.NewRequest("GET", "http://"+v.TempoAddr+"/api/traces/"+id, nil)
			req.Header.Set("Accept", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return false, err.Error()
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ok := resp.StatusCode == 200 && strings.Contains(string(b), `"checkout"`) && strings.Contains(string(b), app)
			return ok, app + " trace " + id + ": " + resp.Status + " " + string(b[:min(len(b), 300)])
		})
	}
	// Web Vitals are gauges queryable with PromQL, labelled with the app.
	api := harness.NewAPI("http://" + v.MetricsAddr)
	for _, app := range apps {
		harness.Eventually(t, 10*time.Second, func() (bool, string) {
			_, series, _ := api.Instant(t, `{__name__=~"faro_web_vitals_.+", app_name="`+app+`", app_environment="e2e", browser_name!=""}`, time.Now())
			return len(series) > 0, app + ": no faro_web_vitals_* series"
		})
	}

	// Every kind of item is a line of its own, labelled and linked to the trace.
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := logs.Open(filepath.Join(data, "logs"), logs.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := map[string][]string{
		"log":         {`kind=log message="cart loaded from the browser" level=warn`},
		"exception":   {`kind=exception type=Error value="payment button exploded" stacktrace="Error: payment button exploded\n  at `},
		"event":       {`kind=event event_name=checkout_clicked`, `event_data_button=primary`},
		"measurement": {`kind=measurement type=cart items=3.000000`},
	}
	for _, app := range apps {
		for kind, parts := range want {
			lines := find(t, st, app, kind)
			var hit *logs.Entry
			for i, e := range lines {
				if containsAll(e.Line, parts) {
					hit = &lines[i]
				}
			}
			if hit == nil {
				t.Errorf("%s: no %s line containing %q among %d", app, kind, parts, len(lines))
				continue
			}
			if !strings.Contains(hit.Line, " app_name="+app+" ") || !strings.Contains(hit.Line, "sdk_name=faro-web sdk_version=2.12.1") {
				t.Errorf("%s %s line without the payload's metadata: %s", app, kind, hit.Line)
			}
			if hit.Metadata.Get("trace_id") != traceIDs[app] {
				t.Errorf("%s %s line: trace_id %q, want the span's %s", app, kind, hit.Metadata.Get("trace_id"), traceIDs[app])
			}
		}
		if len(find(t, st, app, "measurement")) < 2 {
			t.Errorf("%s: no Web Vitals measurement line beside the custom one", app)
		}
	}
}

// find returns the lines of app's stream of kind, checking its labels.
func find(t *testing.T, st *logs.Store, app, kind string) []logs.Entry {
	t.Helper()
	it, err := st.Select(context.Background(), "single-tenant", logs.SelectParams{
		Matchers: []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, "app_name", app),
			labels.MustNewMatcher(labels.MatchEqual, "kind", kind),
		},
		Start: 0, End: 1 << 62, Direction: logs.Forward})
	if err != nil {
		t.Fatal(err)
	}
	var out []logs.Entry
	for it.Next() {
		ls, e := it.At()
		if ls.Get("service_name") != app || ls.Get("app_environment") != "e2e" {
			t.Errorf("%s %s stream labels %v: want service_name=%s and app_environment=e2e", app, kind, ls, app)
		}
		out = append(out, e)
	}
	return out
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
