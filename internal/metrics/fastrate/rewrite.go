package fastrate

import (
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// placeholderLabel names the selector a computed target is replaced by in
// the query the engine runs; its value is the target's index.
const placeholderLabel = "__fastrate__"

// target is one `sum by/without (...) (rate|increase(sel[w]))` or one
// `count|sum by/without (...) (sel)` of a query, computed by this package
// instead of the engine.
type target struct {
	without  bool
	grouping []string // sorted, as the engine sorts them
	isRate   bool
	fn       string // rate or increase, or count or sum: the selector's hint
	vs       *parser.VectorSelector
	// instant: the sum or count of an instant vector selector (rng is 0),
	// whose values are its latest samples in each step's lookback.
	instant bool
	count   bool
	// by and byLabels are the selector's grouping hints, the engine's.
	by       bool
	byLabels []string
	lookback int64 // the query's lookback delta, ms: set once parsed
	rng      int64 // the range, ms
	rangeDur float64
	offset   int64 // ms
	// rangeOffset is the range plus the offset in ms, as extrapolatedRate
	// computes the window's start.
	rangeOffset int64
}

// rewrite returns qs with each target replaced by a placeholder selector,
// and the targets, none when qs has none the engine's answer is known to
// be reproduced for. A target is replaced only where its value at each
// step is all its parents read of it: under parentheses, aggregations,
// histogram_quantile and binary operators that copy no labels from the
// other side (group_left/right with labels could bring in a metric name,
// whose removal depends on where the series came from).
func rewrite(p parser.Parser, qs string) (string, []target) {
	if strings.Contains(qs, placeholderLabel) {
		return "", nil
	}
	expr, err := p.ParseExpr(qs)
	if err != nil {
		return "", nil
	}
	var targets []target
	var walk func(parser.Expr) parser.Expr
	walk = func(e parser.Expr) parser.Expr {
		switch n := e.(type) {
		case *parser.ParenExpr:
			n.Expr = walk(n.Expr)
		case *parser.AggregateExpr:
			if t, ok := asTarget(n); ok {
				targets = append(targets, t)
				return placeholder(len(targets) - 1)
			}
			n.Expr = walk(n.Expr)
		case *parser.Call:
			if n.Func.Name == "histogram_quantile" && len(n.Args) == 2 {
				n.Args[1] = walk(n.Args[1])
			}
		case *parser.BinaryExpr:
			if n.VectorMatching == nil || len(n.VectorMatching.Include) == 0 {
				n.LHS, n.RHS = walk(n.LHS), walk(n.RHS)
			}
		}
		return e
	}
	expr = walk(expr)
	if len(targets) == 0 {
		return "", nil
	}
	return expr.String(), targets
}

// asTarget recognises `sum by/without (...) (rate|increase(sel[w]))` and
// `count|sum by/without (...) (sel)` over a plain selector: no @, no
// anchored or smoothed modifier, no duration expressions, no grouping by
// the metric name or its metadata labels.
func asTarget(a *parser.AggregateExpr) (target, bool) {
	if (a.Op != parser.SUM && a.Op != parser.COUNT) || a.Param != nil {
		return target{}, false
	}
	for _, l := range a.Grouping {
		if l == model.MetricNameLabel || l == model.MetricTypeLabel || l == model.MetricUnitLabel {
			return target{}, false
		}
	}
	if vs, ok := a.Expr.(*parser.VectorSelector); ok {
		return instantTarget(a, vs)
	}
	if a.Op != parser.SUM {
		return target{}, false
	}
	call, ok := unparen(a.Expr).(*parser.Call)
	if !ok || (call.Func.Name != "rate" && call.Func.Name != "increase") || len(call.Args) != 1 {
		return target{}, false
	}
	ms, ok := call.Args[0].(*parser.MatrixSelector)
	if !ok || ms.RangeExpr != nil || ms.Range <= 0 {
		return target{}, false
	}
	vs, ok := ms.VectorSelector.(*parser.VectorSelector)
	if !ok || !plain(vs) {
		return target{}, false
	}
	return target{
		without: a.Without, grouping: sortedGrouping(a), isRate: call.Func.Name == "rate", fn: call.Func.Name, vs: vs,
		rng: ms.Range.Milliseconds(), rangeDur: ms.Range.Seconds(), offset: vs.OriginalOffset.Milliseconds(),
		rangeOffset: (ms.Range + vs.OriginalOffset).Milliseconds(),
	}, true
}

// instantTarget is `count|sum by/without (...) (vs)`: the selector directly
// under the aggregation, so the engine's hints name it.
func instantTarget(a *parser.AggregateExpr, vs *parser.VectorSelector) (target, bool) {
	if !plain(vs) {
		return target{}, false
	}
	return target{
		without: a.Without, grouping: sortedGrouping(a), fn: a.Op.String(), vs: vs,
		instant: true, count: a.Op == parser.COUNT, by: !a.Without, byLabels: a.Grouping,
		offset: vs.OriginalOffset.Milliseconds(),
	}, true
}

// plain reports whether vs has no @, no anchored or smoothed modifier and
// no duration expression.
func plain(vs *parser.VectorSelector) bool {
	return vs.Timestamp == nil && vs.StartOrEnd == 0 && !vs.Anchored && !vs.Smoothed && vs.OriginalOffsetExpr == nil
}

// sortedGrouping is the engine's grouping of a: sorted, and for without
// with the metric name and its metadata labels.
func sortedGrouping(a *parser.AggregateExpr) []string {
	grouping := append([]string(nil), a.Grouping...)
	if a.Without {
		grouping = append(grouping, model.MetricNameLabel, model.MetricTypeLabel, model.MetricUnitLabel)
	}
	slices.Sort(grouping)
	return grouping
}

func unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

func placeholder(i int) *parser.VectorSelector {
	return &parser.VectorSelector{LabelMatchers: []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, placeholderLabel, strconv.Itoa(i))}}
}
