package tempoapi

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces"
)

// The search response is Tempo's SearchResponse in protojson form: 64-bit integers are
// strings, zero values are omitted, and nothing else appears (Grafana decodes strictly).
type searchResponse struct {
	Traces  []traceMeta   `json:"traces"`
	Metrics searchMetrics `json:"metrics"`
}

type traceMeta struct {
	TraceID           string                  `json:"traceID"`
	RootServiceName   string                  `json:"rootServiceName,omitempty"`
	RootTraceName     string                  `json:"rootTraceName,omitempty"`
	StartTimeUnixNano string                  `json:"startTimeUnixNano,omitempty"`
	DurationMs        uint32                  `json:"durationMs,omitempty"`
	SpanSets          []spanSet               `json:"spanSets,omitempty"`
	ServiceStats      map[string]serviceStats `json:"serviceStats,omitempty"`
}

type spanSet struct {
	Spans      []spanJSON `json:"spans"`
	Matched    uint32     `json:"matched"`
	Attributes []kvJSON   `json:"attributes,omitempty"`
}

type spanJSON struct {
	SpanID            string   `json:"spanID"`
	Name              string   `json:"name,omitempty"`
	StartTimeUnixNano string   `json:"startTimeUnixNano"`
	DurationNanos     string   `json:"durationNanos"`
	Attributes        []kvJSON `json:"attributes,omitempty"`
}

type serviceStats struct {
	SpanCount  uint32 `json:"spanCount,omitempty"`
	ErrorCount uint32 `json:"errorCount,omitempty"`
}

type searchMetrics struct {
	InspectedTraces uint32 `json:"inspectedTraces,omitempty"`
	InspectedBytes  string `json:"inspectedBytes,omitempty"`
	TotalBlocks     uint32 `json:"totalBlocks,omitempty"`
	CompletedJobs   uint32 `json:"completedJobs,omitempty"`
	TotalJobs       uint32 `json:"totalJobs,omitempty"`
	TotalBlockBytes string `json:"totalBlockBytes,omitempty"`
	InspectedSpans  string `json:"inspectedSpans,omitempty"`
}

// kvJSON is an OTLP KeyValue in protojson.
type kvJSON struct {
	Key   string   `json:"key"`
	Value anyValue `json:"value"`
}

type anyValue struct {
	StringValue *string  `json:"stringValue,omitempty"`
	IntValue    *string  `json:"intValue,omitempty"`
	DoubleValue *float64 `json:"doubleValue,omitempty"`
	BoolValue   *bool    `json:"boolValue,omitempty"`
}

func toAnyValue(v pcommon.Value) anyValue {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		s := strconv.FormatInt(v.Int(), 10)
		return anyValue{IntValue: &s}
	case pcommon.ValueTypeDouble:
		d := v.Double()
		return anyValue{DoubleValue: &d}
	case pcommon.ValueTypeBool:
		b := v.Bool()
		return anyValue{BoolValue: &b}
	default:
		s := v.AsString()
		return anyValue{StringValue: &s}
	}
}

