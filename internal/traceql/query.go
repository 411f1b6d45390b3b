// Package traceql parses and evaluates TraceQL, Tempo's trace query language:
// spanset filters, spanset and structural operators, pipelines with
// aggregates, by(), select() and coalesce(), and metrics queries such as
// rate() and quantile_over_time().
//
// A Query is compiled once by Parse into closures and is safe for concurrent
// use. The trace store calls EvalTrace for each candidate trace (after using
// Hints to skip data that cannot match) and EvalMetrics for metrics queries.
//
// Entry points for a store:
//
//   - Parse: a *ParseError (line, column, what was expected) is a 400.
//   - Query.IsMetrics: metrics queries go to EvalMetrics, others to EvalTrace.
//   - Query.Hints and Hints.MayMatch with a TraceSummary (Summarize builds one
//     per trace, TraceSummary.Merge one per block): skip data cheaply.
//   - Query.EvalTrace: pass one whole trace, get the matching spansets with
//     the attributes Tempo puts in search results. Query.SpanLocal tells when
//     parts of a trace may be evaluated separately instead.
//   - Query.EvalMetrics: stream the traces of the time range, get series
//     with Tempo's labels, alignment and exemplars.
//
// Semantics follow Tempo: regexes are fully anchored RE2; comparisons between
// mismatched types are false (and rejected at parse time when both types are
// known, e.g. status = "error"); && and || share one precedence level and
// associate left, inside filters and between spansets; structural operators
// bind tighter than && and || and return the right-hand spans (union forms
// both sides, negated forms the right-hand spans without such a relative).
//
// The AST types (Pipeline, SpansetFilter, BinaryExpr, ...) are exported for
// inspection; stores do not need them.
package traceql

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Query is a parsed and compiled TraceQL query.
type Query struct {
	text     string
	pipeline *Pipeline
	math     *MetricsMath  // arithmetic between metrics queries, instead of pipeline
	metrics  *MetricsStage // last stage of a metrics query, else nil
	run      stageFn
	selected []selectedField
	hints    Hints
}

// selectedField is an attribute reported with each matched span.
type selectedField struct {
	key  string
	eval evalFn
}

// Spanset is a set of matching spans from one trace.
type Spanset struct {
	Spans []MatchedSpan
	// Attributes are the values that by() and aggregates attached, keyed as
	// Tempo reports them in spanSets[].attributes: "by(resource.service.name)",
	// "count()", "avg(duration)".
	Attributes []Attribute
}

// MatchedSpan is one span of a Spanset, with the resource and scope it was sent with.
type MatchedSpan struct {
	Resource pcommon.Resource
	Scope    pcommon.InstrumentationScope
	Span     ptrace.Span
	// Selected holds the attributes the query touched or select()ed that the
	// span has, keyed by bare name ("http.method", "status", "kind") as Tempo
	// returns them. name, duration and trace-level intrinsics are left out:
	// they have their own fields in search results.
	Selected []Attribute
}

// Attribute is a named typed value. Durations, statuses and kinds are strings.
type Attribute struct {
	Key   string
	Value pcommon.Value
}

// String returns the canonical TraceQL text of the query.
func (q *Query) String() string {
	if q.math != nil {
		return q.math.String()
	}
	return q.pipeline.String()
}

// IsMetrics reports whether the query ends in a metrics function (rate() ...);
// such queries run through EvalMetrics, not EvalTrace.
func (q *Query) IsMetrics() bool { return q.metrics != nil || q.math != nil }

// Hints returns conditions every matching trace satisfies; see Hints.MayMatch.
func (q *Query) Hints() Hints { return q.hints }

// MatchesAll reports whether the query is the bare filter {}: every trace with a
// span matches, with one spanset of all its spans and no attributes. A store may
// then pick the traces to return from their start times alone and evaluate only
// those.
func (q *Query) MatchesAll() bool {
	if q.pipeline == nil || len(q.pipeline.Stages) != 1 {
		return false
	}
	f, ok := q.pipeline.Stages[0].(*SpansetFilter)
	return ok && f.Expr == nil
}

func compileQuery(text string, pl *Pipeline) (*Query, error) {
	q := &Query{text: text, pipeline: pl}
	if m, ok := pl.Stages[len(pl.Stages)-1].(*MetricsStage); ok {
		q.metrics = m
	}
	run, err := compilePipeline(pl)
	if err != nil {
		return nil, &ParseError{Line: 1, Col: 1, Msg: err.Error()}
	}
	q.run = run
	if q.selected, err = collectSelected(pl); err != nil {
		return nil, &ParseError{Line: 1, Col: 1, Msg: err.Error()}
	}
	q.hints = pipelineHints(pl)
	return q, nil
}

