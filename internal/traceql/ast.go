package traceql

import "time"

// The AST mirrors TraceQL's two layers: field expressions evaluated per span
// (inside {...}, by(), select(), aggregates) and pipeline stages evaluated over
// spansets.

// FieldExpr is an expression evaluated against one span.
type FieldExpr interface {
	String() string
	fieldExpr()
}

// Literal is a typed constant: string, int, float, duration, bool, nil, status or kind.
type Literal struct{ V value }

// AttrRef is a span, resource, event, link or instrumentation attribute.
// Scope "" is an unscoped attribute (.foo): span first, then resource.
type AttrRef struct {
	Scope string
	Name  string
}

// IntrinsicRef is a built-in span or trace field. Name is canonical: scoped
// aliases such as span:name or trace:rootService are folded into the names
// Tempo reports (name, rootServiceName); event:name, link:traceID and friends keep their scope.
type IntrinsicRef struct{ Name string }

// BinaryExpr is a comparison, arithmetic or boolean operation.
type BinaryExpr struct {
	Op   string
	L, R FieldExpr
	pos  position // of the operator, for validation errors
}

// UnaryExpr is "!" (boolean not) or "-" (negation).
type UnaryExpr struct {
	Op  string
	X   FieldExpr
	pos position
}

// position is a 1-based line and column in the query text.
type position struct{ line, col int }

func posOf(t token) position { return position{t.line, t.col} }

func (Literal) fieldExpr()      {}
func (AttrRef) fieldExpr()      {}
func (IntrinsicRef) fieldExpr() {}
func (*BinaryExpr) fieldExpr()  {}
func (*UnaryExpr) fieldExpr()   {}

// Stage is one element of a pipeline: a spanset expression, a scalar filter,
// by(), select(), coalesce() or (last, top level only) a metrics function.
type Stage interface {
	String() string
	stage()
}

// SpansetExpr is a stage that selects spans: a filter, a spanset operation or a
// parenthesised pipeline.
type SpansetExpr interface {
	Stage
	spansetExpr()
}

// Pipeline is a sequence of stages separated by "|".
type Pipeline struct{ Stages []Stage }

// SpansetFilter is {expr}; a nil Expr is {} and matches every span.
type SpansetFilter struct {
	Expr FieldExpr
	pos  position
}

// SpansetOp combines two spanset expressions: && || and the structural operators.
type SpansetOp struct {
	Op   string
	L, R SpansetExpr
}

// ScalarFilter compares aggregates of a spanset: count() > 3.
type ScalarFilter struct {
	Op   string
	L, R ScalarExpr
}

// ByStage groups spans by the value of an expression.
type ByStage struct {
	X   FieldExpr
	pos position
}

// SelectStage asks for extra attributes in the results.
type SelectStage struct{ Fields []FieldExpr }

// CoalesceStage merges all spansets of a trace back into one.
type CoalesceStage struct{}

// MetricsStage is the final metrics function of a metrics query.
type MetricsStage struct {
	Fn        string    // rate, count_over_time, min_over_time, ..., compare
	Attr      FieldExpr // argument of *_over_time functions
	Quantiles []float64 // quantile_over_time
	By        []FieldExpr
	// compare() arguments.
	Selection                *SpansetFilter
	TopN                     int
	CompareStart, CompareEnd int64 // unix nanoseconds, 0 = whole range
	// Second holds the stages applied to the resulting series, in order:
	// | topk(n), | bottomk(n), and sample filters such as > 10.
	Second []SecondStage
}

// SecondStage post-processes metrics series: Op is "topk" or "bottomk" (N
// series per timestamp) or a comparison that keeps samples against Value
// (durations are converted to seconds).
type SecondStage struct {
	Op    string
	N     int
	Value float64
}

// ScalarExpr is an expression over a spanset: aggregates, literals, arithmetic.
type ScalarExpr interface {
	String() string
	scalarExpr()
}

// Aggregate is count() avg(x) min(x) max(x) sum(x).
type Aggregate struct {
	Fn  string
	X   FieldExpr // nil for count()
	pos position
}

// ScalarLiteral is a number or duration constant in a scalar filter.
type ScalarLiteral struct{ V value }

// ScalarBinary is arithmetic between scalar expressions.
type ScalarBinary struct {
	Op   string
	L, R ScalarExpr
}

func (*Pipeline) stage()            {}
func (*SpansetFilter) stage()       {}
func (*SpansetOp) stage()           {}
func (*ScalarFilter) stage()        {}
func (*ByStage) stage()             {}
func (*SelectStage) stage()         {}
func (*CoalesceStage) stage()       {}
func (*MetricsStage) stage()        {}
func (*Pipeline) spansetExpr()      {}
func (*SpansetFilter) spansetExpr() {}
func (*SpansetOp) spansetExpr()     {}

func (*Aggregate) scalarExpr()    {}
func (ScalarLiteral) scalarExpr() {}
func (*ScalarBinary) scalarExpr() {}

// intrinsic names as written unscoped, and the canonical name of each scoped form.
var unscopedIntrinsics = map[string]bool{
	"duration": true, "name": true, "status": true, "statusMessage": true, "kind": true,
	"rootName": true, "rootServiceName": true, "traceDuration": true,
	// Grafana's Traces Drilldown selects root spans with nestedSetParent < 0.
	"nestedSetLeft": true, "nestedSetRight": true, "nestedSetParent": true,
}

var scopedIntrinsics = map[string]string{
	"span:duration":           "duration",
	"span:name":               "name",
	"span:kind":               "kind",
	"span:status":             "status",
	"span:statusMessage":      "statusMessage",
	"span:id":                 "span:id",
	"span:parentID":           "span:parentID",
	"span:childCount":         "span:childCount",
	"trace:duration":          "traceDuration",
	"trace:rootName":          "rootName",
	"trace:rootService":       "rootServiceName",
	"trace:id":                "trace:id",
	"event:name":              "event:name",
	"event:timeSinceStart":    "event:timeSinceStart",
	"link:traceID":            "link:traceID",
	"link:spanID":             "link:spanID",
	"instrumentation:name":    "instrumentation:name",
	"instrumentation:version": "instrumentation:version",
}

// durationOf is a helper for literals.
func durationLit(d time.Duration) Literal { return Literal{V: value{t: vDur, n: int64(d)}} }
