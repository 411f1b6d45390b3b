package logql

import (
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Expr is a parsed LogQL query: a *LogExpr (returns log lines) or a
// SampleExpr (returns samples).
type Expr interface {
	String() string
}

// LogExpr is a stream selector followed by a pipeline.
type LogExpr struct {
	Matchers []*labels.Matcher
	Stages   []Stage
}

// Stage is one step of a log pipeline.
type Stage interface {
	String() string
}

// LineFilterOp is how a line filter compares a line.
type LineFilterOp int

const (
	LineContains LineFilterOp = iota
	LineNotContains
	LineRegex
	LineNotRegex
	LinePattern
	LineNotPattern
)

// LineFilter keeps lines that contain (or match) any of Values; a negated
// filter keeps lines matching none of them.
type LineFilter struct {
	Op     LineFilterOp
	Values []string // alternatives joined by `or`
}

// Negated reports whether the filter drops what matches.
func (f *LineFilter) Negated() bool {
	return f.Op == LineNotContains || f.Op == LineNotRegex || f.Op == LineNotPattern
}

// ParserStage extracts labels from the line: json, logfmt, regexp, pattern,
// unpack.
type ParserStage struct {
	Kind        string // json, logfmt, regexp, pattern, unpack
	Param       string // regexp or pattern text
	Flags       []string
	Extractions []Extraction // json/logfmt with explicit fields
}

// Extraction names one field a parser extracts into Label.
type Extraction struct {
	Label string
	Expr  string // json path or logfmt key; empty means Label itself
}

// DecolorizeStage strips ANSI colour sequences from the line.
type DecolorizeStage struct{}

// LabelFilterStage keeps lines whose labels satisfy Filter.
type LabelFilterStage struct {
	Filter LabelFilter
}

// LabelFilter is a predicate over labels: comparisons joined by and/or.
type LabelFilter interface {
	String() string
}

// BinaryLabelFilter is `a and b` or `a or b`.
type BinaryLabelFilter struct {
	And         bool
	Left, Right LabelFilter
}

// StringLabelFilter is `name op "value"` with op one of = != =~ !~.
type StringLabelFilter struct {
	Matcher *labels.Matcher
}

// CmpOp is a numeric comparison.
type CmpOp string

// NumericLabelFilter compares a label converted to a number, duration or
// byte size (Kind "number", "duration", "bytes") with Value.
type NumericLabelFilter struct {
	Name  string
	Op    CmpOp // == != > >= < <=
	Kind  string
	Value float64 // durations in seconds, bytes as a count
	Text  string  // the literal as written, for String
}

// LineFormatStage rewrites the line with a text/template.
type LineFormatStage struct {
	Template string
}

// LabelFormatStage renames labels (`dst=src`) or sets them from templates
// (`dst="{{...}}"`).
type LabelFormatStage struct {
	Items []LabelFmt
}

// LabelFmt is one label_format item.
type LabelFmt struct {
	Dst      string
	Value    string // source label or template
	Template bool
}

// DropStage removes labels; KeepStage (Keep true) keeps only them. An item
// with a Matcher is removed/kept only when the matcher holds.
type DropStage struct {
	Keep  bool
	Items []NameMatcher
}

// NameMatcher is a bare label name or a `name="value"`-style matcher.
type NameMatcher struct {
	Name    string
	Matcher *labels.Matcher
}

// SampleExpr is a metric query node.
type SampleExpr interface {
	Expr
	sample()
}

// Unwrap takes sample values from a label instead of counting lines.
type Unwrap struct {
	Label       string
	Conv        string // "", "duration", "duration_seconds", "bytes"
	PostFilters []LabelFilter
}

// Grouping is `by (…)` or `without (…)`.
type Grouping struct {
	Without bool
	Labels  []string
}

// RangeAggExpr is a range aggregation over a log query, e.g.
// `rate({app="x"}[5m])` or `quantile_over_time(0.99, {…} | unwrap d [1m]) by (a)`.
type RangeAggExpr struct {
	Op       string
	Param    float64 // quantile
	Log      *LogExpr
	Range    time.Duration
	Offset   time.Duration
	Unwrap   *Unwrap
	Grouping *Grouping
}

// VectorAggExpr aggregates across series: sum, avg, min, max, count, topk…
type VectorAggExpr struct {
	Op       string
	Param    float64 // k for topk/bottomk
	Inner    SampleExpr
	Grouping *Grouping
}

// BinOpExpr is an arithmetic, comparison or set operation.
type BinOpExpr struct {
	Op         string
	LHS, RHS   SampleExpr
	ReturnBool bool
	Matching   *VectorMatching
}

// VectorMatching is `on (…)` / `ignoring (…)` with an optional group modifier.
type VectorMatching struct {
	On      bool
	Labels  []string
	Card    string // "", "group_left", "group_right"
	Include []string
}

// NumberExpr is a scalar literal.
type NumberExpr struct {
	Value float64
}

// VectorExpr is `vector(x)`: one series without labels.
type VectorExpr struct {
	Value float64
}

// LabelReplaceExpr is `label_replace(v, dst, replacement, src, regex)`.
type LabelReplaceExpr struct {
	Inner                  SampleExpr
	Dst, Repl, Src, Regexp string
}

func (*RangeAggExpr) sample()     {}
func (*VectorAggExpr) sample()    {}
func (*BinOpExpr) sample()        {}
func (*NumberExpr) sample()       {}
func (*VectorExpr) sample()       {}
func (*LabelReplaceExpr) sample() {}
