package ui

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestLandingRedirectsBrowsersToTheUI(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	f := func(l Landing, pages map[string]func(*http.Request) string, method, target, want string) {
		t.Helper()
		req := httptest.NewRequest(method, target, nil)
		req.Host = "obs.example:9090"
		rec := httptest.NewRecorder()
		l.Wrap(api, pages).ServeHTTP(rec, req)
		if want == "" {
			if rec.Code != http.StatusTeapot {
				t.Fatalf("%s %s: got %d, want the API's answer", method, target, rec.Code)
			}
			return
		}
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != want {
			t.Fatalf("%s %s: got %d to %q, want 302 to %q", method, target, rec.Code, rec.Header().Get("Location"), want)
		}
	}
	local := Landing{UIAddr: ":3000"}
	f(local, PrometheusPages(), "GET", "/", "http://obs.example:3000/explore")
	f(local, PrometheusPages(), "GET", "/graph?g0.expr=rate(up%5B5m%5D)&g0.range_input=1h&g0.tab=0",
		"http://obs.example:3000/explore?from=1h&q=rate%28up%5B5m%5D%29")
	f(Landing{UIAddr: ":3000", TLS: true}, PageAt("/profiles"), "GET", "/", "https://obs.example:3000/profiles")
	f(Landing{ExternalURL: "https://vispyr.example.com/", UIAddr: ":3000"}, PageAt("/traces"), "GET", "/", "https://vispyr.example.com/traces")
	// The APIs themselves, and writes to /, are untouched.
	f(local, PrometheusPages(), "GET", "/api/v1/query?query=up", "")
	f(local, PrometheusPages(), "POST", "/", "")
	f(local, PageAt("/traces"), "GET", "/api/echo", "")
}
