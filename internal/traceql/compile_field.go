package traceql

import (
	"encoding/hex"
	"fmt"
	"regexp"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// evalFn evaluates a field expression for one span of the trace in c.
type evalFn func(c *traceCtx, r *spanRow) value

// multiFn describes a field with one value per event or link of a span
// (event.x, link.x, event:name ...). Comparisons match when any element does.
type multiFn struct {
	count func(r *spanRow) int
	at    func(c *traceCtx, r *spanRow, i int) value
}

// compiledField is a compiled field expression; multi is set for event/link fields.
type compiledField struct {
	eval  evalFn
	multi *multiFn
}

func compileField(e FieldExpr) (compiledField, error) {
	switch e := e.(type) {
	case Literal:
		v := e.V
		return compiledField{eval: func(*traceCtx, *spanRow) value { return v }}, nil
	case AttrRef:
		return compileAttr(e), nil
	case IntrinsicRef:
		return compileIntrinsic(e)
	case *UnaryExpr:
		x, err := compileField(e.X)
		if err != nil {
			return compiledField{}, err
		}
		xf := x.eval
		if e.Op == "!" {
			return compiledField{eval: func(c *traceCtx, r *spanRow) value {
				v := xf(c, r)
				if v.t != vBool {
					return nilValue
				}
				return boolValue(v.n == 0)
			}}, nil
		}
		return compiledField{eval: func(c *traceCtx, r *spanRow) value { return negate(xf(c, r)) }}, nil
	case *BinaryExpr:
		return compileBinary(e)
	}
	return compiledField{}, fmt.Errorf("unsupported expression %T", e)
}

func compileBinary(e *BinaryExpr) (compiledField, error) {
	l, err := compileField(e.L)
	if err != nil {
		return compiledField{}, err
	}
	r, err := compileField(e.R)
	if err != nil {
		return compiledField{}, err
	}
	lf, rf := l.eval, r.eval
	switch e.Op {
	case "&&":
		return compiledField{eval: func(c *traceCtx, s *spanRow) value {
			return boolValue(lf(c, s).truthy() && rf(c, s).truthy())
		}}, nil
	case "||":
		return compiledField{eval: func(c *traceCtx, s *spanRow) value {
			return boolValue(lf(c, s).truthy() || rf(c, s).truthy())
		}}, nil
	case "+", "-", "*", "/", "%", "^":
		op := e.Op[0]
		return compiledField{eval: func(c *traceCtx, s *spanRow) value { return arith(op, lf(c, s), rf(c, s)) }}, nil
	case "=~", "!~":
		return compileRegex(e, l)
	}
	op, ok := cmpOps[e.Op]
	if !ok {
		return compiledField{}, fmt.Errorf("unsupported operator %s", e.Op)
	}
	// nil comparisons test existence: .foo != nil, .foo = nil. Like Tempo,
	// nil compared with nil is false.
	lnil, rnil := isNilLit(e.L), isNilLit(e.R)
	if lnil && rnil {
		return compiledField{eval: func(*traceCtx, *spanRow) value { return falseValue }}, nil
	}
	if lit, ok := e.R.(Literal); ok && lit.V.t == vNil {
		return compileExists(l, op)
	}
	if lit, ok := e.L.(Literal); ok && lit.V.t == vNil {
		return compileExists(r, op)
	}
	if l.multi != nil || r.multi != nil {
		return compileMultiCompare(op, l, r), nil
	}
	if lit, ok := e.R.(Literal); ok {
		k := lit.V
		return compiledField{eval: func(c *traceCtx, s *spanRow) value { return boolValue(compare(op, lf(c, s), k)) }}, nil
	}
	return compiledField{eval: func(c *traceCtx, s *spanRow) value { return boolValue(compare(op, lf(c, s), rf(c, s))) }}, nil
}

func isNilLit(e FieldExpr) bool {
	l, ok := e.(Literal)
	return ok && l.V.t == vNil
}

func compileExists(f compiledField, op cmpOp) (compiledField, error) {
	if op != opEq && op != opNeq {
		return compiledField{eval: func(*traceCtx, *spanRow) value { return falseValue }}, nil
	}
	want := op == opNeq
	if m := f.multi; m != nil {
		return compiledField{eval: func(c *traceCtx, s *spanRow) value {
			n := m.count(s)
			for i := 0; i < n; i++ {
				if m.at(c, s, i).t != vNil {
					return boolValue(want)
				}
			}
			return boolValue(!want)
		}}, nil
	}
	ff := f.eval
	return compiledField{eval: func(c *traceCtx, s *spanRow) value {
		return boolValue((ff(c, s).t != vNil) == want)
	}}, nil
}

// compileMultiCompare matches when any event/link value satisfies the comparison.
func compileMultiCompare(op cmpOp, l, r compiledField) compiledField {
	if l.multi != nil {
		m, rf := l.multi, r.eval
		return compiledField{eval: func(c *traceCtx, s *spanRow) value {
			k := rf(c, s)
			n := m.count(s)
			for i := 0; i < n; i++ {
				if compare(op, m.at(c, s, i), k) {
					return trueValue
				}
			}
			return falseValue
		}}
	}
	m, lf := r.multi, l.eval
	return compiledField{eval: func(c *traceCtx, s *spanRow) value {
		k := lf(c, s)
		n := m.count(s)
		for i := 0; i < n; i++ {
			if compare(op, k, m.at(c, s, i)) {
				return trueValue
			}
		}
		return falseValue
	}}
}

// compileRegex builds a fully anchored RE2 match, like Tempo and Prometheus.
func compileRegex(e *BinaryExpr, l compiledField) (compiledField, error) {
	pattern := e.R.(Literal).V.s
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return compiledField{}, fmt.Errorf("invalid regex %q: %w", pattern, err)
	}
	want := e.Op == "=~"
	match := func(v value) (matched, ok bool) {
		switch v.t {
		case vStr:
			return re.MatchString(v.s), true
		case vArr:
			for i := 0; i < v.arr.Len(); i++ {
				if el := v.arr.At(i); el.Type() == pcommon.ValueTypeStr {
					if re.MatchString(el.Str()) {
						return true, true
					}
					ok = true
				}
			}
			return false, ok
		}
		return false, false
	}
	if m := l.multi; m != nil {
		return compiledField{eval: func(c *traceCtx, s *spanRow) value {
			n := m.count(s)
			for i := 0; i < n; i++ {
				if matched, ok := match(m.at(c, s, i)); ok && matched == want {
					return trueValue
				}
			}
			return falseValue
		}}, nil
	}
	lf := l.eval
	return compiledField{eval: func(c *traceCtx, s *spanRow) value {
		matched, ok := match(lf(c, s))
		return boolValue(ok && matched == want)
	}}, nil
}