// EvalTrace evaluates a non-metrics query over one whole trace (all its spans,
// from any number of ResourceSpans) and returns the matching spansets, or nil
// when the trace does not match. The returned spans alias td.
func (q *Query) EvalTrace(td ptrace.Traces) []Spanset {
	if q.run == nil {
		return nil // arithmetic between metrics queries selects no spans by itself
	}
	c := newTraceCtx(td)
	defer c.release()
	if len(c.rows) == 0 {
		return nil
	}
	res := q.run(c, c.allSpans())
	if len(res) == 0 {
		return nil
	}
	out := make([]Spanset, 0, len(res))
	for _, s := range res {
		ss := Spanset{Spans: make([]MatchedSpan, len(s.spans)), Attributes: s.attrs}
		for j, i := range s.spans {
			r := &c.rows[i]
			ss.Spans[j] = MatchedSpan{Resource: r.res, Scope: r.scope, Span: r.span, Selected: q.selectedFor(c, r)}
		}
		out = append(out, ss)
	}
	return out
}

func (q *Query) selectedFor(c *traceCtx, r *spanRow) []Attribute {
	var out []Attribute
	for _, f := range q.selected {
		if v := f.eval(c, r); v.t != vNil {
			out = append(out, Attribute{Key: f.key, Value: v.toPcommon()})
		}
	}
	return out
}

// reportedIntrinsics are intrinsics Tempo leaves out of span attributes in
// search results because they have dedicated fields.
var unreportedIntrinsics = map[string]bool{
	"name": true, "duration": true, "traceDuration": true, "rootServiceName": true,
	"rootName": true, "trace:id": true, "span:id": true,
}

// internalIntrinsics are reported only when select()ed: Grafana filters on
// nestedSetParent < 0 and does not expect it back as a span attribute.
var internalIntrinsics = map[string]bool{"nestedSetLeft": true, "nestedSetRight": true, "nestedSetParent": true}

// collectSelected lists, in query order and without duplicates, the fields
// whose values are returned with each span.
func collectSelected(pl *Pipeline) ([]selectedField, error) {
	var out []selectedField
	seen := map[string]bool{}
	explicit := map[string]bool{} // fields named in select()
	var findSelects func(st Stage)
	findSelects = func(st Stage) {
		switch st := st.(type) {
		case *SelectStage:
			for _, f := range st.Fields {
				explicit[f.String()] = true
			}
		case *Pipeline:
			for _, s := range st.Stages {
				findSelects(s)
			}
		case *SpansetOp:
			findSelects(st.L)
			findSelects(st.R)
		}
	}
	findSelects(pl)
	var err error
	add := func(e FieldExpr) {
		var key string
		switch e := e.(type) {
		case AttrRef:
			key = e.Name
		case IntrinsicRef:
			if unreportedIntrinsics[e.Name] || internalIntrinsics[e.Name] && !explicit[e.Name] {
				return
			}
			key = e.Name
		default:
			return
		}
		id := e.String()
		if seen[id] || seen["key:"+key] {
			return
		}
		seen[id], seen["key:"+key] = true, true
		cf, cerr := compileField(e)
		if cerr != nil {
			err = cerr
			return
		}
		out = append(out, selectedField{key: key, eval: cf.eval})
	}
	walkPipeline(pl, add)
	return out, err
}

// walkPipeline calls fn for every attribute and intrinsic reference in
// spanset filters, by(), select() and aggregates (not in compare() or metrics).
func walkPipeline(pl *Pipeline, fn func(FieldExpr)) {
	for _, st := range pl.Stages {
		walkStage(st, fn)
	}
}

func walkStage(st Stage, fn func(FieldExpr)) {
	switch st := st.(type) {
	case *Pipeline:
		walkPipeline(st, fn)
	case *SpansetFilter:
		if st.Expr != nil {
			walkField(st.Expr, fn)
		}
	case *SpansetOp:
		walkStage(st.L, fn)
		walkStage(st.R, fn)
	case *ByStage:
		walkField(st.X, fn)
	case *SelectStage:
		for _, f := range st.Fields {
			walkField(f, fn)
		}
	case *ScalarFilter:
		walkScalar(st.L, fn)
		walkScalar(st.R, fn)
	}
}

func walkScalar(e ScalarExpr, fn func(FieldExpr)) {
	switch e := e.(type) {
	case *Aggregate:
		if e.X != nil {
			walkField(e.X, fn)
		}
	case *ScalarBinary:
		walkScalar(e.L, fn)
		walkScalar(e.R, fn)
	}
}

func walkField(e FieldExpr, fn func(FieldExpr)) {
	switch e := e.(type) {
	case *BinaryExpr:
		walkField(e.L, fn)
		walkField(e.R, fn)
	case *UnaryExpr:
		walkField(e.X, fn)
	default:
		fn(e)
	}
}
