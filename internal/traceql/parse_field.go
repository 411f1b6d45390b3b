package traceql

// Parsing of field expressions: the conditions and arithmetic inside {...}.

import (
	"math"
	"regexp"
)

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

// missingOperand reports whether t cannot start the right side of a comparison.
func missingOperand(t token) bool {
	if t.kind == tEOF {
		return true
	}
	return t.kind == tPunct && (t.text == "}" || t.text == ")" || t.text == "&&" || t.text == "||")
}
