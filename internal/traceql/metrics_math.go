package traceql

import (
	"fmt"
	"iter"
	"math"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MetricsMath is arithmetic between metrics queries and numbers, such as
// ({ status = error } | rate()) / ({ } | rate()) * 100. Exactly one of Leaf,
// Scalar (IsScalar) or Op/L/R is set.
type MetricsMath struct {
	Op       string // + - * /
	L, R     *MetricsMath
	Leaf     *Pipeline // a pipeline ending in a metrics function
	Scalar   float64
	IsScalar bool
	Second   []SecondStage // applied to the result of this node
}

func (m *MetricsMath) String() string {
	var s string
	switch {
	case m.Leaf != nil:
		s = "(" + m.Leaf.String() + ")"
	case m.IsScalar:
		s = formatFloat(m.Scalar)
		if m.Scalar < 0 {
			s = "(" + s + ")"
		}
	default:
		s = "(" + m.L.String() + " " + m.Op + " " + m.R.String() + ")"
	}
	return s + secondText(m.Second)
}

func secondText(ss []SecondStage) string {
	var sb strings.Builder
	for _, s := range ss {
		if s.Op == "topk" || s.Op == "bottomk" {
			fmt.Fprintf(&sb, " | %s(%d)", s.Op, s.N)
		} else {
			sb.WriteString(" " + s.Op + " " + formatFloat(s.Value))
		}
	}
	return sb.String()
}

func (m *MetricsMath) leaves(fn func(*Pipeline)) {
	switch {
	case m.Leaf != nil:
		fn(m.Leaf)
	case !m.IsScalar:
		m.L.leaves(fn)
		m.R.leaves(fn)
	}
}

var mathPrec = map[string]int{"+": 1, "-": 1, "*": 2, "/": 2}

// parseMetricsMath parses arithmetic over parenthesised metrics queries.
func (p *parser) parseMetricsMath(minPrec int) (*MetricsMath, error) {
	left, err := p.parseMathPrimary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		prec, ok := mathPrec[t.text]
		if t.kind != tPunct || !ok || prec < minPrec {
			return left, nil
		}
		p.next()
		right, err := p.parseMetricsMath(prec + 1)
		if err != nil {
			return nil, err
		}
		left = &MetricsMath{Op: t.text, L: left, R: right}
	}
}

func (p *parser) parseMathPrimary() (*MetricsMath, error) {
	t := p.peek()
	switch {
	case t.kind == tPunct && t.text == "(":
		p.next()
		save := p.pos
		// Either a metrics query or a parenthesised math expression.
		if pl, err := p.parsePipeline(true); err == nil && p.isPunct(")") {
			if ms, ok := pl.Stages[len(pl.Stages)-1].(*MetricsStage); ok {
				p.sawLeaf = true
				if ms.Fn == "compare" {
					return nil, p.errAt(t, "compare() cannot be used in arithmetic")
				}
				p.next()
				return &MetricsMath{Leaf: pl}, nil
			}
		}
		p.pos = save
		inner, err := p.parseMetricsMath(0)
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return inner, nil
	case t.kind == tInt || t.kind == tFloat || t.kind == tDuration || t.kind == tPunct && t.text == "-":
		e, err := p.parseScalarPrimary()
		if err != nil {
			return nil, err
		}
		v, ok := foldScalar(e)
		if !ok {
			return nil, p.errAt(t, "expected a number")
		}
		return &MetricsMath{Scalar: v, IsScalar: true}, nil
	}
	return nil, p.errExpected(`"(" and a metrics query, or a number`)
}

func validateMath(m *MetricsMath, t token, p *parser) error {
	n := 0
	m.leaves(func(*Pipeline) { n++ })
	if n == 0 {
		return p.errAt(t, "arithmetic needs at least one metrics query such as ({} | rate())")
	}
	var err error
	m.leaves(func(pl *Pipeline) {
		if err == nil {
			err = validatePipeline(pl)
		}
	})
	return err
}

// evalMath evaluates every metrics query of the expression in one pass over
// the traces, then combines the series like Tempo: series match on their
// labels other than __name__; a side without labels (an ungrouped query)
// applies to every series of the other side; division by zero drops the sample.
func (q *Query) evalMath(req MetricsRequest, traces iter.Seq[ptrace.Traces]) (*MetricsResult, error) {
	iv := newIntervals(req)
	type leaf struct {
		run stageFn
		agg *metricsAgg
	}
	byPipeline := map[*Pipeline]*leaf{}
	var leaves []*leaf
	var err error
	q.math.leaves(func(pl *Pipeline) {
		if err != nil {
			return
		}
		run, cerr := compilePipeline(pl)
		if cerr != nil {
			err = cerr
			return
		}
		agg, aerr := newMetricsAgg(pl.Stages[len(pl.Stages)-1].(*MetricsStage), iv, req)
		if aerr != nil {
			err = aerr
			return
		}
		l := &leaf{run: run, agg: agg}
		byPipeline[pl] = l
		leaves = append(leaves, l)
	})
	if err != nil {
		return nil, err
	}
	for td := range traces {
		for _, l := range leaves {
			if err := observeWith(td, l.run, l.agg); err != nil {
				return nil, err
			}
		}
	}
	var eval func(m *MetricsMath) []rawSeries
	eval = func(m *MetricsMath) []rawSeries {
		var out []rawSeries
		switch {
		case m.Leaf != nil:
			out = byPipeline[m.Leaf].agg.rawResult()
		case m.IsScalar:
			vals := make([]float64, iv.n)
			for i := range vals {
				vals[i] = m.Scalar
			}
			out = []rawSeries{{vals: vals, scalar: true}}
		default:
			out = combineSeries(m.Op, eval(m.L), eval(m.R))
		}
		for _, st := range m.Second {
			out = applySecondStage(st, out, iv.n)
		}
		return out
	}
	raw := eval(q.math)
	fin := &metricsAgg{iv: iv}
	var kept []rawSeries
	for _, r := range raw {
		if !r.scalar {
			kept = append(kept, r)
		}
	}
	return fin.finishAll(kept), nil
}

