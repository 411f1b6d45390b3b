package lokiapi

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/logs/logql"
)

// The endpoints Grafana's Logs Drilldown calls besides the query API. Their
// answers are bare JSON objects (no status/data envelope) except patterns,
// as Loki's are.

const defaultLineLimit = 1000

// sampleRows reads the newest lines of a log query (a selector, optionally
// with a pipeline) in the request's range, up to line_limit.
func (a *API) sampleRows(r *http.Request) ([]logql.Row, time.Time, time.Time, error) {
	if err := form(r); err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	start, end, err := timeRange(r, defaultQuerySince)
	if err != nil {
		return nil, start, end, err
	}
	if err := a.checkLength(start, end); err != nil {
		return nil, start, end, err
	}
	q := r.Form.Get("query")
	if q == "" {
		return nil, start, end, errBadRequest("query parameter is required")
	}
	limit := defaultLineLimit
	if v := r.Form.Get("line_limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit <= 0 {
			return nil, start, end, errBadRequest("invalid line_limit: %q", v)
		}
	}
	limit = min(limit, a.lim.MaxEntries)
	res, err := a.engine.Exec(r.Context(), logql.Params{
		Tenant: tenant(r), Query: q, Start: start, End: end, Step: time.Second, Limit: limit, Direction: logs.Backward,
	})
	if err != nil {
		return nil, start, end, err
	}
	if res.Type != "streams" {
		return nil, start, end, errBadRequest("only log queries are supported")
	}
	return res.Entries, start, end, nil
}

// fieldParsers are the parsers detected_fields tries on each line, as Loki
// does: json for lines that look like an object, logfmt otherwise.
type fieldParsers struct{ json, logfmt *logql.LinePipeline }

func newFieldParsers() fieldParsers {
	mk := func(stage string) *logql.LinePipeline {
		e, err := logql.ParseLogSelector(`{x="x"} | ` + stage)
		if err != nil {
			panic(err) // constant input
		}
		p, err := logql.NewLinePipeline(e.Stages)
		if err != nil {
			panic(err)
		}
		return p
	}
	return fieldParsers{json: mk("json"), logfmt: mk("logfmt")}
}

// parse returns the fields a line yields and the parser that found them.
func (fp fieldParsers) parse(row logql.Row) (labels.Labels, string) {
	p, name := fp.logfmt, "logfmt"
	if strings.HasPrefix(strings.TrimSpace(row.Line), "{") {
		p, name = fp.json, "json"
	}
	out, ok := p.Process(labels.EmptyLabels(), logs.Entry{Timestamp: row.Timestamp, Line: row.Line})
	if !ok {
		return labels.EmptyLabels(), ""
	}
	return out.Parsed, name
}

type detectedField struct {
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Cardinality int      `json:"cardinality"`
	Parsers     []string `json:"parsers"`
	values      map[string]struct{}
}

// collectFields gathers the parsed fields and structured metadata of rows.
func collectFields(rows []logql.Row) map[string]*detectedField {
	fp := newFieldParsers()
	fields := map[string]*detectedField{}
	add := func(name, value, parser string) {
		if name == logql.ErrorLabel || strings.HasPrefix(name, "__") {
			return
		}
		f := fields[name]
		if f == nil {
			f = &detectedField{Label: name, values: map[string]struct{}{}}
			fields[name] = f
		}
		f.values[value] = struct{}{}
		if parser != "" && !slices.Contains(f.Parsers, parser) {
			f.Parsers = append(f.Parsers, parser)
		}
	}
	for _, row := range rows {
		row.Metadata.Range(func(l labels.Label) { add(l.Name, l.Value, "") })
		row.Parsed.Range(func(l labels.Label) { add(l.Name, l.Value, "") })
		parsed, parser := fp.parse(row)
		parsed.Range(func(l labels.Label) {
			if !row.Stream.Has(l.Name) {
				add(l.Name, l.Value, parser)
			}
		})
	}
	return fields
}

// detectedFields serves /loki/api/v1/detected_fields: the fields parsers and
// structured metadata give the query's recent lines, with their type and
// number of distinct values.
func (a *API) detectedFields(r *http.Request) (any, error) {
	rows, _, _, err := a.sampleRows(r)
	if err != nil {
		return nil, err
	}
	limit := defaultLineLimit
	for _, k := range []string{"field_limit", "limit"} {
		if v := r.Form.Get(k); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit <= 0 {
				return nil, errBadRequest("invalid %s: %q", k, v)
			}
		}
	}
	out := []*detectedField{}
	for _, f := range collectFields(rows) {
		f.Cardinality = len(f.values)
		f.Type = fieldType(f.values)
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *detectedField) int { return strings.Compare(a.Label, b.Label) })
	if len(out) > limit {
		out = out[:limit]
	}
	return map[string]any{"fields": out, "limit": limit}, nil
}