func u64(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

const rootNotReceived = "<root span not yet received>"

func (a *api) search(w http.ResponseWriter, r *http.Request) {
	q, err := searchQuery(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	start, end, err := timeRange(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", 20)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	spss, err := intParam(r, "spss", 3)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := searchBounds(r, start, end, limit, spss); err != nil {
		a.fail(w, r, err)
		return
	}
	query, err := traceql.Parse(q)
	if err != nil {
		a.fail(w, r, badf("invalid TraceQL query: %v", err))
		return
	}
	if query.IsMetrics() {
		a.fail(w, r, badf("invalid TraceQL query: metrics queries go to /api/metrics/query_range"))
		return
	}
	matches, m, err := a.store.Search(r.Context(), traces.SearchRequest{
		Tenant: tenant(r), Query: query, Start: start, End: end, Limit: limit,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	resp := searchResponse{Traces: make([]traceMeta, 0, len(matches)), Metrics: searchMetrics{
		InspectedTraces: uint32(m.InspectedTraces), InspectedBytes: u64(m.InspectedBytes),
		TotalBlocks: uint32(m.TotalBlocks), CompletedJobs: uint32(m.CompletedJobs), TotalJobs: uint32(m.TotalJobs),
		TotalBlockBytes: u64(m.TotalBlockBytes), InspectedSpans: u64(m.InspectedSpans),
	}}
	for _, mt := range matches {
		resp.Traces = append(resp.Traces, toTraceMeta(mt, spss))
	}
	writeJSON(w, resp)
}

// traceIDString is hex without leading zeros, as Tempo prints search results.
func traceIDString(id [16]byte) string {
	s := strings.TrimLeft(hex.EncodeToString(id[:]), "0")
	if s == "" {
		return "0"
	}
	return s
}

func toTraceMeta(mt traces.Match, spss int) traceMeta {
	tm := traceMeta{
		TraceID:           traceIDString(mt.TraceID),
		RootServiceName:   rootNotReceived,
		StartTimeUnixNano: strconv.FormatInt(mt.Start, 10),
		DurationMs:        uint32((mt.End - mt.Start) / int64(time.Millisecond)),
		ServiceStats:      map[string]serviceStats{},
	}
	rss := mt.Trace.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		svc := "<unknown>"
		if v, ok := rss.At(i).Resource().Attributes().Get("service.name"); ok {
			svc = v.AsString()
		}
		st := tm.ServiceStats[svc]
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				st.SpanCount++
				if sp.Status().Code() == ptrace.StatusCodeError {
					st.ErrorCount++
				}
				if sp.ParentSpanID().IsEmpty() && (tm.RootTraceName == "" || tm.RootServiceName == rootNotReceived) {
					tm.RootServiceName, tm.RootTraceName = svc, sp.Name()
				}
			}
		}
		tm.ServiceStats[svc] = st
	}
	for _, set := range mt.Spansets {
		ss := spanSet{Matched: uint32(len(set.Spans)), Spans: []spanJSON{}}
		for i, ms := range set.Spans {
			if i == spss {
				break
			}
			sp := ms.Span
			sj := spanJSON{
				SpanID:            hex.EncodeToString(func() []byte { id := sp.SpanID(); return id[:] }()),
				Name:              sp.Name(),
				StartTimeUnixNano: strconv.FormatUint(uint64(sp.StartTimestamp()), 10),
				DurationNanos:     strconv.FormatInt(int64(sp.EndTimestamp())-int64(sp.StartTimestamp()), 10),
			}
			for _, at := range ms.Selected {
				sj.Attributes = append(sj.Attributes, kvJSON{Key: at.Key, Value: toAnyValue(at.Value)})
			}
			ss.Spans = append(ss.Spans, sj)
		}
		for _, at := range set.Attributes {
			ss.Attributes = append(ss.Attributes, kvJSON{Key: at.Key, Value: toAnyValue(at.Value)})
		}
		tm.SpanSets = append(tm.SpanSets, ss)
	}
	return tm
}

// searchQuery returns the TraceQL to run: q, or the legacy tags/minDuration/
// maxDuration parameters translated to TraceQL, or {} for everything.
func searchQuery(r *http.Request) (string, error) {
	v := r.URL.Query()
	if q := strings.TrimSpace(v.Get("q")); q != "" {
		return q, nil
	}
	var conds []string
	tags, err := parseLogfmt(v.Get("tags"))
	if err != nil {
		return "", err
	}
	for _, kv := range tags {
		conds = append(conds, legacyCond(kv[0], kv[1]))
	}
	for _, d := range []struct{ param, op string }{{"minDuration", ">="}, {"maxDuration", "<="}} {
		s := v.Get(d.param)
		if s == "" {
			continue
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			return "", badf("invalid %s %q: %v", d.param, s, err)
		}
		conds = append(conds, fmt.Sprintf("traceDuration %s %dns", d.op, dur.Nanoseconds()))
	}
	return "{" + strings.Join(conds, " && ") + "}", nil
}

// legacyCond matches a legacy tag against span or resource attributes, as text or,
// when it looks like a number, as that number too.
func legacyCond(k, val string) string {
	field := "." + k
	switch k {
	case "name":
		field = "name"
	case "status.code", "status":
		return "status = " + strings.ToLower(strings.TrimPrefix(val, "STATUS_CODE_"))
	}
	alts := []string{fmt.Sprintf("%s = %s", field, strconv.Quote(val))}
	if _, err := strconv.ParseInt(val, 10, 64); err == nil && field != "name" {
		alts = append(alts, fmt.Sprintf("%s = %s", field, val))
	}
	return "(" + strings.Join(alts, " || ") + ")"
}

// parseLogfmt splits `a=b c="d e"` into pairs.
func parseLogfmt(s string) ([][2]string, error) {
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimLeftFunc(s, unicode.IsSpace) {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsFunc(s[:eq], unicode.IsSpace) {
			return nil, badf("invalid tags %q: want key=value pairs separated by spaces", s)
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, badf("invalid tags: unterminated quoted value for %q", key)
			}
			val, _ = strconv.Unquote(q)
			s = s[len(q):]
		} else {
			end := strings.IndexFunc(s, unicode.IsSpace)
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		out = append(out, [2]string{key, val})
	}
	return out, nil
}

// Tempo's query-frontend defaults bound what one search may ask for; past
// them it answers 400 with these messages.
const (
	searchMaxDuration = 168 * time.Hour
	searchMaxLimit    = 256 * 1024
	searchMaxSpss     = 100
)

// searchBounds refuses a search over more than a week, for more than
// searchMaxLimit traces or more than searchMaxSpss spans per span set, as
// Tempo does, so that one request cannot make the store read every block of
// the retention or hold an unbounded result.
func searchBounds(r *http.Request, start, end int64, limit, spss int) error {
	if start > 0 && end > 0 && time.Duration((end-start)/1e9)*time.Second > searchMaxDuration { // whole seconds, as sent
		q := r.URL.Query()
		return badf("range specified by start and end exceeds %s. received start=%s end=%s", searchMaxDuration, q.Get("start"), q.Get("end"))
	}
	if limit > searchMaxLimit {
		return badf("limit %d exceeds max limit %d", limit, searchMaxLimit)
	}
	if spss > searchMaxSpss {
		return badf("spans per span set exceeds %d. received %d", searchMaxSpss, spss)
	}
	return nil
}
