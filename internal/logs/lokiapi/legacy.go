package lokiapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzhttp"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/logs/logql"
)

// Loki's legacy read paths (/api/prom/...), which Loki 3 still serves and
// older Grafana, logcli and loki-canary call. Their parameters are the v1
// paths' plus `regexp`; their answers have the shapes of Loki's first API:
// streams as {"labels": "<label string>", "entries": [{"ts": RFC 3339,
// "line"}]}, label lists as {"values": [...]}, and log queries only.
func (a *API) registerLegacy(mux *http.ServeMux) {
	for _, r := range []struct {
		path string
		h    func(*http.Request) (any, error)
	}{
		{"/api/prom/query", a.legacyQuery},
		{"/api/prom/label", legacyValues(a.labels)},
		{"/api/prom/label/{name}/values", legacyValues(a.labelValues)},
		{"/api/prom/series", a.series},
	} {
		h := gzhttp.GzipHandler(a.wrap(r.h))
		mux.Handle("GET "+r.path, h)
		mux.Handle("POST "+r.path, h)
	}
	mux.HandleFunc("GET /api/prom/tail", a.tail)
}

type legacyStream struct {
	Labels  string        `json:"labels"`
	Entries []legacyEntry `json:"entries"`
}

type legacyEntry struct {
	TS   time.Time `json:"ts"`
	Line string    `json:"line"`
}

// legacyStreams groups rows as streamsJSON does, labels as one string.
func legacyStreams(rows []logql.Row) []legacyStream {
	return legacyFrom(streamsJSON(rows, false))
}

func legacyFrom(streams []streamJSON) []legacyStream {
	out := make([]legacyStream, len(streams))
	for i, s := range streams {
		out[i] = legacyStream{Labels: s.Stream.String(), Entries: make([]legacyEntry, len(s.Values))}
		for j, v := range s.Values {
			ns, _ := strconv.ParseInt(v[0].(string), 10, 64)
			out[i].Entries[j] = legacyEntry{TS: time.Unix(0, ns).UTC(), Line: v[1].(string)}
		}
	}
	return out
}

// withRegexp returns the query with the legacy `regexp` parameter added as
// a line filter (|~), which only a log query can take.
func withRegexp(r *http.Request) (string, error) {
	q, re := r.Form.Get("query"), r.Form.Get("regexp")
	if re == "" {
		return q, nil
	}
	if _, err := logql.ParseLogSelector(q); err != nil {
		return "", err
	}
	return q + " |~ " + strconv.Quote(re), nil
}

// legacyQuery serves /api/prom/query: a log query over a range.
func (a *API) legacyQuery(r *http.Request) (any, error) {
	if err := form(r); err != nil {
		return nil, err
	}
	q, err := withRegexp(r)
	if err != nil {
		return nil, err
	}
	e, err := logql.ParseExpr(q)
	if err != nil {
		return nil, err
	}
	if _, ok := e.(*logql.LogExpr); !ok {
		return nil, errBadRequest("legacy endpoints only support streams result type")
	}
	r.Form.Set("query", q)
	r.Header.Del(encodingFlagsHeader)
	res, err := a.queryRange(r)
	if err != nil {
		return nil, err
	}
	data := res.(queryResponse).Data
	return map[string]any{"streams": legacyFrom(data.Result.([]streamJSON)), "stats": data.Stats}, nil
}

type legacyValuesResponse struct {
	Values []string `json:"values,omitempty"`
}

// legacyValues answers a v1 label list as {"values": [...]}.
func legacyValues(h func(*http.Request) (any, error)) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		res, err := h(r)
		if err != nil {
			return nil, err
		}
		return legacyValuesResponse{res.(dataResponse).Data.([]string)}, nil
	}
}

type legacyTailResponse struct {
	Streams        []legacyStream  `json:"streams"`
	DroppedEntries []legacyDropped `json:"dropped_entries"`
}

// legacyDropped has no JSON names in Loki: its fields print as they are.
type legacyDropped struct {
	Timestamp time.Time
	Labels    string
}

func legacyTail(rows []logql.Row, dropped []logs.DroppedEntry) legacyTailResponse {
	msg := legacyTailResponse{Streams: legacyStreams(rows)}
	for _, d := range dropped {
		msg.DroppedEntries = append(msg.DroppedEntries, legacyDropped{Timestamp: time.Unix(0, d.Timestamp).UTC(), Labels: d.Labels.String()})
	}
	return msg
}
