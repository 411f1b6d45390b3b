package traceql

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
)

// ParseError reports where a query stopped making sense and why.
type ParseError struct {
	Line, Col int // 1-based position of the offending token
	Msg       string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

// after reports whether e points further into the query than o.
func (e *ParseError) after(o *ParseError) bool {
	return e.Line > o.Line || e.Line == o.Line && e.Col > o.Col
}

type parser struct {
	toks []token
	pos  int
	// sawLeaf is set once a parenthesised metrics query was parsed: the
	// query is then certainly metrics arithmetic, so its errors win.
	sawLeaf bool
	// lenient accepts the half-typed queries Grafana sends while
	// autocompleting (see ParseLenient).
	lenient bool
}

// Parse parses a TraceQL query: a spanset pipeline such as
// `{resource.service.name="api" && duration > 100ms} | count() > 2`, or a
// metrics query such as `{status=error} | rate() by (resource.service.name)`.
// Errors are *ParseError values carrying the line and column.
func Parse(query string) (*Query, error) { return parse(query, false) }

// ParseLenient parses a query that is still being typed, as Grafana sends in
// the q parameter of tag-value requests while autocompleting: a comparison
// missing its right-hand side (`.http.method = }`) counts as true, and a
// missing closing "}" is supplied. Like Tempo's lenient parser it lets the
// complete conditions narrow the values offered. An empty query is {}.
func ParseLenient(query string) (*Query, error) {
	if strings.TrimSpace(query) == "" {
		query = "{}"
	}
	return parse(query, true)
}

func parse(query string, lenient bool) (*Query, error) {
	toks, err := lex(query)
	if err != nil {
		if lenient {
			// An unterminated string or attribute at the cursor: drop from there.
			var pe *ParseError
			if errors.As(err, &pe) {
				if cut := offsetOf(query, pe.Line, pe.Col); cut > 0 && cut < len(query) {
					return parse(query[:cut], true)
				}
			}
		}
		return nil, err
	}
	p := &parser{toks: toks, lenient: lenient}
	pl, err := p.parsePipeline(true)
	if err != nil {
		// Arithmetic between metrics queries starts like a grouped pipeline
		// or a number: try it, and report whichever attempt got further.
		if t := toks[0]; t.kind == tPunct && (t.text == "(" || t.text == "-") || t.kind == tInt || t.kind == tFloat || t.kind == tDuration {
			q, committed, merr := parseMathQuery(query, toks)
			if merr == nil {
				return q, nil
			}
			var pe1, pe2 *ParseError
			if committed || errors.As(err, &pe1) && errors.As(merr, &pe2) && pe2.after(pe1) {
				return nil, merr
			}
		}
		return nil, err
	}
	if p.isIdent("with") {
		if err := p.parseHints(); err != nil {
			return nil, err
		}
	}
	if p.peek().kind != tEOF {
		return nil, p.errExpected(`"|", "&&", "||", a structural operator or the end of the query`)
	}
	if err := validatePipeline(pl); err != nil {
		return nil, err
	}
	return compileQuery(query, pl)
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) isIdent(s string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == s
}

func (p *parser) errAt(t token, format string, args ...any) *ParseError {
	return &ParseError{Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errExpected(what string) *ParseError {
	t := p.peek()
	return p.errAt(t, "expected %s but found %s", what, t.describe())
}

func (p *parser) expectPunct(s string) error {
	if !p.isPunct(s) {
		return p.errExpected(fmt.Sprintf("%q", s))
	}
	p.next()
	return nil
}

var metricsFns = map[string]bool{
	"rate": true, "count_over_time": true, "min_over_time": true, "max_over_time": true,
	"avg_over_time": true, "sum_over_time": true, "quantile_over_time": true,
	"histogram_over_time": true, "compare": true,
}

var aggregateFns = map[string]bool{"count": true, "avg": true, "min": true, "max": true, "sum": true}

// parsePipeline parses stage ("|" stage)*. Only the top-level pipeline may end
// with a metrics function.
func (p *parser) parsePipeline(top bool) (*Pipeline, error) {
	pl := &Pipeline{}
	for {
		t := p.peek()
		st, err := p.parseStage(top)
		if err != nil {
			return nil, err
		}
		switch st.(type) {
		case *MetricsStage, *CoalesceStage:
			if len(pl.Stages) == 0 {
				return nil, p.errAt(t, "expected a spanset filter before %s", t.text)
			}
		}
		pl.Stages = append(pl.Stages, st)
		if !p.isPunct("|") {
			return pl, nil
		}
		if _, ok := st.(*MetricsStage); ok {
			return nil, p.errAt(p.peek(), "stages after a metrics function (topk, bottomk) are not supported")
		}
		p.next()
	}
}

func (p *parser) parseStage(top bool) (Stage, error) {
	t := p.peek()
	switch {
	case t.kind == tIdent && t.text == "by":
		return p.parseBy()
	case t.kind == tIdent && t.text == "select":
		return p.parseSelect()
	case t.kind == tIdent && t.text == "coalesce":
		p.next()
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return &CoalesceStage{}, nil
	case t.kind == tIdent && metricsFns[t.text]:
		if !top {
			return nil, p.errAt(t, "metrics function %s is only allowed at the end of the query", t.text)
		}
		return p.parseMetrics()
	case t.kind == tIdent && aggregateFns[t.text],
		t.kind == tInt, t.kind == tFloat, t.kind == tDuration, t.kind == tPunct && t.text == "-":
		return p.parseScalarFilter()
	case t.kind == tPunct && t.text == "{":
		return p.parseSpansetExpr(0)
	case t.kind == tPunct && t.text == "(":
		// "(" opens either a spanset expression or a scalar expression such
		// as (count() + 1) > 3: try both, report the attempt that got further.
		save := p.pos
		se, err1 := p.parseSpansetExpr(0)
		if err1 == nil {
			return se, nil
		}
		p.pos = save
		sf, err2 := p.parseScalarFilter()
		if err2 == nil {
			return sf, nil
		}
		var pe1, pe2 *ParseError
		pe1, _ = err1.(*ParseError)
		pe2, _ = err2.(*ParseError)
		if pe1 != nil && pe2 != nil && pe2.after(pe1) {
			return nil, err2
		}
		return nil, err1
	}
	return nil, p.errExpected(`a spanset filter "{", an aggregate such as count(), by(), select() or coalesce()`)
}

var spansetOpPrec = map[string]int{
	"&&": 1, "||": 1,
	">": 2, "<": 2, ">>": 2, "<<": 2, "~": 2,
	"!>": 2, "!<": 2, "!>>": 2, "!<<": 2, "!~": 2,
	"&>": 2, "&<": 2, "&>>": 2, "&<<": 2, "&~": 2,
}

// parseSpansetExpr parses filters joined by && || and structural operators;
// like Tempo, structural operators bind tighter than && and ||, and operators
// of equal precedence associate to the left.
func (p *parser) parseSpansetExpr(minPrec int) (SpansetExpr, error) {
	left, err := p.parseSpansetPrimary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		prec, ok := spansetOpPrec[t.text]
		if t.kind != tPunct || !ok || prec < minPrec {
			return left, nil
		}
		p.next()
		right, err := p.parseSpansetExpr(prec + 1)
		if err != nil {
			return nil, err
		}
		left = &SpansetOp{Op: t.text, L: left, R: right}
	}
}

func (p *parser) parseSpansetPrimary() (SpansetExpr, error) {
	switch {
	case p.isPunct("{"):
		return p.parseFilter()
	case p.isPunct("("):
		p.next()
		pl, err := p.parsePipeline(false)
		if err != nil {
			return nil, err
		}
		if !p.isPunct(")") {
			return nil, p.errExpected(`")", "|" or an operator`)
		}
		p.next()
		if len(pl.Stages) == 1 {
			if se, ok := pl.Stages[0].(SpansetExpr); ok {
				return se, nil
			}
		}
		return pl, nil
	}
	return nil, p.errExpected(`a spanset filter "{" or "("`)
}

func (p *parser) parseFilter() (*SpansetFilter, error) {
	open := p.peek()
	if err := p.expectPunct("{"); err != nil {
		return nil, err
	}
	if p.isPunct("}") {
		p.next()
		return &SpansetFilter{pos: posOf(open)}, nil
	}
	e, err := p.parseField(0)
	if err != nil {
		return nil, err
	}
	if !p.isPunct("}") {
		if p.lenient && p.peek().kind == tEOF {
			return &SpansetFilter{Expr: e, pos: posOf(open)}, nil
		}
		return nil, p.errExpected(`"}" or an operator`)
	}
	p.next()
	return &SpansetFilter{Expr: e, pos: posOf(open)}, nil
}

// Field expression precedence, lowest first. Like Tempo, && and || share one
// level and associate left: a || b && c means (a || b) && c.
const (
	precBool  = 1
	precCmp   = 2
	precAdd   = 3
	precNot   = 4
	precMul   = 5
	precPow   = 6
	precUnary = 7
)

var fieldOpPrec = map[string]int{
	"&&": precBool, "||": precBool,
	"=": precCmp, "!=": precCmp, "<": precCmp, "<=": precCmp, ">": precCmp, ">=": precCmp, "=~": precCmp, "!~": precCmp,
	"+": precAdd, "-": precAdd,
	"*": precMul, "/": precMul, "%": precMul,
	"^": precPow,
}

func (p *parser) parseField(minPrec int) (FieldExpr, error) {
	left, err := p.parseFieldUnary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		prec, ok := fieldOpPrec[t.text]
		if t.kind != tPunct || !ok || prec < minPrec {
			return left, nil
		}
		p.next()
		nextMin := prec + 1
		if t.text == "^" {
			nextMin = prec // right associative
		}
		rtok := p.peek()
		if p.lenient && missingOperand(rtok) {
			// Half-typed: `a && <cursor>` keeps a, anything else constrains nothing.
			if t.text != "&&" {
				left = Literal{V: trueValue}
			}
			continue
		}
		right, err := p.parseField(nextMin)
		if err != nil {
			return nil, err
		}
		if t.text == "=~" || t.text == "!~" {
			if !isStringLit(right) {
				return nil, p.errAt(rtok, "the right side of %s must be a string literal", t.text)
			}
			if _, err := regexp.Compile(right.(Literal).V.s); err != nil {
				return nil, p.errAt(rtok, "invalid regular expression: %v", err)
			}
		}
		left = &BinaryExpr{Op: t.text, L: left, R: right, pos: posOf(t)}
	}
}

func isStringLit(e FieldExpr) bool {
	l, ok := e.(Literal)
	return ok && l.V.t == vStr
}

func (p *parser) parseFieldUnary() (FieldExpr, error) {
	switch {
	case p.isPunct("!"):
		t := p.next()
		x, err := p.parseField(precNot + 1)
		if err != nil {
			return nil, err
		}
		return &UnaryExpr{Op: "!", X: x, pos: posOf(t)}, nil
	case p.isPunct("-"):
		t := p.next()
		x, err := p.parseField(precAdd + 1)
		if err != nil {
			return nil, err
		}
		if l, ok := x.(Literal); ok && l.V.isNumeric() {
			return Literal{V: negate(l.V)}, nil
		}
		return &UnaryExpr{Op: "-", X: x, pos: posOf(t)}, nil
	}
	return p.parseFieldPrimary()
}

func negate(v value) value {
	switch v.t {
	case vFloat:
		return floatValue(-v.f)
	case vInt, vDur:
		v.n = -v.n
		return v
	}
	return nilValue
}

var keywordLits = map[string]value{
	"true": trueValue, "false": falseValue, "nil": nilValue,
	"ok": {t: vStatus, n: 1}, "error": {t: vStatus, n: 2}, "unset": {t: vStatus, n: 0},
	"unspecified": {t: vKind, n: 0}, "internal": {t: vKind, n: 1}, "server": {t: vKind, n: 2},
	"client": {t: vKind, n: 3}, "producer": {t: vKind, n: 4}, "consumer": {t: vKind, n: 5},
	"minInt": {t: vInt, n: math.MinInt64}, "maxInt": {t: vInt, n: math.MaxInt64},
}

func (p *parser) parseFieldPrimary() (FieldExpr, error) {
	t := p.peek()
	switch t.kind {
	case tPunct:
		if t.text == "(" {
			p.next()
			e, err := p.parseField(0)
			if err != nil {
				return nil, err
			}
			if !p.isPunct(")") {
				return nil, p.errExpected(`")" or an operator`)
			}
			p.next()
			return e, nil
		}
	case tString:
		p.next()
		return Literal{V: strValue(t.text)}, nil
	case tInt:
		p.next()
		return Literal{V: intValue(t.i)}, nil
	case tFloat:
		p.next()
		return Literal{V: floatValue(t.f)}, nil
	case tDuration:
		p.next()
		return Literal{V: durValue(t.d)}, nil
	case tAttr:
		p.next()
		if t.scope == "parent" {
			return nil, p.errAt(t, "the parent scope is not supported")
		}
		return AttrRef{Scope: t.scope, Name: t.text}, nil
	case tIntrinsic:
		p.next()
		name, ok := scopedIntrinsics[t.text]
		if !ok {
			return nil, p.errAt(t, "unknown intrinsic %s", t.text)
		}
		return IntrinsicRef{Name: name}, nil
	case tIdent:
		if v, ok := keywordLits[t.text]; ok {
			p.next()
			return Literal{V: v}, nil
		}
		if unscopedIntrinsics[t.text] {
			p.next()
			return IntrinsicRef{Name: t.text}, nil
		}
		return nil, p.errAt(t, "unknown identifier %q (attributes start with a dot or a scope: .%s, span.%s, resource.%s)", t.text, t.text, t.text, t.text)
	}
	return nil, p.errExpected("an attribute, intrinsic or literal")
}

func (p *parser) parseBy() (Stage, error) {
	byTok := p.next()
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	e, err := p.parseField(0)
	if err != nil {
		return nil, err
	}
	if err := p.expectPunct(")"); err != nil {
		return nil, err
	}
	return &ByStage{X: e, pos: posOf(byTok)}, nil
}

func (p *parser) parseSelect() (Stage, error) {
	p.next()
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	fields, err := p.parseFieldList()
	if err != nil {
		return nil, err
	}
	return &SelectStage{Fields: fields}, nil
}

// parseFieldList parses attr ("," attr)* ")" where each item is an attribute or intrinsic.
func (p *parser) parseFieldList() ([]FieldExpr, error) {
	var out []FieldExpr
	for {
		f, err := p.parseFieldRef()
		if err != nil {
			return nil, err
		}
		out = append(out, f)
		if p.isPunct(")") {
			p.next()
			return out, nil
		}
		if !p.isPunct(",") {
			return nil, p.errExpected(`"," or ")"`)
		}
		p.next()
	}
}

func (p *parser) parseFieldRef() (FieldExpr, error) {
	t := p.peek()
	if t.kind != tAttr && t.kind != tIntrinsic && !(t.kind == tIdent && unscopedIntrinsics[t.text]) {
		return nil, p.errExpected("an attribute or intrinsic")
	}
	return p.parseFieldPrimary()
}

var scalarOpPrec = map[string]int{"+": 1, "-": 1, "*": 2, "/": 2, "%": 2, "^": 3}

func (p *parser) parseScalarFilter() (Stage, error) {
	start := p.peek()
	l, err := p.parseScalar(0)
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if _, ok := cmpOps[t.text]; t.kind != tPunct || !ok {
		return nil, p.errExpected("a comparison operator (= != < <= > >=)")
	}
	p.next()
	r, err := p.parseScalar(0)
	if err != nil {
		return nil, err
	}
	if !hasAggregate(l) && !hasAggregate(r) {
		return nil, p.errAt(start, "a scalar filter needs an aggregate such as count() or avg(duration)")
	}
	return &ScalarFilter{Op: t.text, L: l, R: r}, nil
}

func hasAggregate(e ScalarExpr) bool {
	switch e := e.(type) {
	case *Aggregate:
		return true
	case *ScalarBinary:
		return hasAggregate(e.L) || hasAggregate(e.R)
	}
	return false
}

func (p *parser) parseScalar(minPrec int) (ScalarExpr, error) {
	left, err := p.parseScalarPrimary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		prec, ok := scalarOpPrec[t.text]
		if t.kind != tPunct || !ok || prec < minPrec {
			return left, nil
		}
		p.next()
		nextMin := prec + 1
		if t.text == "^" {
			nextMin = prec
		}
		right, err := p.parseScalar(nextMin)
		if err != nil {
			return nil, err
		}
		left = &ScalarBinary{Op: t.text, L: left, R: right}
	}
}

