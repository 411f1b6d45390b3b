package traceql

import (
	"strconv"
	"strings"
)

// String renders the AST back to TraceQL that parses to the same AST.

func (l Literal) String() string      { return l.V.literal() }
func (a AttrRef) String() string      { return attrText(a.Scope, a.Name) }
func (i IntrinsicRef) String() string { return i.Name }

func (b *BinaryExpr) String() string {
	return wrapField(b.L) + " " + b.Op + " " + wrapField(b.R)
}

func (u *UnaryExpr) String() string { return u.Op + wrapField(u.X) }

func wrapField(e FieldExpr) string {
	switch e.(type) {
	case *BinaryExpr, *UnaryExpr:
		return "(" + e.String() + ")"
	}
	if l, ok := e.(Literal); ok && l.V.isNumeric() && strings.HasPrefix(l.String(), "-") {
		return "(" + l.String() + ")"
	}
	return e.String()
}

// attrText renders an attribute reference, quoting names the lexer would split.
func attrText(scope, name string) string {
	if needsQuoting(name) {
		name = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	return scope + "." + name
}

func needsQuoting(name string) bool {
	if name == "" || isDigit(rune(name[0])) {
		return true
	}
	for _, r := range name {
		if !isAttrRune(r) || r == '\\' {
			return true
		}
	}
	return false
}

func (p *Pipeline) String() string {
	parts := make([]string, len(p.Stages))
	for i, s := range p.Stages {
		parts[i] = s.String()
	}
	return strings.Join(parts, " | ")
}

func (f *SpansetFilter) String() string {
	if f.Expr == nil {
		return "{}"
	}
	return "{ " + f.Expr.String() + " }"
}

func (o *SpansetOp) String() string {
	return wrapSpanset(o.L) + " " + o.Op + " " + wrapSpanset(o.R)
}

func wrapSpanset(e SpansetExpr) string {
	switch e.(type) {
	case *SpansetOp, *Pipeline:
		return "(" + e.String() + ")"
	}
	return e.String()
}

func (f *ScalarFilter) String() string { return f.L.String() + " " + f.Op + " " + f.R.String() }
func (b *ByStage) String() string      { return "by(" + b.X.String() + ")" }
func (*CoalesceStage) String() string  { return "coalesce()" }

func (s *SelectStage) String() string { return "select(" + joinFields(s.Fields) + ")" }

func joinFields(fs []FieldExpr) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.String()
	}
	return strings.Join(parts, ", ")
}

func (a *Aggregate) String() string {
	if a.X == nil {
		return a.Fn + "()"
	}
	return a.Fn + "(" + a.X.String() + ")"
}

func (l ScalarLiteral) String() string {
	if l.V.isNumeric() && strings.HasPrefix(l.V.literal(), "-") {
		return "(" + l.V.literal() + ")"
	}
	return l.V.literal()
}

func (b *ScalarBinary) String() string {
	return wrapScalar(b.L) + " " + b.Op + " " + wrapScalar(b.R)
}

func wrapScalar(e ScalarExpr) string {
	if _, ok := e.(*ScalarBinary); ok {
		return "(" + e.String() + ")"
	}
	return e.String()
}

func (m *MetricsStage) String() string {
	var sb strings.Builder
	sb.WriteString(m.Fn)
	sb.WriteByte('(')
	switch {
	case m.Fn == "compare":
		sb.WriteString(m.Selection.String())
		sb.WriteString(", " + strconv.Itoa(m.TopN))
		if m.CompareStart != 0 || m.CompareEnd != 0 {
			sb.WriteString(", " + strconv.FormatInt(m.CompareStart, 10) + ", " + strconv.FormatInt(m.CompareEnd, 10))
		}
	case m.Attr != nil:
		sb.WriteString(m.Attr.String())
		for _, q := range m.Quantiles {
			sb.WriteString(", " + formatFloat(q))
		}
	}
	sb.WriteByte(')')
	if len(m.By) > 0 {
		sb.WriteString(" by(" + joinFields(m.By) + ")")
	}
	for _, s := range m.Second {
		if s.Op == "topk" || s.Op == "bottomk" {
			sb.WriteString(" | " + s.Op + "(" + strconv.Itoa(s.N) + ")")
		} else {
			sb.WriteString(" " + s.Op + " " + formatFloat(s.Value))
		}
	}
	return sb.String()
}