func attrOf(m pcommon.Map, name string) value {
	if v, ok := m.Get(name); ok {
		return fromPcommon(v)
	}
	return nilValue
}

func compileAttr(a AttrRef) compiledField {
	name := a.Name
	switch a.Scope {
	case "span":
		return compiledField{eval: func(_ *traceCtx, r *spanRow) value { return attrOf(r.span.Attributes(), name) }}
	case "resource":
		return compiledField{eval: func(_ *traceCtx, r *spanRow) value { return attrOf(r.res.Attributes(), name) }}
	case "instrumentation":
		return compiledField{eval: func(_ *traceCtx, r *spanRow) value { return attrOf(r.scope.Attributes(), name) }}
	case "event":
		return multiField(&multiFn{
			count: func(r *spanRow) int { return r.span.Events().Len() },
			at: func(_ *traceCtx, r *spanRow, i int) value {
				return attrOf(r.span.Events().At(i).Attributes(), name)
			},
		})
	case "link":
		return multiField(&multiFn{
			count: func(r *spanRow) int { return r.span.Links().Len() },
			at: func(_ *traceCtx, r *spanRow, i int) value {
				return attrOf(r.span.Links().At(i).Attributes(), name)
			},
		})
	}
	// Unscoped: span attributes win over resource attributes.
	return compiledField{eval: func(_ *traceCtx, r *spanRow) value {
		if v, ok := r.span.Attributes().Get(name); ok {
			return fromPcommon(v)
		}
		return attrOf(r.res.Attributes(), name)
	}}
}

