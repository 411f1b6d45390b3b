package logql

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// The String methods print a query back in canonical LogQL, which parses
// to the same tree (the fuzz test checks it).

func matchersString(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.Name + m.Type.String() + strconv.Quote(m.Value)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (e *LogExpr) String() string {
	var b strings.Builder
	b.WriteString(matchersString(e.Matchers))
	for _, s := range e.Stages {
		b.WriteString(" ")
		b.WriteString(s.String())
	}
	return b.String()
}

var lineOpText = map[LineFilterOp]string{LineContains: "|=", LineNotContains: "!=", LineRegex: "|~",
	LineNotRegex: "!~", LinePattern: "|>", LineNotPattern: "!>"}

func (f *LineFilter) String() string {
	parts := make([]string, len(f.Values))
	for i, v := range f.Values {
		parts[i] = strconv.Quote(v)
	}
	return lineOpText[f.Op] + " " + strings.Join(parts, " or ")
}

func (s *ParserStage) String() string {
	switch s.Kind {
	case "regexp", "pattern":
		return "| " + s.Kind + " " + strconv.Quote(s.Param)
	}
	b := []string{"| " + s.Kind}
	b = append(b, s.Flags...)
	var ex []string
	for _, e := range s.Extractions {
		if e.Expr == "" {
			ex = append(ex, e.Label)
		} else {
			ex = append(ex, e.Label+"="+strconv.Quote(e.Expr))
		}
	}
	if len(ex) > 0 {
		b = append(b, strings.Join(ex, ", "))
	}
	return strings.Join(b, " ")
}

func (*DecolorizeStage) String() string { return "| decolorize" }

func (s *LabelFilterStage) String() string { return "| " + s.Filter.String() }

func (f *BinaryLabelFilter) String() string {
	op := " or "
	if f.And {
		op = " and "
	}
	return "(" + f.Left.String() + op + f.Right.String() + ")"
}

func (f *StringLabelFilter) String() string {
	return f.Matcher.Name + f.Matcher.Type.String() + strconv.Quote(f.Matcher.Value)
}

func (f *NumericLabelFilter) String() string { return f.Name + string(f.Op) + f.Text }

func (s *LineFormatStage) String() string { return "| line_format " + strconv.Quote(s.Template) }

func (s *LabelFormatStage) String() string {
	parts := make([]string, len(s.Items))
	for i, it := range s.Items {
		if it.Template {
			parts[i] = it.Dst + "=" + strconv.Quote(it.Value)
		} else {
			parts[i] = it.Dst + "=" + it.Value
		}
	}
	return "| label_format " + strings.Join(parts, ", ")
}

func (s *DropStage) String() string {
	parts := make([]string, len(s.Items))
	for i, it := range s.Items {
		if it.Matcher != nil {
			parts[i] = it.Name + it.Matcher.Type.String() + strconv.Quote(it.Matcher.Value)
		} else {
			parts[i] = it.Name
		}
	}
	kw := "| drop "
	if s.Keep {
		kw = "| keep "
	}
	return kw + strings.Join(parts, ", ")
}

func durString(d time.Duration) string { return model.Duration(d).String() }

func (g *Grouping) String() string {
	kw := " by ("
	if g.Without {
		kw = " without ("
	}
	return kw + strings.Join(g.Labels, ", ") + ")"
}

func (u *Unwrap) String() string {
	s := "| unwrap "
	if u.Conv != "" {
		s += u.Conv + "(" + u.Label + ")"
	} else {
		s += u.Label
	}
	for _, f := range u.PostFilters {
		s += " | " + f.String()
	}
	return s
}

func (e *RangeAggExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Op + "(")
	if e.Op == "quantile_over_time" {
		b.WriteString(strconv.FormatFloat(e.Param, 'g', -1, 64) + ", ")
	}
	b.WriteString(e.Log.String())
	if e.Unwrap != nil {
		b.WriteString(" " + e.Unwrap.String())
	}
	b.WriteString(" [" + durString(e.Range) + "]")
	if e.Offset != 0 {
		b.WriteString(" offset " + durString(e.Offset))
	}
	b.WriteString(")")
	if e.Grouping != nil {
		b.WriteString(e.Grouping.String())
	}
	return b.String()
}

func (e *VectorAggExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Grouping != nil {
		b.WriteString(e.Grouping.String())
	}
	b.WriteString("(")
	if e.Op == "topk" || e.Op == "bottomk" {
		b.WriteString(strconv.FormatFloat(e.Param, 'g', -1, 64) + ", ")
	}
	b.WriteString(e.Inner.String() + ")")
	return b.String()
}

func (e *BinOpExpr) String() string {
	s := "(" + e.LHS.String() + " " + e.Op
	if e.ReturnBool {
		s += " bool"
	}
	if m := e.Matching; m != nil {
		kw := " ignoring("
		if m.On {
			kw = " on("
		}
		s += kw + strings.Join(m.Labels, ", ") + ")"
		if m.Card != "" {
			s += " " + m.Card + "(" + strings.Join(m.Include, ", ") + ")"
		}
	}
	return s + " " + e.RHS.String() + ")"
}

func (e *NumberExpr) String() string { return strconv.FormatFloat(e.Value, 'g', -1, 64) }

func (e *VectorExpr) String() string {
	return "vector(" + strconv.FormatFloat(e.Value, 'g', -1, 64) + ")"
}

func (e *LabelReplaceExpr) String() string {
	return "label_replace(" + e.Inner.String() + ", " + strconv.Quote(e.Dst) + ", " + strconv.Quote(e.Repl) +
		", " + strconv.Quote(e.Src) + ", " + strconv.Quote(e.Regexp) + ")"
}
