package logql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/regexp"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
)

// compiled stages run on one line at a time. A stage returns false to drop
// the line.
type stageFn func(l *lineState) bool

// lineState is one line flowing through a pipeline.
type lineState struct {
	ts     int64
	line   string
	labels labelSet
}

// Pipeline is a compiled log pipeline. It is not safe for concurrent use:
// every query compiles its own.
type Pipeline struct {
	stages []stageFn
	// pushed are the line filters the store already applied; they are the
	// leading line filters (before any stage that can change the line).
	pushed []logs.LineFilter
	// noop is true when nothing runs after the store: labels stay the stream's.
	noop bool
	st   lineState
}

// newPipeline compiles stages. Leading contains/regex line filters are
// handed to the store and skipped here.
func newPipeline(stages []Stage) (*Pipeline, error) {
	p := &Pipeline{}
	i := 0
	for ; i < len(stages); i++ {
		f, ok := stages[i].(*LineFilter)
		if !ok || len(f.Values) != 1 || f.Op == LinePattern || f.Op == LineNotPattern {
			break
		}
		op := map[LineFilterOp]logs.FilterOp{LineContains: logs.Contains, LineNotContains: logs.NotContains,
			LineRegex: logs.MatchRegex, LineNotRegex: logs.NotMatchRegex}[f.Op]
		p.pushed = append(p.pushed, logs.LineFilter{Op: op, Value: f.Values[0]})
	}
	for _, s := range stages[i:] {
		fn, err := compileStage(s)
		if err != nil {
			return nil, err
		}
		p.stages = append(p.stages, fn)
	}
	p.noop = len(p.stages) == 0
	return p, nil
}

// process runs the pipeline on one entry. The returned state is reused by
// the next call.
func (p *Pipeline) process(stream labels.Labels, e logs.Entry) (*lineState, bool) {
	st := &p.st
	st.ts, st.line = e.Timestamp, e.Line
	st.labels.reset(stream, e.Metadata)
	for _, fn := range p.stages {
		if !fn(st) {
			return nil, false
		}
	}
	return st, true
}

func compileStage(s Stage) (stageFn, error) {
	switch s := s.(type) {
	case *LineFilter:
		m, err := lineMatcher(s)
		if err != nil {
			return nil, err
		}
		return func(l *lineState) bool { return m(l.line) }, nil
	case *ParserStage:
		return compileParser(s)
	case *DecolorizeStage:
		return func(l *lineState) bool { l.line = ansiRe.ReplaceAllString(l.line, ""); return true }, nil
	case *LabelFilterStage:
		f, err := compileLabelFilter(s.Filter)
		if err != nil {
			return nil, err
		}
		return f, nil
	case *LineFormatStage:
		t, err := newTemplate(s.Template)
		if err != nil {
			return nil, err
		}
		return func(l *lineState) bool {
			out, err := t.exec(l)
			if err != nil {
				l.labels.setErr(errTemplate, err.Error())
				return true
			}
			l.line = out
			return true
		}, nil
	case *LabelFormatStage:
		return compileLabelFormat(s)
	case *DropStage:
		return compileDrop(s), nil
	}
	return nil, fmt.Errorf("unsupported stage %T", s)
}

var ansiRe = regexp.MustCompile(`\x1b\[[0-9;]*[a-zA-Z]`)

func compileRegex(s string) (*regexp.Regexp, error) { return regexp.Compile(s) }

// lineMatcher returns a predicate for a line filter with `or` alternatives.
func lineMatcher(f *LineFilter) (func(string) bool, error) {
	var ms []func(string) bool
	for _, v := range f.Values {
		switch f.Op {
		case LineContains, LineNotContains:
			ms = append(ms, func(s string) bool { return strings.Contains(s, v) })
		case LineRegex, LineNotRegex:
			re, err := compileRegex(v)
			if err != nil {
				return nil, err
			}
			ms = append(ms, re.MatchString)
		case LinePattern, LineNotPattern:
			pat, err := compilePattern(v, true)
			if err != nil {
				return nil, err
			}
			ms = append(ms, func(s string) bool { return pat.match(s, nil) })
		}
	}
	neg := f.Negated()
	return func(s string) bool {
		for _, m := range ms {
			if m(s) {
				return !neg
			}
		}
		return neg
	}, nil
}

