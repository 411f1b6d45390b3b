package ui

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		rd = zr
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var built = fstest.MapFS{
	"index.html":          {Data: []byte(`<!doctype html><div id="app"></div><script src="/assets/index-abc.js"></script>`)},
	"assets/index-abc.js": {Data: []byte("console.log('" + strings.Repeat("vispyr ", 400) + "')")},
	"placeholder.html":    {Data: []byte("placeholder")},
}

func TestBackendsMountedUnderPrefixes(t *testing.T) {
	echo := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, name+" "+r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		})
	}
	h := newHandler(Backends{Prometheus: echo("prom"), Tempo: echo("tempo"), Pyroscope: echo("pyro"), Loki: echo("loki")}, built, nil)
	for target, want := range map[string]string{
		"/loki/api/v1/query_range?query=%7Bjob%3D%22a%22%7D":          "loki GET /loki/api/v1/query_range?query=%7Bjob%3D%22a%22%7D",
		"/prom/api/v1/query_range?query=up":                           "prom GET /api/v1/query_range?query=up",
		"/tempo/api/v2/traces/abc":                                    "tempo GET /api/v2/traces/abc?",
		"/pyroscope/querier.v1.QuerierService/SelectMergeStacktraces": "pyro GET /querier.v1.QuerierService/SelectMergeStacktraces?",
	} {
		if got := body(t, get(t, h, "GET", target)); got != want {
			t.Errorf("%s: got %q, want %q", target, got, want)
		}
	}
	// POST bodies reach the backend too (Grafana-style form queries, connect RPCs).
	if got := body(t, get(t, h, "POST", "/pyroscope/querier.v1.QuerierService/ProfileTypes")); !strings.HasPrefix(got, "pyro POST") {
		t.Errorf("POST not forwarded: %q", got)
	}
}

func TestBrowserOriginNotForwarded(t *testing.T) {
	var origin string
	prom := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { origin = r.Header.Get("Origin") })
	h := newHandler(Backends{Prometheus: prom}, built, nil)
	get(t, h, "POST", "/prom/api/v1/query", "Origin", "http://localhost:3000")
	if origin != "" {
		t.Errorf("backend saw Origin %q; same-origin UI calls must not trigger backend CORS handling", origin)
	}
}

func TestMissingBackendAnswers503WithReason(t *testing.T) {
	h := newHandler(Backends{}, built, nil)
	r := get(t, h, "GET", "/tempo/api/search")
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", r.StatusCode)
	}
	if b := body(t, r); !strings.Contains(b, "traces backend is not enabled") {
		t.Errorf("body %q does not name the missing backend", b)
	}
}

func TestSPARoutesAssetsAndCaching(t *testing.T) {
	h := newHandler(Backends{}, built, nil)
	for _, p := range []string{"/", "/traces", "/service/checkout", "/profiles?type=x", "/logs", "/logs?q=%7Bjob%3D%22a%22%7D"} {
		r := get(t, h, "GET", p)
		if r.StatusCode != 200 || !strings.Contains(body(t, r), `id="app"`) {
			t.Errorf("%s: want index.html, got %d", p, r.StatusCode)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: index must not be cached, Cache-Control %q", p, cc)
		}
	}
	r := get(t, h, "GET", "/assets/index-abc.js", "Accept-Encoding", "br, gzip")
	if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("asset: status %d encoding %q", r.StatusCode, r.Header.Get("Content-Encoding"))
	}
	if !strings.Contains(r.Header.Get("Content-Type"), "javascript") || !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("asset headers: %v", r.Header)
	}
	if b := body(t, r); !strings.HasPrefix(b, "console.log") {
		t.Errorf("asset body %q", b[:20])
	}
	if r := get(t, h, "GET", "/assets/missing.js"); r.StatusCode != 404 {
		t.Errorf("missing asset: status %d, want 404", r.StatusCode)
	}
	if r := get(t, h, "POST", "/"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", r.StatusCode)
	}
}

func TestPlaceholderWhenUINotBuilt(t *testing.T) {
	h := newHandler(Backends{}, fstest.MapFS{"placeholder.html": {Data: []byte("run make ui")}}, nil)
	for _, p := range []string{"/", "/traces", "/assets/index.js"} {
		r := get(t, h, "GET", p)
		if b := body(t, r); r.StatusCode != 200 || b != "run make ui" {
			t.Errorf("%s: got %d %q, want the placeholder", p, r.StatusCode, b)
		}
	}
}

func TestEmbeddedTreeServesSomething(t *testing.T) {
	// Whether or not the UI was built, / must answer with HTML that tells the user something.
	h := NewHandler(Backends{}, nil)
	r := get(t, h, "GET", "/")
	b := body(t, r)
	if r.StatusCode != 200 || !(strings.Contains(b, `id="app"`) || strings.Contains(b, "make ui")) {
		t.Fatalf("GET / = %d %q", r.StatusCode, b)
	}
}
