package traceql

import "fmt"

// Static type checking, as Tempo's validate step does: expressions whose
// types are known at parse time (literals, intrinsics) must be used
// consistently, so `{ status = "error" }` is a clear 400 rather than a query
// that silently matches nothing. Attributes have unknown types and are
// checked at run time, where a mismatch simply does not match.

// stype is a static type; sAny is an attribute whose type is only known per span.
type stype uint8

const (
	sAny stype = iota
	sNil
	sInt
	sFloat
	sDur
	sStr
	sBool
	sStatus
	sKind
)

var stypeNames = []string{"attribute", "nil", "int", "float", "duration", "string", "boolean", "status", "kind"}

func (t stype) String() string { return stypeNames[t] }

func (t stype) numeric() bool { return t == sInt || t == sFloat || t == sDur }

func literalType(v value) stype {
	switch v.t {
	case vNil:
		return sNil
	case vInt:
		return sInt
	case vFloat:
		return sFloat
	case vDur:
		return sDur
	case vStr:
		return sStr
	case vBool:
		return sBool
	case vStatus:
		return sStatus
	case vKind:
		return sKind
	}
	return sAny
}

var intrinsicTypes = map[string]stype{
	"duration": sDur, "name": sStr, "status": sStatus, "statusMessage": sStr, "kind": sKind,
	"rootName": sStr, "rootServiceName": sStr, "traceDuration": sDur,
	"trace:id": sStr, "span:id": sStr, "span:parentID": sStr, "span:childCount": sInt,
	"event:name": sStr, "event:timeSinceStart": sDur, "link:traceID": sStr, "link:spanID": sStr,
	"instrumentation:name": sStr, "instrumentation:version": sStr,
	"nestedSetLeft": sInt, "nestedSetRight": sInt, "nestedSetParent": sInt,
}

func validatePipeline(pl *Pipeline) error {
	for _, st := range pl.Stages {
		if err := validateStage(st); err != nil {
			return err
		}
	}
	return nil
}

func validateStage(st Stage) error {
	switch st := st.(type) {
	case *Pipeline:
		return validatePipeline(st)
	case *SpansetFilter:
		return validateFilter(st)
	case *SpansetOp:
		if err := validateStage(st.L); err != nil {
			return err
		}
		return validateStage(st.R)
	case *ScalarFilter:
		if err := validateScalar(st.L); err != nil {
			return err
		}
		return validateScalar(st.R)
	case *ByStage:
		if _, err := typeOf(st.X); err != nil {
			return err
		}
		if !referencesSpan(st.X) {
			return errAtPos(st.pos, "by() needs an expression that refers to the span, such as by(resource.service.name)")
		}
	case *MetricsStage:
		if st.Selection != nil {
			return validateFilter(st.Selection)
		}
	}
	return nil
}

func validateFilter(f *SpansetFilter) error {
	if f.Expr == nil {
		return nil
	}
	t, err := typeOf(f.Expr)
	if err != nil {
		return err
	}
	if t != sBool && t != sAny {
		return errAtPos(f.pos, "a spanset filter must be a condition, but %s is a %s", f.Expr, t)
	}
	return nil
}

func validateScalar(e ScalarExpr) error {
	switch e := e.(type) {
	case *ScalarBinary:
		if err := validateScalar(e.L); err != nil {
			return err
		}
		return validateScalar(e.R)
	case *Aggregate:
		if e.X == nil {
			return nil
		}
		t, err := typeOf(e.X)
		if err != nil {
			return err
		}
		if t != sAny && !t.numeric() {
			return errAtPos(e.pos, "%s() needs a number, but %s is a %s", e.Fn, e.X, t)
		}
		if !referencesSpan(e.X) {
			return errAtPos(e.pos, "%s() needs an expression that refers to the span, such as %s(duration)", e.Fn, e.Fn)
		}
	}
	return nil
}

func referencesSpan(e FieldExpr) bool {
	found := false
	walkField(e, func(f FieldExpr) {
		switch f.(type) {
		case AttrRef, IntrinsicRef:
			found = true
		}
	})
	return found
}

func errAtPos(p position, format string, args ...any) *ParseError {
	return &ParseError{Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, args...)}
}

// typeOf infers the static type of a field expression and rejects
// combinations that can never be true.
func typeOf(e FieldExpr) (stype, error) {
	switch e := e.(type) {
	case Literal:
		return literalType(e.V), nil
	case AttrRef:
		return sAny, nil
	case IntrinsicRef:
		return intrinsicTypes[e.Name], nil
	case *UnaryExpr:
		t, err := typeOf(e.X)
		if err != nil {
			return 0, err
		}
		if e.Op == "!" {
			if t != sBool && t != sAny {
				return 0, errAtPos(e.pos, "! needs a condition, but %s is a %s", e.X, t)
			}
			return sBool, nil
		}
		if t != sAny && !t.numeric() {
			return 0, errAtPos(e.pos, "- needs a number, but %s is a %s", e.X, t)
		}
		return t, nil
	case *BinaryExpr:
		return typeOfBinary(e)
	}
	return sAny, nil
}

func typeOfBinary(e *BinaryExpr) (stype, error) {
	l, err := typeOf(e.L)
	if err != nil {
		return 0, err
	}
	r, err := typeOf(e.R)
	if err != nil {
		return 0, err
	}
	mismatch := func() (stype, error) {
		return 0, errAtPos(e.pos, "cannot apply %s to %s (%s) and %s (%s)", e.Op, e.L, l, e.R, r)
	}
	switch e.Op {
	case "&&", "||":
		if (l != sBool && l != sAny) || (r != sBool && r != sAny) {
			return mismatch()
		}
		return sBool, nil
	case "+", "-", "*", "/", "%", "^":
		if (l != sAny && !l.numeric()) || (r != sAny && !r.numeric()) {
			return mismatch()
		}
		switch {
		case l == sAny || r == sAny:
			return sAny, nil
		case l == sFloat || r == sFloat:
			return sFloat, nil
		case l == sDur || r == sDur:
			return sDur, nil
		}
		return sInt, nil
	case "=~", "!~":
		if l != sStr && l != sAny {
			return mismatch()
		}
		return sBool, nil
	}
	// comparisons
	if l == sNil || r == sNil {
		other, otherExpr := r, e.R
		if r == sNil {
			other, otherExpr = l, e.L
		}
		if e.Op != "=" && e.Op != "!=" {
			return mismatch()
		}
		if e.Op == "=" {
			if _, ok := otherExpr.(IntrinsicRef); ok {
				return 0, errAtPos(e.pos, "%s always has a value and cannot be nil", otherExpr)
			}
			if a, ok := otherExpr.(AttrRef); ok && a.Scope == "resource" && a.Name == "service.name" {
				return 0, errAtPos(e.pos, "resource.service.name always has a value and cannot be nil")
			}
		}
		_ = other
		return sBool, nil
	}
	compatible := l == sAny || r == sAny || l == r || l.numeric() && r.numeric()
	if !compatible {
		if (l == sStatus || l == sKind) && r == sStr {
			return 0, errAtPos(e.pos, "cannot compare %s with a string: write the value without quotes, e.g. %s", e.L, map[stype]string{sStatus: "status = error", sKind: "kind = server"}[l])
		}
		return mismatch()
	}
	if e.Op != "=" && e.Op != "!=" {
		for _, t := range []stype{l, r} {
			if t == sBool || t == sStatus || t == sKind {
				return 0, errAtPos(e.pos, "%s cannot order %s values; use = or !=", e.Op, t)
			}
		}
	}
	return sBool, nil
}