// detectedFieldValues serves /loki/api/v1/detected_field/<name>/values.
func (a *API) detectedFieldValues(r *http.Request) (any, error) {
	rows, _, _, err := a.sampleRows(r)
	if err != nil {
		return nil, err
	}
	vals := []string{}
	if f := collectFields(rows)[r.PathValue("name")]; f != nil {
		for v := range f.values {
			vals = append(vals, v)
		}
	}
	slices.Sort(vals)
	return map[string]any{"values": vals}, nil
}

// fieldType names the narrowest type every value has, as Loki's
// detected_fields types them.
func fieldType(values map[string]struct{}) string {
	all := func(ok func(string) bool) bool {
		for v := range values {
			if !ok(v) {
				return false
			}
		}
		return len(values) > 0
	}
	switch {
	case all(func(v string) bool { _, err := strconv.ParseInt(v, 10, 64); return err == nil }):
		return "int"
	case all(func(v string) bool { _, err := strconv.ParseFloat(v, 64); return err == nil }):
		return "float"
	case all(func(v string) bool { _, err := strconv.ParseBool(v); return err == nil }):
		return "boolean"
	case all(func(v string) bool { _, err := time.ParseDuration(v); return err == nil }):
		return "duration"
	case all(isBytes):
		return "bytes"
	}
	return "string"
}

// bytesValue is a size as Loki's bytes conversion reads it: 10KB, 1.5MiB, 7B.
var bytesValue = regexp.MustCompile(`(?i)^[0-9]+(\.[0-9]+)?\s*([kmgtpe]i?)?b$`)

func isBytes(v string) bool { return bytesValue.MatchString(v) }

type detectedLabel struct {
	Label       string `json:"label"`
	Cardinality int    `json:"cardinality"`
}

// detectedLabels serves /loki/api/v1/detected_labels: the stream labels of
// the selected streams with their number of values.
func (a *API) detectedLabels(r *http.Request) (any, error) {
	start, end, ms, err := a.labelParams(r, "query")
	if err != nil {
		return nil, err
	}
	series, err := a.q.Series(r.Context(), tenant(r), start, end, ms)
	if err != nil {
		return nil, err
	}
	values := map[string]map[string]struct{}{}
	for _, ls := range series {
		ls.Range(func(l labels.Label) {
			if strings.HasPrefix(l.Name, "__") {
				return
			}
			if values[l.Name] == nil {
				values[l.Name] = map[string]struct{}{}
			}
			values[l.Name][l.Value] = struct{}{}
		})
	}
	out := []detectedLabel{}
	for name, vs := range values {
		out = append(out, detectedLabel{name, len(vs)})
	}
	slices.SortFunc(out, func(a, b detectedLabel) int { return strings.Compare(a.Label, b.Label) })
	return map[string]any{"detectedLabels": out}, nil
}

// drilldownLimits serves /loki/api/v1/drilldown-limits, which Logs
// Drilldown reads to know what this server does: it discovers service_name
// and levels, answers volume and patterns, and bounds queries so.
func (a *API) drilldownLimits(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"limits": map[string]any{
			"discover_log_levels":         true,
			"discover_service_name":       logs.ServiceNameSources(),
			"log_level_fields":            logs.LevelSources(),
			"max_entries_limit_per_query": a.lim.MaxEntries,
			"max_query_length":            model.Duration(a.lim.MaxLength).String(),
			"max_query_series":            a.lim.MaxSeries,
			"query_timeout":               model.Duration(a.lim.Timeout).String(),
			"volume_enabled":              true,
			"pattern_persistence_enabled": false,
		},
		"pattern_ingester_enabled": true,
		"version":                  Version,
	})
}

// formatQuery serves /loki/api/v1/format_query (the query editor's "Format
// query" button): the query as the parser prints it.
func (a *API) formatQuery(r *http.Request) (any, error) {
	if err := form(r); err != nil {
		return nil, err
	}
	e, err := logql.ParseExpr(r.Form.Get("query"))
	if err != nil {
		return nil, err
	}
	return dataResponse{"success", e.String()}, nil
}