func (p *parser) parseScalarPrimary() (ScalarExpr, error) {
	t := p.peek()
	switch {
	case t.kind == tPunct && t.text == "(":
		p.next()
		e, err := p.parseScalar(0)
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return e, nil
	case t.kind == tPunct && t.text == "-":
		p.next()
		x, err := p.parseScalarPrimary()
		if err != nil {
			return nil, err
		}
		if l, ok := x.(ScalarLiteral); ok {
			return ScalarLiteral{V: negate(l.V)}, nil
		}
		return &ScalarBinary{Op: "-", L: ScalarLiteral{V: intValue(0)}, R: x}, nil
	case t.kind == tInt:
		p.next()
		return ScalarLiteral{V: intValue(t.i)}, nil
	case t.kind == tFloat:
		p.next()
		return ScalarLiteral{V: floatValue(t.f)}, nil
	case t.kind == tDuration:
		p.next()
		return ScalarLiteral{V: durValue(t.d)}, nil
	case t.kind == tIdent && aggregateFns[t.text]:
		p.next()
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		a := &Aggregate{Fn: t.text, pos: posOf(t)}
		if t.text == "count" {
			if err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			return a, nil
		}
		x, err := p.parseField(0)
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		a.X = x
		return a, nil
	}
	return nil, p.errExpected("an aggregate (count, avg, min, max, sum) or a number")
}

