package traceql

import "go.opentelemetry.io/collector/pdata/pcommon"

// predFn is a compiled boolean filter. Filters are the hot path of a search,
// so boolean structure and the common "field op literal" comparisons are
// compiled to closures returning bool, without building intermediate values.
type predFn func(c *traceCtx, r *spanRow) bool

func compilePred(e FieldExpr) (predFn, error) {
	switch e := e.(type) {
	case *BinaryExpr:
		switch e.Op {
		case "&&", "||":
			l, err := compilePred(e.L)
			if err != nil {
				return nil, err
			}
			r, err := compilePred(e.R)
			if err != nil {
				return nil, err
			}
			if e.Op == "&&" {
				return func(c *traceCtx, s *spanRow) bool { return l(c, s) && r(c, s) }, nil
			}
			return func(c *traceCtx, s *spanRow) bool { return l(c, s) || r(c, s) }, nil
		case "=", "!=":
			if p := fastStringCompare(e); p != nil {
				return p, nil
			}
		}
	case *UnaryExpr:
		if e.Op == "!" && alwaysBool(e.X) {
			x, err := compilePred(e.X)
			if err != nil {
				return nil, err
			}
			return func(c *traceCtx, s *spanRow) bool { return !x(c, s) }, nil
		}
	case Literal:
		b := e.V.truthy()
		return func(*traceCtx, *spanRow) bool { return b }, nil
	}
	cf, err := compileField(e)
	if err != nil {
		return nil, err
	}
	f := cf.eval
	return func(c *traceCtx, s *spanRow) bool { return f(c, s).truthy() }, nil
}

// alwaysBool reports whether e evaluates to a boolean for every span, so that
// "!" can be compiled as plain negation.
func alwaysBool(e FieldExpr) bool {
	switch e := e.(type) {
	case *BinaryExpr:
		switch e.Op {
		case "+", "-", "*", "/", "%", "^":
			return false
		}
		return true
	case *UnaryExpr:
		return e.Op == "!" && alwaysBool(e.X)
	case Literal:
		return e.V.t == vBool
	}
	return false
}

// fastStringCompare handles name = "x" and attr = "x" (and !=) directly on
// pdata, the most common filters Grafana sends.
func fastStringCompare(e *BinaryExpr) predFn {
	lit, ok := e.R.(Literal)
	if !ok || lit.V.t != vStr {
		return nil
	}
	k := lit.V.s
	eq := e.Op == "="
	op := cmpOps[e.Op]
	strMatch := func(v pcommon.Value, ok bool) bool {
		if !ok {
			return false
		}
		switch v.Type() {
		case pcommon.ValueTypeStr:
			return (v.Str() == k) == eq
		case pcommon.ValueTypeSlice:
			return compare(op, fromPcommon(v), lit.V)
		}
		return false
	}
	switch ref := e.L.(type) {
	case IntrinsicRef:
		switch ref.Name {
		case "name":
			return func(_ *traceCtx, r *spanRow) bool { return (r.span.Name() == k) == eq }
		case "statusMessage":
			return func(_ *traceCtx, r *spanRow) bool { return (r.span.Status().Message() == k) == eq }
		}
	case AttrRef:
		name := ref.Name
		switch ref.Scope {
		case "span":
			return func(_ *traceCtx, r *spanRow) bool { return strMatch(r.span.Attributes().Get(name)) }
		case "resource":
			return func(_ *traceCtx, r *spanRow) bool { return strMatch(r.res.Attributes().Get(name)) }
		case "":
			return func(_ *traceCtx, r *spanRow) bool {
				if v, ok := r.span.Attributes().Get(name); ok {
					return strMatch(v, true)
				}
				return strMatch(r.res.Attributes().Get(name))
			}
		}
	}
	return nil
}
