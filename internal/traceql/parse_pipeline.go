package traceql

// Parsing of pipelines, spanset expressions and the stages by(), select(), coalesce().

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