// parseMetrics parses fn(args) [by(attr, ...)].
func (p *parser) parseMetrics() (Stage, error) {
	fnTok := p.next()
	m := &MetricsStage{Fn: fnTok.text}
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	switch m.Fn {
	case "rate", "count_over_time":
	case "compare":
		f, err := p.parseFilter()
		if err != nil {
			return nil, err
		}
		m.Selection = f
		m.TopN = 10
		if p.isPunct(",") {
			p.next()
			n, err := p.expectInt()
			if err != nil {
				return nil, err
			}
			if n < 1 || n > 1000 {
				return nil, p.errAt(p.toks[p.pos-1], "compare() top number of values must be between 1 and 1000")
			}
			m.TopN = int(n)
			if p.isPunct(",") {
				p.next()
				if m.CompareStart, err = p.expectInt(); err != nil {
					return nil, err
				}
				if err := p.expectPunct(","); err != nil {
					return nil, err
				}
				if m.CompareEnd, err = p.expectInt(); err != nil {
					return nil, err
				}
				if m.CompareStart <= 0 || m.CompareEnd <= m.CompareStart {
					return nil, p.errAt(p.toks[p.pos-1], "compare() timestamps must be unix nanoseconds with start < end")
				}
			}
		}
	default:
		a, err := p.parseFieldRef()
		if err != nil {
			return nil, err
		}
		m.Attr = a
		if m.Fn == "quantile_over_time" {
			if err := p.expectPunct(","); err != nil {
				return nil, err
			}
			for {
				t := p.peek()
				switch t.kind {
				case tFloat:
					m.Quantiles = append(m.Quantiles, t.f)
				case tInt:
					m.Quantiles = append(m.Quantiles, float64(t.i))
				default:
					return nil, p.errExpected("a quantile such as .99")
				}
				p.next()
				if !p.isPunct(",") {
					break
				}
				p.next()
			}
		}
	}
	if err := p.expectPunct(")"); err != nil {
		return nil, err
	}
	if p.isIdent("by") {
		p.next()
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		by, err := p.parseFieldList()
		if err != nil {
			return nil, err
		}
		m.By = by
	}
	second, err := p.parseSecondStages(m.Fn == "compare")
	if err != nil {
		return nil, err
	}
	m.Second = second
	return m, nil
}

