// Package admin serves the operator's endpoints: self-telemetry, readiness,
// liveness and profiling on the admin port, and the Collector-style health check.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness flips to ready once every component has started.
type Readiness struct {
	ready atomic.Bool
	since atomic.Int64
}

// SetReady marks the process ready (or not).
func (r *Readiness) SetReady(v bool) {
	r.ready.Store(v)
	r.since.Store(time.Now().UnixNano())
}

// Ready reports whether the process serves.
func (r *Readiness) Ready() bool { return r.ready.Load() }

// NewHandler serves :12345: a status page, /metrics, /-/ready, /-/healthy and
// /debug/pprof.
func NewHandler(g prometheus.Gatherer, r *Readiness, s Status) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", statusHandler(s, r))
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Vispyr is Healthy.\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !r.Ready() {
			http.Error(w, "Vispyr is not ready yet.", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("Vispyr is Ready.\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// NewHealthHandler serves /health/status the way the OTel Collector's
// health_check extension does, so existing probes and load balancers work.
func NewHealthHandler(r *Readiness, started time.Time) http.Handler {
	mux := http.NewServeMux()
	serve := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		status, code := "Server available", http.StatusOK
		if !r.Ready() {
			status, code = "Server not available", http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status":  status,
			"upSince": started.UTC().Format(time.RFC3339Nano),
			"uptime":  time.Since(started).String(),
		})
	}
	mux.HandleFunc("/health/status", serve)
	mux.HandleFunc("/", serve)
	return mux
}