// compileLabelFilter turns a label filter tree into a stage. Numeric
// comparisons on a value that does not convert set __error__ and keep the
// line, as Loki does; a line already in error passes numeric filters.
func compileLabelFilter(f LabelFilter) (stageFn, error) {
	switch f := f.(type) {
	case *BinaryLabelFilter:
		l, err := compileLabelFilter(f.Left)
		if err != nil {
			return nil, err
		}
		r, err := compileLabelFilter(f.Right)
		if err != nil {
			return nil, err
		}
		if f.And {
			return func(s *lineState) bool { return l(s) && r(s) }, nil
		}
		return func(s *lineState) bool { return l(s) || r(s) }, nil
	case *StringLabelFilter:
		m := f.Matcher
		return func(s *lineState) bool {
			v, _ := s.labels.get(m.Name)
			return m.Matches(v)
		}, nil
	case *NumericLabelFilter:
		conv := converter(f.Kind)
		cmp := comparer(f.Op)
		return func(s *lineState) bool {
			if s.labels.hasErr() {
				return true
			}
			v, ok := s.labels.get(f.Name)
			if !ok {
				return false
			}
			x, err := conv(v)
			if err != nil {
				s.labels.setErr(errLabelFilter, err.Error())
				return true
			}
			return cmp(x, f.Value)
		}, nil
	}
	return nil, fmt.Errorf("unsupported label filter %T", f)
}

func converter(kind string) func(string) (float64, error) {
	switch kind {
	case "duration", "duration_seconds":
		return func(s string) (float64, error) {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				return 0, err
			}
			return d.Seconds(), nil
		}
	case "bytes":
		return func(s string) (float64, error) {
			b, err := parseBytes(s)
			return float64(b), err
		}
	}
	return func(s string) (float64, error) { return strconv.ParseFloat(strings.TrimSpace(s), 64) }
}

func comparer(op CmpOp) func(a, b float64) bool {
	switch op {
	case "!=":
		return func(a, b float64) bool { return a != b }
	case ">":
		return func(a, b float64) bool { return a > b }
	case ">=":
		return func(a, b float64) bool { return a >= b }
	case "<":
		return func(a, b float64) bool { return a < b }
	case "<=":
		return func(a, b float64) bool { return a <= b }
	}
	return func(a, b float64) bool { return a == b || math.Abs(a-b) < 1e-12 }
}

func compileLabelFormat(s *LabelFormatStage) (stageFn, error) {
	type item struct {
		dst, src string
		t        *lineTemplate
	}
	var items []item
	for _, it := range s.Items {
		if !it.Template {
			items = append(items, item{dst: it.Dst, src: it.Value})
			continue
		}
		t, err := newTemplate(it.Value)
		if err != nil {
			return nil, err
		}
		items = append(items, item{dst: it.Dst, t: t})
	}
	return func(l *lineState) bool {
		// Templates see the labels as they were before this stage.
		var vals []string
		for _, it := range items {
			if it.t == nil {
				v, _ := l.labels.get(it.src)
				vals = append(vals, v)
				continue
			}
			out, err := it.t.exec(l)
			if err != nil {
				l.labels.setErr(errTemplate, err.Error())
			}
			vals = append(vals, out)
		}
		for i, it := range items {
			if it.t == nil && it.src != it.dst {
				if _, ok := l.labels.get(it.src); !ok {
					continue
				}
				l.labels.del(it.src)
			}
			cat := CatParsed
			if l.labels.has(it.dst) {
				cat = l.labels.catOf(it.dst)
			}
			l.labels.set(it.dst, vals[i], cat)
		}
		return true
	}, nil
}

func compileDrop(s *DropStage) stageFn {
	return func(l *lineState) bool {
		if s.Keep {
			kept := l.labels.ls[:0]
			for _, x := range l.labels.ls {
				if keepItem(s.Items, x) {
					kept = append(kept, x)
				}
			}
			l.labels.ls = kept
			return true
		}
		for _, it := range s.Items {
			v, ok := l.labels.get(it.Name)
			if ok && (it.Matcher == nil || it.Matcher.Matches(v)) {
				l.labels.del(it.Name)
			}
		}
		return true
	}
}

func keepItem(items []NameMatcher, x lbl) bool {
	for _, it := range items {
		if it.Name == x.name && (it.Matcher == nil || it.Matcher.Matches(x.value)) {
			return true
		}
	}
	return false
}