// parseSecondStages parses "| topk(n)", "| bottomk(n)" and sample filters
// such as "> 10" after a metrics function.
func (p *parser) parseSecondStages(isCompare bool) ([]SecondStage, error) {
	var out []SecondStage
	for {
		t := p.peek()
		var st SecondStage
		switch {
		case t.kind == tPunct && t.text == "|" && p.toks[p.pos+1].kind == tIdent &&
			(p.toks[p.pos+1].text == "topk" || p.toks[p.pos+1].text == "bottomk"):
			p.next()
			st.Op = p.next().text
			if err := p.expectPunct("("); err != nil {
				return nil, err
			}
			n, err := p.expectInt()
			if err != nil {
				return nil, err
			}
			if n < 1 || n > MaxSeries {
				return nil, p.errAt(p.toks[p.pos-1], "%s() needs a limit between 1 and %d", st.Op, MaxSeries)
			}
			st.N = int(n)
			if err := p.expectPunct(")"); err != nil {
				return nil, err
			}
		case t.kind == tPunct && cmpOpOK(t.text):
			p.next()
			v, err := p.parseScalar(0)
			if err != nil {
				return nil, err
			}
			lit, ok := foldScalar(v)
			if !ok {
				return nil, p.errAt(t, "a metrics filter compares with a number, such as > 10")
			}
			st.Op, st.Value = t.text, lit
		default:
			return out, nil
		}
		if isCompare {
			return nil, p.errAt(t, "compare() cannot be followed by topk, bottomk or a filter")
		}
		out = append(out, st)
	}
}

