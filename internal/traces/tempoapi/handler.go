// Package tempoapi serves the trace store over Tempo's HTTP query API (port 3200), so
// that Grafana's stock Tempo datasource and curl work unchanged: trace by ID (JSON
// and protobuf), TraceQL and legacy search, tag and tag-value autocomplete, echo and
// build info.
package tempoapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces"
)

// Version is reported by /api/status/buildinfo; Grafana enables features by it, so it
// names the Tempo release whose API this one matches.
const Version = "2.7.0"

type api struct {
	store  *traces.Store
	logger *slog.Logger
	// Each metrics query may hold queryMaxBytes, drawn from queryMemory (shared
	// with every query engine); see WithQueryMemory.
	queryMaxBytes int64
	queryMemory   *limits.Inflight
}

// Option configures the handler.
type Option func(*api)

// WithQueryMemory bounds the memory of each TraceQL metrics query to max
// bytes (traces.query_max_memory_bytes), charged to shared, the budget of all
// running queries. Without it metrics queries are bounded only by their
// series and step limits.
func WithQueryMemory(max int64, shared *limits.Inflight) Option {
	return func(a *api) { a.queryMaxBytes, a.queryMemory = max, shared }
}

// NewHandler returns the handler for every Tempo route; mount it at the root of :3200.
func NewHandler(store *traces.Store, logger *slog.Logger, opts ...Option) http.Handler {
	a := &api{store: store, logger: logger}
	for _, o := range opts {
		o(a)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/echo", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "echo") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ready") })
	mux.HandleFunc("GET /api/status/buildinfo", a.buildInfo)
	mux.HandleFunc("GET /api/traces/{id}", a.traceV1)
	mux.HandleFunc("GET /api/v2/traces/{id}", a.traceV2)
	mux.HandleFunc("GET /api/search", a.search)
	mux.HandleFunc("GET /api/search/tags", a.tagsV1)
	mux.HandleFunc("GET /api/v2/search/tags", a.tagsV2)
	mux.HandleFunc("GET /api/search/tag/{tag}/values", a.tagValuesV1)
	mux.HandleFunc("GET /api/v2/search/tag/{tag}/values", a.tagValuesV2)
	mux.HandleFunc("GET /api/metrics/query_range", a.queryRange)
	mux.HandleFunc("GET /api/metrics/query", a.queryInstant)
	return mux
}

func (a *api) buildInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]string{
		"version": Version, "revision": "vispyr", "branch": "main", "buildUser": "", "buildDate": "", "goVersion": "",
	})
}

// tenant reads X-Scope-OrgID as Tempo does.
func tenant(r *http.Request) string {
	if t := r.Header.Get("X-Scope-OrgID"); t != "" {
		return t
	}
	return pipeline.DefaultTenant
}

// badRequest is an error a client can fix: answered 400 with its message.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		http.Error(w, br.msg, http.StatusBadRequest)
		return
	}
	if r.Context().Err() != nil {
		http.Error(w, "request cancelled", 499)
		return
	}
	switch {
	case errors.Is(err, limits.ErrQueryMemory), errors.Is(err, traceql.ErrTooManySeries):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case errors.Is(err, limits.ErrQueriesBusy):
		limits.WriteOverloaded(w, err.Error())
		return
	}
	if errors.Is(err, traces.ErrSearchTimeout) {
		a.logger.Warn("tempo search timed out", "query", r.URL.Query().Get("q"), "err", err)
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
		return
	}
	a.logger.Error("tempo api request failed", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "<root span not yet received>" stays readable
	_ = enc.Encode(v)
}

// timeRange reads start and end (Unix seconds) into Unix nanoseconds; 0 means open.
func timeRange(r *http.Request) (start, end int64, err error) {
	parse := func(name string) (int64, error) {
		v := r.URL.Query().Get(name)
		if v == "" {
			return 0, nil
		}
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil || sec < 0 || sec > math.MaxInt64/int64(time.Second) {
			return 0, badf("invalid %s %q: want Unix seconds", name, v)
		}
		return sec * int64(time.Second), nil
	}
	if start, err = parse("start"); err != nil {
		return 0, 0, err
	}
	if end, err = parse("end"); err != nil {
		return 0, 0, err
	}
	if end > 0 {
		end += int64(time.Second) - 1 // the whole end second
	}
	if start > 0 && end > 0 && end < start {
		return 0, 0, badf("invalid range: end is before start")
	}
	return start, end, nil
}

// intParam reads a positive integer parameter with a default.
func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badf("invalid %s %q: want a non-negative integer", name, v)
	}
	if n == 0 {
		return def, nil
	}
	return n, nil
}