func observeWith(td ptrace.Traces, run stageFn, agg *metricsAgg) error {
	q := &Query{run: run}
	return q.observeTrace(td, agg)
}

func combineSeries(op string, l, r []rawSeries) []rawSeries {
	index := func(ss []rawSeries) (map[string]int, int) {
		m := map[string]int{}
		unlabeled := -1
		for i, s := range ss {
			k := matchKey(s.labels)
			m[k] = i
			if k == "" {
				unlabeled = i
			}
		}
		return m, unlabeled
	}
	li, lAll := index(l)
	ri, rAll := index(r)
	target, targetIdx := l, li
	if rAll < 0 {
		target, targetIdx = r, ri
	}
	find := func(ss []rawSeries, idx map[string]int, all int, k string) (rawSeries, bool, bool) {
		if i, ok := idx[k]; ok {
			return ss[i], false, true
		}
		if all >= 0 {
			return ss[all], true, true
		}
		return rawSeries{}, false, false
	}
	var out []rawSeries
	for _, t := range target {
		k := matchKey(t.labels)
		_ = targetIdx
		ls, lFan, ok1 := find(l, li, lAll, k)
		rs, rFan, ok2 := find(r, ri, rAll, k)
		if !ok1 || !ok2 {
			continue
		}
		n := min(len(ls.vals), len(rs.vals))
		vals := make([]float64, n)
		for j := range vals {
			vals[j] = arithFloat(op, ls.vals[j], rs.vals[j])
		}
		var ex []Exemplar
		switch {
		case ls.scalar && !rs.scalar:
			ex = scaleExemplars(rs.exemplars, func(v float64) float64 { return arithFloat(op, ls.vals[0], v) })
		case rs.scalar && !ls.scalar:
			ex = scaleExemplars(ls.exemplars, func(v float64) float64 { return arithFloat(op, v, rs.vals[0]) })
		case lFan == rFan:
			ex = append(append([]Exemplar(nil), ls.exemplars...), rs.exemplars...)
		case lFan:
			ex = rs.exemplars
		default:
			ex = ls.exemplars
		}
		out = append(out, rawSeries{labels: mergeMathLabels(op, ls, rs), vals: vals, exemplars: ex, scalar: ls.scalar && rs.scalar})
	}
	return out
}

func scaleExemplars(in []Exemplar, f func(float64) float64) []Exemplar {
	out := make([]Exemplar, len(in))
	for i, e := range in {
		out[i] = e
		out[i].Value = f(e.Value) // NaN placeholders stay NaN and take the sample value later
	}
	return out
}

func arithFloat(op string, a, b float64) float64 {
	switch op {
	case "+":
		return a + b
	case "-":
		return a - b
	case "*":
		return a * b
	case "/":
		if b == 0 {
			return math.NaN()
		}
		return a / b
	}
	return math.NaN()
}

// matchKey is the label identity used to pair series: every label but __name__.
func matchKey(ls []Attribute) string {
	var sb strings.Builder
	for _, l := range ls {
		if l.Key == "__name__" {
			continue
		}
		sb.WriteString(l.Key)
		sb.WriteByte(0)
		sb.WriteString(l.Value.AsString())
		sb.WriteByte(0)
	}
	return sb.String()
}

// mergeMathLabels keeps the left labels, adds right labels it lacks, and
// names the result "(left op right)" when both sides have a __name__.
func mergeMathLabels(op string, l, r rawSeries) []Attribute {
	if l.scalar {
		return r.labels
	}
	if r.scalar {
		return l.labels
	}
	get := func(ls []Attribute, k string) (string, bool) {
		for _, a := range ls {
			if a.Key == k {
				return a.Value.AsString(), true
			}
		}
		return "", false
	}
	out := make([]Attribute, 0, len(l.labels)+len(r.labels))
	out = append(out, l.labels...)
	for _, a := range r.labels {
		if _, dup := get(l.labels, a.Key); dup || a.Key == "__name__" {
			continue
		}
		out = append(out, a)
	}
	ln, lok := get(l.labels, "__name__")
	rn, rok := get(r.labels, "__name__")
	for i, a := range out {
		if a.Key != "__name__" {
			continue
		}
		if lok && rok {
			out[i] = Attribute{Key: "__name__", Value: pcommon.NewValueStr("(" + ln + " " + op + " " + rn + ")")}
		} else {
			out = append(out[:i], out[i+1:]...)
		}
		break
	}
	return out
}

func compileMath(text string, m *MetricsMath) (*Query, error) {
	q := &Query{text: text, math: m}
	first := true
	var err error
	m.leaves(func(pl *Pipeline) {
		if _, cerr := compilePipeline(pl); cerr != nil && err == nil {
			err = &ParseError{Line: 1, Col: 1, Msg: cerr.Error()}
		}
		// A trace contributes when it matches any of the queries.
		h := pipelineHints(pl)
		if first {
			q.hints, first = h, false
		} else {
			q.hints = orHints(q.hints, h)
		}
	})
	return q, err
}
