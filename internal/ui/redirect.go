package ui

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Landing sends a browser that opens the root of another Vispyr port to the
// matching page of the UI, as people open Prometheus at :9090/graph or
// Pyroscope at :4040/. Every other request reaches next.
type Landing struct {
	// ExternalURL is the UI's public address (ui.external_url); empty means
	// the UI port on the host the browser asked for.
	ExternalURL string
	// UIAddr is the UI's listen address, for its port.
	UIAddr string
	// TLS tells whether the UI port serves HTTPS.
	TLS bool
}

// Wrap redirects GET / (and the paths in pages) to the UI page that page
// returns for the request; next serves everything else.
func (l Landing) Wrap(next http.Handler, pages map[string]func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, l.base(r)+page(r), http.StatusFound)
	})
}

// base is the UI's address without a trailing slash.
func (l Landing) base(r *http.Request) string {
	if l.ExternalURL != "" {
		return strings.TrimSuffix(l.ExternalURL, "/")
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	_, port, _ := net.SplitHostPort(l.UIAddr)
	scheme := "http"
	if l.TLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// PrometheusPages maps Prometheus's own UI paths to the explorer. A link such
// as /graph?g0.expr=up&g0.range_input=1h opens that query over that range.
func PrometheusPages() map[string]func(*http.Request) string {
	graph := func(r *http.Request) string {
		in := r.URL.Query()
		out := url.Values{}
		if q := in.Get("g0.expr"); q != "" {
			out.Set("q", q)
		}
		if rng := in.Get("g0.range_input"); rng != "" {
			out.Set("from", rng)
		}
		if len(out) == 0 {
			return "/explore"
		}
		return "/explore?" + out.Encode()
	}
	return map[string]func(*http.Request) string{"/": graph, "/graph": graph}
}

// PageAt answers every request with the fixed UI path page.
func PageAt(page string) map[string]func(*http.Request) string {
	return map[string]func(*http.Request) string{"/": func(*http.Request) string { return page }}
}
