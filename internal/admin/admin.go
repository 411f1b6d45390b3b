// Package admin serves the operator's endpoints: self-telemetry, readiness,
// liveness and profiling on the admin port, and the Collector-style health check.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness flips to ready once every component has started, and back to not
// ready while any condition holds (a nearly full disk, a full forward queue);
// conditions clear by themselves, so readiness returns without a restart.
type Readiness struct {
	started atomic.Bool
	since   atomic.Int64

	mu         sync.Mutex
	conditions map[string]string // name → why not ready
}

// SetReady marks the process started (or stopping).
func (r *Readiness) SetReady(v bool) {
	r.started.Store(v)
	r.since.Store(time.Now().UnixNano())
}

// SetCondition records why the process is not ready under name; an empty
// reason clears it.
func (r *Readiness) SetCondition(name, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reason == "" {
		delete(r.conditions, name)
		return
	}
	if r.conditions == nil {
		r.conditions = map[string]string{}
	}
	r.conditions[name] = reason
}

// Ready reports whether the process serves: started and no condition holds.
func (r *Readiness) Ready() bool { return r.Reason() == "" }

// Reason says why the process is not ready ("" when it is).
func (r *Readiness) Reason() string {
	if !r.started.Load() {
		return "starting or stopping"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.conditions))
	for name := range r.conditions {
		names = append(names, name)
	}
	sort.Strings(names)
	reasons := make([]string, len(names))
	for i, name := range names {
		reasons[i] = r.conditions[name]
	}
	return strings.Join(reasons, "; ")
}

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
		if why := r.Reason(); why != "" {
			http.Error(w, "Vispyr is not ready: "+why, http.StatusServiceUnavailable)
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
		body := map[string]any{
			"status":  "Server available",
			"upSince": started.UTC().Format(time.RFC3339Nano),
			"uptime":  time.Since(started).String(),
		}
		code := http.StatusOK
		// The Collector's extension answers only the first three fields; the
		// reason is Vispyr's, so a probe's log says what to fix.
		if why := r.Reason(); why != "" {
			body["status"], body["reason"], code = "Server not available", why, http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("/health/status", serve)
	mux.HandleFunc("/", serve)
	return mux
}