func cmpOpOK(s string) bool {
	_, ok := cmpOps[s]
	return ok
}

// foldScalar evaluates a constant scalar expression; durations become seconds.
func foldScalar(e ScalarExpr) (float64, bool) {
	switch e := e.(type) {
	case ScalarLiteral:
		if e.V.t == vDur {
			return float64(e.V.n) / 1e9, true
		}
		return e.V.float(), e.V.isNumeric()
	case *ScalarBinary:
		l, ok1 := foldScalar(e.L)
		r, ok2 := foldScalar(e.R)
		if !ok1 || !ok2 {
			return 0, false
		}
		v := arith(e.Op[0], floatValue(l), floatValue(r))
		return v.f, v.t == vFloat
	}
	return 0, false
}

func (p *parser) expectInt() (int64, error) {
	t := p.peek()
	if t.kind != tInt {
		return 0, p.errExpected("an integer")
	}
	p.next()
	return t.i, nil
}

// parseHints accepts and ignores Tempo's query hints: with(key=value, ...).
func (p *parser) parseHints() error {
	p.next()
	if err := p.expectPunct("("); err != nil {
		return err
	}
	for {
		if p.peek().kind != tIdent {
			return p.errExpected("a hint name")
		}
		p.next()
		if err := p.expectPunct("="); err != nil {
			return err
		}
		if _, err := p.parseFieldPrimary(); err != nil {
			return err
		}
		if p.isPunct(")") {
			p.next()
			return nil
		}
		if err := p.expectPunct(","); err != nil {
			return err
		}
	}
}

