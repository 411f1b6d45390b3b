package traceql

import (
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// vtype is the dynamic type of a value during evaluation.
type vtype uint8

const (
	vNil vtype = iota // missing attribute or the nil literal
	vInt
	vFloat
	vDur // n holds nanoseconds
	vStr
	vBool // n is 0 or 1
	vStatus
	vKind
	vArr // arr holds an attribute array (any element may match)
)

// value is a small typed scalar that is cheap to copy and needs no allocation
// for the common attribute types.
type value struct {
	t   vtype
	n   int64
	f   float64
	s   string
	arr pcommon.Slice
}

var (
	nilValue   = value{}
	trueValue  = value{t: vBool, n: 1}
	falseValue = value{t: vBool}
)

func intValue(i int64) value         { return value{t: vInt, n: i} }
func floatValue(f float64) value     { return value{t: vFloat, f: f} }
func strValue(s string) value        { return value{t: vStr, s: s} }
func durValue(d time.Duration) value { return value{t: vDur, n: int64(d)} }
func boolValue(b bool) value {
	if b {
		return trueValue
	}
	return falseValue
}

// Status and kind enums use pdata's numbering.
var statusNames = []string{"unset", "ok", "error"}
var kindNames = []string{"unspecified", "internal", "server", "client", "producer", "consumer"}

func statusValue(c ptrace.StatusCode) value { return value{t: vStatus, n: int64(c)} }
func kindValue(k ptrace.SpanKind) value     { return value{t: vKind, n: int64(k)} }

func (v value) isNumeric() bool { return v.t == vInt || v.t == vFloat || v.t == vDur }

func (v value) float() float64 {
	if v.t == vFloat {
		return v.f
	}
	return float64(v.n)
}

func (v value) truthy() bool { return v.t == vBool && v.n == 1 }

// fromPcommon converts an attribute value; maps and bytes are not comparable and become nil.
func fromPcommon(p pcommon.Value) value {
	switch p.Type() {
	case pcommon.ValueTypeStr:
		return value{t: vStr, s: p.Str()}
	case pcommon.ValueTypeInt:
		return value{t: vInt, n: p.Int()}
	case pcommon.ValueTypeDouble:
		return value{t: vFloat, f: p.Double()}
	case pcommon.ValueTypeBool:
		return boolValue(p.Bool())
	case pcommon.ValueTypeSlice:
		return value{t: vArr, arr: p.Slice()}
	}
	return nilValue
}

// toPcommon renders a value the way Tempo renders statics in search results:
// durations, statuses and kinds become strings.
func (v value) toPcommon() pcommon.Value {
	switch v.t {
	case vInt:
		return pcommon.NewValueInt(v.n)
	case vFloat:
		return pcommon.NewValueDouble(v.f)
	case vBool:
		return pcommon.NewValueBool(v.n == 1)
	case vArr:
		out := pcommon.NewValueSlice()
		v.arr.CopyTo(out.Slice())
		return out
	}
	return pcommon.NewValueStr(v.text())
}

// text is the unquoted rendering of a value.
func (v value) text() string {
	switch v.t {
	case vNil:
		return "nil"
	case vInt:
		return strconv.FormatInt(v.n, 10)
	case vFloat:
		return formatFloat(v.f)
	case vDur:
		return time.Duration(v.n).String()
	case vStr:
		return v.s
	case vBool:
		return strconv.FormatBool(v.n == 1)
	case vStatus:
		if v.n >= 0 && int(v.n) < len(statusNames) {
			return statusNames[v.n]
		}
	case vKind:
		if v.n >= 0 && int(v.n) < len(kindNames) {
			return kindNames[v.n]
		}
	case vArr:
		tmp := pcommon.NewValueSlice()
		v.arr.CopyTo(tmp.Slice())
		return tmp.AsString()
	}
	return "unknown"
}

func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	for _, c := range s {
		if c == '.' || c == 'e' || c == 'n' || c == 'I' {
			return s
		}
	}
	return s + ".0"
}

