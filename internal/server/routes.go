package server

import (
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/vispyr/vispyr/internal/auth"
	"github.com/vispyr/vispyr/internal/ui"
)

// promIngestPaths are the write paths of the Prometheus port: remote write
// (Prometheus's path and Alloy's prometheus.receive_http path) and OTLP metrics.
var promIngestPaths = []string{"/api/v1/write", "/api/v1/metrics/write", "/api/v1/otlp/v1/metrics"}

// isPyroscopeIngest reports the write paths of the Pyroscope port.
func isPyroscopeIngest(p string) bool {
	return p == "/ingest" || p == "/pyroscope/ingest" || strings.HasPrefix(p, "/push.v1.PusherService/")
}

// routeScope is the scope each request of a listener needs. Anything not
// named as ingest or admin is a read, so a route added later is never open.
func routeScope(listener string) auth.Rule {
	return func(r *http.Request) auth.Scope {
		// The mux cleans paths the same way before routing.
		p := path.Clean("/" + r.URL.Path)
		switch listener {
		case "otlp_http", "pyroscope_ingest", "faro":
			// Browsers hold no credentials: with auth on, Faro reaches
			// Vispyr through the app's backend, which adds them.
			return auth.ScopeWrite
		case "admin":
			if p == "/-/ready" || p == "/-/healthy" {
				return auth.Open // orchestrators probe these
			}
			return auth.ScopeAdmin
		case "prometheus":
			switch {
			case slices.Contains(promIngestPaths, p):
				return auth.ScopeWrite
			case p == "/-/reload" || strings.HasPrefix(p, "/api/v1/admin/"):
				return auth.ScopeAdmin
			}
		case "loki":
			if isLokiPush(p) {
				return auth.ScopeWrite
			}
		case "pyroscope":
			if isPyroscopeIngest(p) {
				return auth.ScopeWrite
			}
		case "ui":
			// The app's static shell (the login page is part of it) is
			// open; its data comes from the API prefixes.
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && ui.IsShell(p) {
				return auth.Open
			}
		}
		return auth.ScopeRead
	}
}

// isLokiPush reports the write paths of the Loki port.
func isLokiPush(p string) bool { return p == "/loki/api/v1/push" || p == "/api/prom/push" }

// grpcScope: the OTLP gRPC port serves only the collector's export services.
func grpcScope(string) auth.Scope { return auth.ScopeWrite }

// withoutIngest answers 404 for the Prometheus API's write paths, so the UI
// port serves reads only: a page open in a browser cannot write through it.
func withoutIngest(h http.Handler) http.Handler {
	if h == nil {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(promIngestPaths, path.Clean("/"+r.URL.Path)) {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// warnUnauthenticated logs once, at start, which ports anyone who reaches
// the machine can use when no auth: section is set.
func warnUnauthenticated(addrs []string, authn *auth.Authenticator, logger *slog.Logger) {
	if authn != nil {
		return
	}
	var open []string
	for _, a := range addrs {
		if a != "" {
			open = append(open, a)
		}
	}
	if len(open) > 0 {
		logger.Warn("no auth: section: anyone who reaches these ports can write, read every tenant and profile this process; see README \"Securing Vispyr\"",
			"ports", strings.Join(open, ","))
	}
}

// withoutLokiPush answers 404 for Loki's push paths, so the UI port serves
// the Loki port's reads only.
func withoutLokiPush(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isLokiPush(path.Clean("/" + r.URL.Path)) {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