// parseMathQuery parses arithmetic between metrics queries. committed reports
// whether the text is certainly meant as such, so that its error is the one to show.
func parseMathQuery(query string, toks []token) (q *Query, committed bool, err error) {
	p := &parser{toks: toks}
	m, err := p.parseMetricsMath(0)
	if err != nil {
		return nil, p.sawLeaf, err
	}
	second, err := p.parseSecondStages(false)
	if err != nil {
		return nil, p.sawLeaf, err
	}
	m.Second = append(m.Second, second...)
	if p.isIdent("with") {
		if err := p.parseHints(); err != nil {
			return nil, p.sawLeaf, err
		}
	}
	if p.peek().kind != tEOF {
		return nil, p.sawLeaf, p.errExpected(`an arithmetic operator, "|" or the end of the query`)
	}
	if err := validateMath(m, toks[0], p); err != nil {
		return nil, true, err
	}
	q, err = compileMath(query, m)
	return q, true, err
}

// missingOperand reports whether t cannot start the right side of a comparison.
func missingOperand(t token) bool {
	if t.kind == tEOF {
		return true
	}
	return t.kind == tPunct && (t.text == "}" || t.text == ")" || t.text == "&&" || t.text == "||")
}

// offsetOf converts a 1-based line and rune column to a byte offset.
func offsetOf(s string, line, col int) int {
	l, c := 1, 1
	for i, r := range s {
		if l == line && c == col {
			return i
		}
		if r == '\n' {
			l, c = l+1, 1
		} else {
			c++
		}
	}
	return -1
}
