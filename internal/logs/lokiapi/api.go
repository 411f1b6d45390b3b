// Package lokiapi serves Loki's HTTP query API (query, query_range, labels,
// series, index stats and volume, Logs Drilldown's detected fields and
// patterns, live tail) over a logs.Querier, so Grafana's stock Loki datasource
// works against the embedded log store unchanged.
//
// Answers and errors are shaped as Loki's: a JSON envelope for results, plain
// text with Loki's status codes and messages for errors.
package lokiapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/klauspost/compress/gzhttp"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/logs/logql"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// Version is what /loki/api/v1/status/buildinfo reports: Grafana's Loki
// datasource and Logs Drilldown enable features by it, so it names the Loki
// release whose API this one matches.
const Version = "3.4.0"

// statusClientClosedRequest is the status Loki logs for a query its client
// gave up on (nginx's 499); nobody reads the answer.
const statusClientClosedRequest = 499

// API serves the Loki query endpoints.
type API struct {
	q      logs.Querier
	engine *logql.Engine
	lim    logs.QueryLimits
	logger *slog.Logger

	tailsMu sync.Mutex
	tails   map[string]int // open live tails per tenant
}

// New returns the query API over q. Zero limits take Loki's defaults.
func New(q logs.Querier, lim logs.QueryLimits, logger *slog.Logger) *API {
	def := logs.Config{Query: lim}
	def.Defaults()
	lim = def.Query
	sq := storeQuerier{q}
	return &API{
		q: sq, engine: logql.NewEngine(sq, logql.Options{MaxSeries: lim.MaxSeries}),
		lim: lim, logger: logger, tails: map[string]int{},
	}
}

// Register adds every query route to mux. Query endpoints take GET and POST
// (form-encoded), as Loki's do.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })
	mux.HandleFunc("GET /loki/api/v1/status/buildinfo", a.buildInfo)
	for _, r := range []struct {
		path string
		h    func(*http.Request) (any, error)
	}{
		{"/loki/api/v1/query", a.query},
		{"/loki/api/v1/query_range", a.queryRange},
		{"/loki/api/v1/labels", a.labels},
		{"/loki/api/v1/label", a.labels},
		{"/loki/api/v1/label/{name}/values", a.labelValues},
		{"/loki/api/v1/series", a.series},
		{"/loki/api/v1/index/stats", a.indexStats},
		{"/loki/api/v1/index/volume", a.volume},
		{"/loki/api/v1/index/volume_range", a.volumeRange},
		{"/loki/api/v1/detected_fields", a.detectedFields},
		{"/loki/api/v1/detected_field/{name}/values", a.detectedFieldValues},
		{"/loki/api/v1/detected_labels", a.detectedLabels},
		{"/loki/api/v1/patterns", a.patterns},
		{"/loki/api/v1/format_query", a.formatQuery},
	} {
		// Answers are gzipped for clients that accept it, as Loki's are.
		h := gzhttp.GzipHandler(a.wrap(r.h))
		mux.Handle("GET "+r.path, h)
		mux.Handle("POST "+r.path, h)
	}
	mux.HandleFunc("GET /loki/api/v1/tail", a.tail)
	mux.HandleFunc("GET /loki/api/v1/drilldown-limits", a.drilldownLimits)
	a.registerLegacy(mux)
}

// Handler returns a mux with the query routes only.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

func (a *API) buildInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]string{
		"version": Version, "revision": "vispyr", "branch": "", "buildUser": "",
		"buildDate": "", "goVersion": "",
	})
}

// tenant is the request's X-Scope-OrgID (set or checked by the auth
// middleware), as the push path stores it.
func tenant(r *http.Request) string {
	return pipeline.Tenant(pipeline.WithTenant(r.Context(), r.Header.Get("X-Scope-OrgID")))
}

// wrap runs h under the query timeout and writes its result as JSON or its
// error as Loki does.
func (a *API) wrap(h func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), a.lim.Timeout)
		defer cancel()
		res, err := h(r.WithContext(ctx))
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, res)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

// badRequest is an error the client must fix; its text is Loki's message.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func errBadRequest(format string, args ...any) error {
	return &badRequest{fmt.Sprintf(format, args...)}
}

// storeError is a failure of the store itself (not of the query): 500.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// timeoutMsg is Loki's answer for a query over its timeout.
const timeoutMsg = "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed"

// writeError answers as Loki does: plain text, 400 for anything the query
// asked wrongly, 499 when the client left, 504 on timeout, 500 when the store
// failed.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var se *storeError
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		http.Error(w, "request cancelled", statusClientClosedRequest)
	case errors.Is(err, context.DeadlineExceeded):
		http.Error(w, timeoutMsg, http.StatusGatewayTimeout)
	case errors.Is(err, logs.ErrInvalidQuery):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.As(err, &se):
		a.logger.Error("log query", "path", r.URL.Path, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		// Parse errors, limits, pipeline errors, bad parameters: the query's fault.
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}