// multiField wraps a multi-valued field; in scalar context it yields the first present value.
func multiField(m *multiFn) compiledField {
	return compiledField{multi: m, eval: func(c *traceCtx, r *spanRow) value {
		n := m.count(r)
		for i := 0; i < n; i++ {
			if v := m.at(c, r, i); v.t != vNil {
				return v
			}
		}
		return nilValue
	}}
}

func compileIntrinsic(i IntrinsicRef) (compiledField, error) {
	var f evalFn
	switch i.Name {
	case "duration":
		f = func(_ *traceCtx, r *spanRow) value { return value{t: vDur, n: r.duration()} }
	case "name":
		f = func(_ *traceCtx, r *spanRow) value { return strValue(r.span.Name()) }
	case "status":
		f = func(_ *traceCtx, r *spanRow) value { return statusValue(r.span.Status().Code()) }
	case "statusMessage":
		f = func(_ *traceCtx, r *spanRow) value { return strValue(r.span.Status().Message()) }
	case "kind":
		f = func(_ *traceCtx, r *spanRow) value { return kindValue(r.span.Kind()) }
	case "rootName":
		f = func(c *traceCtx, _ *spanRow) value { c.ensureTraceInfo(); return c.rootName }
	case "rootServiceName":
		f = func(c *traceCtx, _ *spanRow) value { c.ensureTraceInfo(); return c.rootService }
	case "traceDuration":
		f = func(c *traceCtx, _ *spanRow) value { c.ensureTraceInfo(); return c.traceDur }
	case "trace:id":
		f = func(_ *traceCtx, r *spanRow) value {
			id := r.span.TraceID()
			return strValue(hex.EncodeToString(id[:]))
		}
	case "span:id":
		f = func(_ *traceCtx, r *spanRow) value { id := r.span.SpanID(); return strValue(hex.EncodeToString(id[:])) }
	case "span:parentID":
		f = func(_ *traceCtx, r *spanRow) value {
			id := r.span.ParentSpanID()
			if id.IsEmpty() {
				return nilValue
			}
			return strValue(hex.EncodeToString(id[:]))
		}
	case "span:childCount":
		f = func(c *traceCtx, r *spanRow) value { c.ensureParents(); return intValue(int64(r.children)) }
	case "nestedSetLeft":
		f = func(c *traceCtx, r *spanRow) value { c.ensureNestedSet(); return intValue(int64(r.nsLeft)) }
	case "nestedSetRight":
		f = func(c *traceCtx, r *spanRow) value { c.ensureNestedSet(); return intValue(int64(r.nsRight)) }
	case "nestedSetParent":
		f = func(c *traceCtx, r *spanRow) value { c.ensureNestedSet(); return intValue(int64(r.nsParent)) }
	case "instrumentation:name":
		f = func(_ *traceCtx, r *spanRow) value { return strValue(r.scope.Name()) }
	case "instrumentation:version":
		f = func(_ *traceCtx, r *spanRow) value { return strValue(r.scope.Version()) }
	case "event:name":
		return multiField(&multiFn{
			count: func(r *spanRow) int { return r.span.Events().Len() },
			at:    func(_ *traceCtx, r *spanRow, i int) value { return strValue(r.span.Events().At(i).Name()) },
		}), nil
	case "event:timeSinceStart":
		return multiField(&multiFn{
			count: func(r *spanRow) int { return r.span.Events().Len() },
			at: func(_ *traceCtx, r *spanRow, i int) value {
				return value{t: vDur, n: int64(r.span.Events().At(i).Timestamp()) - int64(r.start)}
			},
		}), nil
	case "link:traceID":
		return multiField(&multiFn{
			count: func(r *spanRow) int { return r.span.Links().Len() },
			at: func(_ *traceCtx, r *spanRow, i int) value {
				id := r.span.Links().At(i).TraceID()
				return strValue(hex.EncodeToString(id[:]))
			},
		}), nil
	case "link:spanID":
		return multiField(&multiFn{
			count: func(r *spanRow) int { return r.span.Links().Len() },
			at: func(_ *traceCtx, r *spanRow, i int) value {
				id := r.span.Links().At(i).SpanID()
				return strValue(hex.EncodeToString(id[:]))
			},
		}), nil
	default:
		return compiledField{}, fmt.Errorf("unknown intrinsic %s", i.Name)
	}
	return compiledField{eval: f}, nil
}
