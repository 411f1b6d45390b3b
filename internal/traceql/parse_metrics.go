package traceql

// Parsing of scalar filters (count() > 3), metrics functions and their second stages.

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