// literal renders a value as TraceQL source.
func (v value) literal() string {
	switch v.t {
	case vStr:
		return strconv.Quote(v.s)
	case vFloat:
		if math.IsInf(v.f, 0) || math.IsNaN(v.f) {
			return "0.0"
		}
	}
	return v.text()
}

// cmpOp identifies a comparison operator.
type cmpOp uint8

const (
	opEq cmpOp = iota
	opNeq
	opLt
	opLte
	opGt
	opGte
)

var cmpOps = map[string]cmpOp{"=": opEq, "!=": opNeq, "<": opLt, "<=": opLte, ">": opGt, ">=": opGte}

// compare applies a comparison. Mismatched types and missing values compare
// false for every operator, as in Tempo. Arrays match when any element does
// (for != when no element is equal).
func compare(op cmpOp, a, b value) bool {
	if a.t == vArr {
		return compareArray(op, a.arr, b, false)
	}
	if b.t == vArr {
		return compareArray(op, b.arr, a, true)
	}
	c, ok := order(a, b)
	if !ok {
		return false
	}
	switch op {
	case opEq:
		return c == 0
	case opNeq:
		return c != 0
	}
	if a.t == vBool || a.t == vStatus || a.t == vKind {
		return false // no ordering on enums and booleans
	}
	switch op {
	case opLt:
		return c < 0
	case opLte:
		return c <= 0
	case opGt:
		return c > 0
	case opGte:
		return c >= 0
	}
	return false
}

func compareArray(op cmpOp, arr pcommon.Slice, other value, swapped bool) bool {
	if op == opNeq {
		for i := 0; i < arr.Len(); i++ {
			if compare(opEq, fromPcommon(arr.At(i)), other) {
				return false
			}
		}
		return arr.Len() > 0 && other.t != vNil
	}
	for i := 0; i < arr.Len(); i++ {
		e := fromPcommon(arr.At(i))
		if e.t == vArr {
			continue
		}
		if swapped && compare(op, other, e) || !swapped && compare(op, e, other) {
			return true
		}
	}
	return false
}

// order returns -1, 0 or 1, and false when a and b cannot be compared.
func order(a, b value) (int, bool) {
	if a.isNumeric() && b.isNumeric() {
		if a.t != vFloat && b.t != vFloat {
			return cmpInt(a.n, b.n), true
		}
		x, y := a.float(), b.float()
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		case x == y:
			return 0, true
		}
		return 0, false // NaN
	}
	if a.t != b.t || a.t == vNil {
		return 0, false
	}
	switch a.t {
	case vStr:
		switch {
		case a.s < b.s:
			return -1, true
		case a.s > b.s:
			return 1, true
		}
		return 0, true
	case vBool, vStatus, vKind:
		return cmpInt(a.n, b.n), true
	}
	return 0, false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// arith applies + - * / % ^ to numbers. Int op int stays int (division
// truncates, by zero gives nil); any float makes a float; otherwise a duration
// operand keeps the result a duration.
func arith(op byte, a, b value) value {
	if !a.isNumeric() || !b.isNumeric() {
		return nilValue
	}
	if a.t == vFloat || b.t == vFloat || op == '^' && (a.t != vInt || b.t != vInt || b.n < 0) {
		x, y := a.float(), b.float()
		var r float64
		switch op {
		case '+':
			r = x + y
		case '-':
			r = x - y
		case '*':
			r = x * y
		case '/':
			r = x / y
		case '%':
			r = math.Mod(x, y)
		case '^':
			r = math.Pow(x, y)
		}
		return floatValue(r)
	}
	t := vInt
	if a.t == vDur || b.t == vDur {
		t = vDur
	}
	x, y := a.n, b.n
	var r int64
	switch op {
	case '+':
		r = x + y
	case '-':
		r = x - y
	case '*':
		r = x * y
	case '/':
		if y == 0 || (x == math.MinInt64 && y == -1) {
			return nilValue
		}
		r = x / y
	case '%':
		if y == 0 || y == -1 {
			return value{t: t}
		}
		r = x % y
	case '^':
		r = int64(math.Pow(float64(x), float64(y)))
	}
	return value{t: t, n: r}
}
