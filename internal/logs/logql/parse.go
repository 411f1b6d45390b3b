package logql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// ParseError is a query syntax error, printed as Loki prints them:
// `parse error at line 1, col 5: syntax error: unexpected …`.
type ParseError struct {
	Msg       string
	Line, Col int
}

func (e *ParseError) Error() string {
	if e.Line == 0 && e.Col == 0 {
		return "parse error : " + e.Msg
	}
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

// errEmptySelector is Loki's message for a selector every stream matches.
const errEmptySelector = `queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will`

// maxQueryLen bounds work on hostile input; Loki has no such limit but
// nobody types a 64 KiB query.
const maxQueryLen = 64 << 10

// ParseExpr parses a LogQL query: a log query (*LogExpr) or a metric query
// (SampleExpr).
func ParseExpr(q string) (Expr, error) {
	if len(q) > maxQueryLen {
		return nil, &ParseError{Msg: fmt.Sprintf("query too long: %d bytes", len(q))}
	}
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.parseExpr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	if err := validate(e); err != nil {
		return nil, err
	}
	return e, nil
}

// ParseLogSelector parses a query that must be a log query.
func ParseLogSelector(q string) (*LogExpr, error) {
	e, err := ParseExpr(q)
	if err != nil {
		return nil, err
	}
	l, ok := e.(*LogExpr)
	if !ok {
		return nil, &ParseError{Msg: "only log selectors are allowed here", Line: 0}
	}
	return l, nil
}

// ParseSampleExpr parses a query that must be a metric query.
func ParseSampleExpr(q string) (SampleExpr, error) {
	e, err := ParseExpr(q)
	if err != nil {
		return nil, err
	}
	s, ok := e.(SampleExpr)
	if !ok {
		return nil, &ParseError{Msg: "only sample expression supported"}
	}
	return s, nil
}

// ParseMatchers parses a bare stream selector such as `{app="x"}`, as the
// match[] and query parameters of the label and series endpoints carry.
func ParseMatchers(q string) ([]*labels.Matcher, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	ms, err := p.parseSelector()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	return ms, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) peekAt(n int) token {
	if p.pos+n < len(p.toks) {
		return p.toks[p.pos+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) isKeyword(word string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == word
}

func (p *parser) unexpected(t token, expecting ...string) error {
	what := t.kind.String()
	msg := "syntax error: unexpected " + what
	if len(expecting) > 0 {
		msg += ", expecting " + strings.Join(expecting, " or ")
	}
	return &ParseError{Msg: msg, Line: t.line, Col: t.col}
}

func (p *parser) expect(k tokKind) (token, error) {
	t := p.next()
	if t.kind != k {
		return t, p.unexpected(t, k.String())
	}
	return t, nil
}

// Binary operator precedence, lowest first, as in PromQL and Loki.
var binPrec = map[string]int{
	"or": 1, "and": 2, "unless": 2,
	"==": 3, "!=": 3, ">": 3, ">=": 3, "<": 3, "<=": 3,
	"+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6,
}

func (p *parser) binOp() (string, bool) {
	t := p.peek()
	switch t.kind {
	case tIdent:
		if t.text == "or" || t.text == "and" || t.text == "unless" {
			return t.text, true
		}
	case tCmpEq, tNeq, tGt, tGte, tLt, tLte, tAdd, tSub, tMul, tDiv, tMod, tPow:
		return t.kind.String(), true
	}
	return "", false
}

// parseExpr is precedence climbing over binary operators.
func (p *parser) parseExpr(minPrec int) (Expr, error) {
	lhs, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.binOp()
		if !ok || binPrec[op] <= minPrec {
			return lhs, nil
		}
		opTok := p.next()
		b := &BinOpExpr{Op: op}
		if p.isKeyword("bool") {
			p.next()
			b.ReturnBool = true
		}
		if b.Matching, err = p.parseMatching(); err != nil {
			return nil, err
		}
		prec := binPrec[op]
		if op == "^" {
			prec-- // right associative
		}
		rhs, err := p.parseExpr(prec)
		if err != nil {
			return nil, err
		}
		l, lok := lhs.(SampleExpr)
		r, rok := rhs.(SampleExpr)
		if !lok || !rok {
			return nil, &ParseError{Msg: "syntax error: unexpected " + opTok.kind.String(), Line: opTok.line, Col: opTok.col}
		}
		if b.ReturnBool && !isComparison(op) {
			return nil, &ParseError{Msg: "bool modifier can only be used on comparison operators", Line: opTok.line, Col: opTok.col}
		}
		b.LHS, b.RHS = l, r
		lhs = b
	}
}

func isComparison(op string) bool {
	switch op {
	case "==", "!=", ">", ">=", "<", "<=":
		return true
	}
	return false
}

func (p *parser) parseMatching() (*VectorMatching, error) {
	if !p.isKeyword("on") && !p.isKeyword("ignoring") {
		return nil, nil
	}
	m := &VectorMatching{On: p.next().text == "on"}
	var err error
	if m.Labels, err = p.parseLabelList(); err != nil {
		return nil, err
	}
	if p.isKeyword("group_left") || p.isKeyword("group_right") {
		m.Card = p.next().text
		if p.peek().kind == tOpenParen {
			if m.Include, err = p.parseLabelList(); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (p *parser) parseUnary() (Expr, error) {
	t := p.peek()
	switch t.kind {
	case tSub, tAdd:
		p.next()
		e, err := p.parseExpr(binPrec["*"]) // binds tighter than + -
		if err != nil {
			return nil, err
		}
		s, ok := e.(SampleExpr)
		if !ok {
			return nil, p.unexpected(t)
		}
		if t.kind == tAdd {
			return s, nil
		}
		if n, ok := s.(*NumberExpr); ok {
			return &NumberExpr{Value: -n.Value}, nil
		}
		return &BinOpExpr{Op: "*", LHS: &NumberExpr{Value: -1}, RHS: s}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (Expr, error) {
	t := p.peek()
	switch t.kind {
	case tOpenBrace:
		return p.parseLogExpr(false)
	case tOpenParen:
		p.next()
		e, err := p.parseExpr(0)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tCloseParen); err != nil {
			return nil, err
		}
		return e, nil
	case tNumber:
		p.next()
		v, err := parseNumber(t.text)
		if err != nil {
			return nil, &ParseError{Msg: "syntax error: unexpected NUMBER", Line: t.line, Col: t.col}
		}
		return &NumberExpr{Value: v}, nil
	case tIdent:
		switch {
		case rangeOps[t.text]:
			return p.parseRangeAgg()
		case vectorOps[t.text]:
			return p.parseVectorAgg()
		case t.text == "vector":
			return p.parseVector()
		case t.text == "label_replace":
			return p.parseLabelReplace()
		}
	}
	return nil, p.unexpected(t)
}

func parseNumber(s string) (float64, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		v, err := strconv.ParseInt(s[2:], 16, 64)
		return float64(v), err
	}
	switch strings.ToLower(s) {
	case "inf", "nan":
		return 0, fmt.Errorf("not a number literal")
	}
	return strconv.ParseFloat(s, 64)
}

// parseSelector parses `{name op "value", …}`.
func (p *parser) parseSelector() ([]*labels.Matcher, error) {
	if _, err := p.expect(tOpenBrace); err != nil {
		return nil, err
	}
	var ms []*labels.Matcher
	for {
		m, err := p.parseMatcher()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		t := p.next()
		if t.kind == tCloseBrace {
			return ms, nil
		}
		if t.kind != tComma {
			return nil, p.unexpected(t, ",", "}")
		}
	}
}

func (p *parser) parseMatcher() (*labels.Matcher, error) {
	name := p.next()
	if name.kind != tIdent || !isLabelName(name.text) {
		return nil, p.unexpected(name, "IDENTIFIER")
	}
	op := p.next()
	var mt labels.MatchType
	switch op.kind {
	case tEq:
		mt = labels.MatchEqual
	case tNeq:
		mt = labels.MatchNotEqual
	case tRe:
		mt = labels.MatchRegexp
	case tNre:
		mt = labels.MatchNotRegexp
	default:
		return nil, p.unexpected(op, "=", "!=", "=~", "!~")
	}
	val, err := p.expect(tString)
	if err != nil {
		return nil, err
	}
	m, err := labels.NewMatcher(mt, name.text, val.text)
	if err != nil {
		return nil, &ParseError{Msg: err.Error(), Line: val.line, Col: val.col}
	}
	return m, nil
}

// parseLogExpr parses a selector and its pipeline. inRange allows `unwrap`
// and stops at `[`.
func (p *parser) parseLogExpr(inRange bool) (*LogExpr, error) {
	ms, err := p.parseSelector()
	if err != nil {
		return nil, err
	}
	e := &LogExpr{Matchers: ms}
	e.Stages, _, err = p.parseStages(inRange)
	return e, err
}

// parseStages parses pipeline stages until something that cannot continue a
// pipeline. It returns the unwrap stage when inRange and one is present.
func (p *parser) parseStages(inRange bool) ([]Stage, *Unwrap, error) {
	var stages []Stage
	var unwrap *Unwrap
	for {
		t := p.peek()
		switch t.kind {
		case tPipeEq, tNeq, tPipeRe, tNre, tPipeGt, tNotGt:
			if unwrap != nil {
				return nil, nil, p.unexpected(t)
			}
			f, err := p.parseLineFilter()
			if err != nil {
				return nil, nil, err
			}
			stages = append(stages, f)
		case tPipe:
			p.next()
			if p.isKeyword("unwrap") {
				if !inRange || unwrap != nil {
					return nil, nil, p.unexpected(p.peek())
				}
				u, err := p.parseUnwrap()
				if err != nil {
					return nil, nil, err
				}
				unwrap = u
				continue
			}
			if unwrap != nil {
				f, err := p.parseLabelFilter()
				if err != nil {
					return nil, nil, err
				}
				unwrap.PostFilters = append(unwrap.PostFilters, f)
				continue
			}
			s, err := p.parseStage()
			if err != nil {
				return nil, nil, err
			}
			stages = append(stages, s)
		default:
			return stages, unwrap, nil
		}
	}
}

func (p *parser) parseLineFilter() (*LineFilter, error) {
	t := p.next()
	f := &LineFilter{}
	switch t.kind {
	case tPipeEq:
		f.Op = LineContains
	case tNeq:
		f.Op = LineNotContains
	case tPipeRe:
		f.Op = LineRegex
	case tNre:
		f.Op = LineNotRegex
	case tPipeGt:
		f.Op = LinePattern
	case tNotGt:
		f.Op = LineNotPattern
	}
	for {
		v := p.next()
		if v.kind == tIdent && v.text == "ip" {
			return nil, &ParseError{Msg: "ip() line filters are not supported", Line: v.line, Col: v.col}
		}
		if v.kind != tString {
			return nil, p.unexpected(v, "STRING")
		}
		if err := checkLineFilterValue(f.Op, v); err != nil {
			return nil, err
		}
		f.Values = append(f.Values, v.text)
		if !p.isKeyword("or") || p.peekAt(1).kind != tString {
			return f, nil
		}
		p.next()
	}
}

func checkLineFilterValue(op LineFilterOp, v token) error {
	switch op {
	case LineRegex, LineNotRegex:
		if _, err := compileRegex(v.text); err != nil {
			return &ParseError{Msg: fmt.Sprintf("invalid regex %q: %v", v.text, err), Line: v.line, Col: v.col}
		}
	case LinePattern, LineNotPattern:
		if _, err := compilePattern(v.text, true); err != nil {
			return &ParseError{Msg: err.Error(), Line: v.line, Col: v.col}
		}
	}
	return nil
}

func (p *parser) parseStage() (Stage, error) {
	t := p.peek()
	if t.kind == tIdent {
		switch t.text {
		case "json", "logfmt":
			if !isComparisonTok(p.peekAt(1).kind) {
				return p.parseFieldParser()
			}
		case "regexp", "pattern":
			if p.peekAt(1).kind == tString {
				p.next()
				v := p.next()
				if t.text == "regexp" {
					if _, err := compileRegexpParser(v.text); err != nil {
						return nil, &ParseError{Msg: err.Error(), Line: v.line, Col: v.col}
					}
				} else if _, err := compilePattern(v.text, false); err != nil {
					return nil, &ParseError{Msg: err.Error(), Line: v.line, Col: v.col}
				}
				return &ParserStage{Kind: t.text, Param: v.text}, nil
			}
		case "unpack":
			if !isComparisonTok(p.peekAt(1).kind) {
				p.next()
				return &ParserStage{Kind: "unpack"}, nil
			}
		case "decolorize":
			if !isComparisonTok(p.peekAt(1).kind) {
				p.next()
				return &DecolorizeStage{}, nil
			}
		case "line_format":
			if p.peekAt(1).kind == tString {
				p.next()
				v := p.next()
				if _, err := newTemplate(v.text); err != nil {
					return nil, &ParseError{Msg: err.Error(), Line: v.line, Col: v.col}
				}
				return &LineFormatStage{Template: v.text}, nil
			}
		case "label_format":
			if !isComparisonTok(p.peekAt(1).kind) {
				return p.parseLabelFormat()
			}
		case "drop", "keep":
			if !isComparisonTok(p.peekAt(1).kind) {
				return p.parseDropKeep()
			}
		}
	}
	f, err := p.parseLabelFilter()
	if err != nil {
		return nil, err
	}
	return &LabelFilterStage{Filter: f}, nil
}

func isComparisonTok(k tokKind) bool {
	switch k {
	case tEq, tNeq, tRe, tNre, tCmpEq, tGt, tGte, tLt, tLte:
		return true
	}
	return false
}

// parseFieldParser parses json/logfmt with optional flags and fields:
// `| json`, `| logfmt --strict a, b="c.d"`, `| json x="a.b[0]"`.
func (p *parser) parseFieldParser() (Stage, error) {
	s := &ParserStage{Kind: p.next().text}
	for p.peek().kind == tFlag {
		f := p.next()
		if s.Kind != "logfmt" || f.text != "--strict" && f.text != "--keep-empty" {
			return nil, p.unexpected(f)
		}
		s.Flags = append(s.Flags, f.text)
	}
	for p.peek().kind == tIdent && !p.isKeyword("or") {
		name := p.next()
		ex := Extraction{Label: name.text}
		if p.peek().kind == tEq {
			p.next()
			v, err := p.expect(tString)
			if err != nil {
				return nil, err
			}
			ex.Expr = v.text
		}
		if !isLabelName(ex.Label) {
			return nil, &ParseError{Msg: fmt.Sprintf("invalid label name %q", ex.Label), Line: name.line, Col: name.col}
		}
		s.Extractions = append(s.Extractions, ex)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	return s, nil
}

func (p *parser) parseLabelFormat() (Stage, error) {
	p.next()
	s := &LabelFormatStage{}
	for {
		name := p.next()
		if name.kind != tIdent || !isLabelName(name.text) {
			return nil, p.unexpected(name, "IDENTIFIER")
		}
		if _, err := p.expect(tEq); err != nil {
			return nil, err
		}
		v := p.next()
		switch v.kind {
		case tIdent:
			s.Items = append(s.Items, LabelFmt{Dst: name.text, Value: v.text})
		case tString:
			if _, err := newTemplate(v.text); err != nil {
				return nil, &ParseError{Msg: err.Error(), Line: v.line, Col: v.col}
			}
			s.Items = append(s.Items, LabelFmt{Dst: name.text, Value: v.text, Template: true})
		default:
			return nil, p.unexpected(v, "IDENTIFIER", "STRING")
		}
		if p.peek().kind != tComma {
			return s, nil
		}
		p.next()
	}
}

func (p *parser) parseDropKeep() (Stage, error) {
	s := &DropStage{Keep: p.next().text == "keep"}
	for {
		if p.peek().kind != tIdent {
			return nil, p.unexpected(p.peek(), "IDENTIFIER")
		}
		if isComparisonTok(p.peekAt(1).kind) {
			m, err := p.parseMatcher()
			if err != nil {
				return nil, err
			}
			s.Items = append(s.Items, NameMatcher{Name: m.Name, Matcher: m})
		} else {
			s.Items = append(s.Items, NameMatcher{Name: p.next().text})
		}
		if p.peek().kind != tComma {
			return s, nil
		}
		p.next()
	}
}

// parseLabelFilter parses label predicates; `and`, `,` and juxtaposition
// bind tighter than `or`.
func (p *parser) parseLabelFilter() (LabelFilter, error) {
	l, err := p.parseLabelFilterAnd()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("or") {
		p.next()
		r, err := p.parseLabelFilterAnd()
		if err != nil {
			return nil, err
		}
		l = &BinaryLabelFilter{Left: l, Right: r}
	}
	return l, nil
}

func (p *parser) parseLabelFilterAnd() (LabelFilter, error) {
	l, err := p.parseLabelFilterPrimary()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isKeyword("and") || p.peek().kind == tComma:
			p.next()
		case p.peek().kind == tIdent && isComparisonTok(p.peekAt(1).kind) && !p.isKeyword("or"):
		default:
			return l, nil
		}
		r, err := p.parseLabelFilterPrimary()
		if err != nil {
			return nil, err
		}
		l = &BinaryLabelFilter{And: true, Left: l, Right: r}
	}
}

func (p *parser) parseLabelFilterPrimary() (LabelFilter, error) {
	if p.peek().kind == tOpenParen {
		p.next()
		f, err := p.parseLabelFilter()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tCloseParen); err != nil {
			return nil, err
		}
		return f, nil
	}
	name := p.next()
	if name.kind != tIdent || !isLabelName(name.text) {
		return nil, p.unexpected(name, "IDENTIFIER")
	}
	op := p.next()
	val := p.next()
	switch {
	case val.kind == tString && (op.kind == tEq || op.kind == tNeq || op.kind == tRe || op.kind == tNre):
		mt := map[tokKind]labels.MatchType{tEq: labels.MatchEqual, tNeq: labels.MatchNotEqual,
			tRe: labels.MatchRegexp, tNre: labels.MatchNotRegexp}[op.kind]
		m, err := labels.NewMatcher(mt, name.text, val.text)
		if err != nil {
			return nil, &ParseError{Msg: err.Error(), Line: val.line, Col: val.col}
		}
		return &StringLabelFilter{Matcher: m}, nil
	case val.kind == tNumber && isComparisonTok(op.kind) && op.kind != tRe && op.kind != tNre:
		f := &NumericLabelFilter{Name: name.text, Op: CmpOp(op.kind.String()), Text: val.text}
		if f.Op == "=" {
			f.Op = "=="
		}
		var err error
		if f.Kind, f.Value, err = classifyLiteral(val.text); err != nil {
			return nil, &ParseError{Msg: "syntax error: unexpected NUMBER", Line: val.line, Col: val.col}
		}
		return f, nil
	case isComparisonTok(op.kind):
		return nil, p.unexpected(val, "STRING", "NUMBER")
	}
	return nil, p.unexpected(op)
}

// classifyLiteral tells a number from a duration from a byte size.
func classifyLiteral(s string) (string, float64, error) {
	if v, err := parseNumber(s); err == nil {
		return "number", v, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return "duration", d.Seconds(), nil
	}
	if b, err := parseBytes(s); err == nil {
		return "bytes", float64(b), nil
	}
	return "", 0, fmt.Errorf("not a number, duration or byte size: %q", s)
}

var byteUnits = map[string]float64{
	"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "eb": 1e18,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50, "eib": 1 << 60,
	"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15, "e": 1e18,
	"ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40, "pi": 1 << 50, "ei": 1 << 60,
}

// parseBytes parses sizes such as 10KB, 1.5MiB, 20 B (decimal and binary
// units, case-insensitive).
func parseBytes(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("parse bytes %q: %w", s, err)
	}
	mult := 1.0
	if unit != "" {
		m, ok := byteUnits[unit]
		if !ok {
			return 0, fmt.Errorf("parse bytes %q: unknown unit %q", s, unit)
		}
		mult = m
	}
	f := v * mult
	if f >= math.MaxUint64 {
		return 0, fmt.Errorf("parse bytes %q: too large", s)
	}
	return uint64(f), nil
}

func (p *parser) parseUnwrap() (*Unwrap, error) {
	p.next() // unwrap
	u := &Unwrap{}
	t := p.next()
	if t.kind != tIdent {
		return nil, p.unexpected(t, "IDENTIFIER")
	}
	if (t.text == "duration" || t.text == "duration_seconds" || t.text == "bytes") && p.peek().kind == tOpenParen {
		p.next()
		u.Conv = t.text
		if t = p.next(); t.kind != tIdent {
			return nil, p.unexpected(t, "IDENTIFIER")
		}
		if _, err := p.expect(tCloseParen); err != nil {
			return nil, err
		}
	}
	if !isLabelName(t.text) {
		return nil, &ParseError{Msg: fmt.Sprintf("invalid label name %q", t.text), Line: t.line, Col: t.col}
	}
	u.Label = t.text
	return u, nil
}

var rangeOps = map[string]bool{
	"rate": true, "rate_counter": true, "count_over_time": true, "bytes_over_time": true,
	"bytes_rate": true, "sum_over_time": true, "avg_over_time": true, "min_over_time": true,
	"max_over_time": true, "stddev_over_time": true, "stdvar_over_time": true,
	"quantile_over_time": true, "first_over_time": true, "last_over_time": true,
	"absent_over_time": true,
}

// unwrapOps need `| unwrap`; the others count lines or bytes and refuse it.
var unwrapOps = map[string]bool{
	"rate_counter": true, "sum_over_time": true, "avg_over_time": true, "min_over_time": true,
	"max_over_time": true, "stddev_over_time": true, "stdvar_over_time": true,
	"quantile_over_time": true, "first_over_time": true, "last_over_time": true,
}

var vectorOps = map[string]bool{
	"sum": true, "avg": true, "min": true, "max": true, "count": true, "stddev": true,
	"stdvar": true, "topk": true, "bottomk": true, "sort": true, "sort_desc": true,
}

func (p *parser) parseRangeAgg() (Expr, error) {
	opTok := p.next()
	e := &RangeAggExpr{Op: opTok.text}
	if _, err := p.expect(tOpenParen); err != nil {
		return nil, err
	}
	if e.Op == "quantile_over_time" {
		t, err := p.expect(tNumber)
		if err != nil {
			return nil, err
		}
		if e.Param, err = parseNumber(t.text); err != nil {
			return nil, p.unexpected(t)
		}
		if _, err := p.expect(tComma); err != nil {
			return nil, err
		}
	}
	if err := p.parseLogRange(e); err != nil {
		return nil, err
	}
	if _, err := p.expect(tCloseParen); err != nil {
		return nil, err
	}
	if p.isKeyword("by") || p.isKeyword("without") {
		g, err := p.parseGrouping()
		if err != nil {
			return nil, err
		}
		e.Grouping = g
	}
	if unwrapOps[e.Op] != (e.Unwrap != nil) {
		if e.Unwrap == nil {
			return nil, &ParseError{Msg: fmt.Sprintf("invalid aggregation %s without unwrap", e.Op)}
		}
		return nil, &ParseError{Msg: fmt.Sprintf("invalid aggregation %s with unwrap", e.Op)}
	}
	if e.Grouping != nil && e.Unwrap == nil {
		return nil, &ParseError{Msg: fmt.Sprintf("grouping not allowed for %s aggregation", e.Op)}
	}
	return e, nil
}

// parseLogRange parses `{…} pipeline [| unwrap x] [5m] [offset d]` or the
// older `{…}[5m] pipeline` form.
func (p *parser) parseLogRange(e *RangeAggExpr) error {
	ms, err := p.parseSelector()
	if err != nil {
		return err
	}
	e.Log = &LogExpr{Matchers: ms}
	stages, unwrap, err := p.parseStages(true)
	if err != nil {
		return err
	}
	e.Log.Stages, e.Unwrap = stages, unwrap
	if e.Range, err = p.parseRange(); err != nil {
		return err
	}
	if p.isKeyword("offset") {
		p.next()
		if e.Offset, err = p.parseDuration(); err != nil {
			return err
		}
	}
	if len(stages) == 0 && unwrap == nil {
		stages, unwrap, err = p.parseStages(true)
		if err != nil {
			return err
		}
		e.Log.Stages, e.Unwrap = stages, unwrap
	}
	return nil
}

func (p *parser) parseRange() (time.Duration, error) {
	if _, err := p.expect(tOpenBracket); err != nil {
		return 0, err
	}
	d, err := p.parseDuration()
	if err != nil {
		return 0, err
	}
	if _, err := p.expect(tCloseBracket); err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, &ParseError{Msg: "range must be positive"}
	}
	return d, nil
}

func (p *parser) parseDuration() (time.Duration, error) {
	t := p.next()
	if t.kind != tNumber {
		return 0, p.unexpected(t, "DURATION")
	}
	if d, err := model.ParseDuration(t.text); err == nil {
		return time.Duration(d), nil
	}
	d, err := time.ParseDuration(t.text)
	if err != nil {
		return 0, &ParseError{Msg: "syntax error: unexpected NUMBER, expecting DURATION", Line: t.line, Col: t.col}
	}
	return d, nil
}

func (p *parser) parseGrouping() (*Grouping, error) {
	g := &Grouping{Without: p.next().text == "without"}
	var err error
	g.Labels, err = p.parseLabelList()
	return g, err
}

func (p *parser) parseLabelList() ([]string, error) {
	if _, err := p.expect(tOpenParen); err != nil {
		return nil, err
	}
	var out []string
	if p.peek().kind == tCloseParen {
		p.next()
		return out, nil
	}
	for {
		t := p.next()
		if t.kind != tIdent || !isLabelName(t.text) {
			return nil, p.unexpected(t, "IDENTIFIER")
		}
		out = append(out, t.text)
		t = p.next()
		if t.kind == tCloseParen {
			return out, nil
		}
		if t.kind != tComma {
			return nil, p.unexpected(t, ",", ")")
		}
	}
}

func (p *parser) parseVectorAgg() (Expr, error) {
	e := &VectorAggExpr{Op: p.next().text}
	var err error
	if p.isKeyword("by") || p.isKeyword("without") {
		if e.Grouping, err = p.parseGrouping(); err != nil {
			return nil, err
		}
	}
	if _, err := p.expect(tOpenParen); err != nil {
		return nil, err
	}
	if e.Op == "topk" || e.Op == "bottomk" {
		t, err := p.expect(tNumber)
		if err != nil {
			return nil, err
		}
		k, err := strconv.Atoi(t.text)
		if err != nil || k <= 0 {
			return nil, &ParseError{Msg: fmt.Sprintf("invalid parameter for %s: %s", e.Op, t.text), Line: t.line, Col: t.col}
		}
		e.Param = float64(k)
		if _, err := p.expect(tComma); err != nil {
			return nil, err
		}
	}
	inner, err := p.parseExpr(0)
	if err != nil {
		return nil, err
	}
	s, ok := inner.(SampleExpr)
	if !ok {
		return nil, p.unexpected(p.peek())
	}
	e.Inner = s
	if _, err := p.expect(tCloseParen); err != nil {
		return nil, err
	}
	if e.Grouping == nil && (p.isKeyword("by") || p.isKeyword("without")) {
		if e.Grouping, err = p.parseGrouping(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (p *parser) parseVector() (Expr, error) {
	p.next()
	if _, err := p.expect(tOpenParen); err != nil {
		return nil, err
	}
	neg := false
	if p.peek().kind == tSub {
		p.next()
		neg = true
	}
	t, err := p.expect(tNumber)
	if err != nil {
		return nil, err
	}
	v, err := parseNumber(t.text)
	if err != nil {
		return nil, p.unexpected(t)
	}
	if neg {
		v = -v
	}
	if _, err := p.expect(tCloseParen); err != nil {
		return nil, err
	}
	return &VectorExpr{Value: v}, nil
}

func (p *parser) parseLabelReplace() (Expr, error) {
	p.next()
	if _, err := p.expect(tOpenParen); err != nil {
		return nil, err
	}
	inner, err := p.parseExpr(0)
	if err != nil {
		return nil, err
	}
	s, ok := inner.(SampleExpr)
	if !ok {
		return nil, p.unexpected(p.peek())
	}
	e := &LabelReplaceExpr{Inner: s}
	for _, dst := range []*string{&e.Dst, &e.Repl, &e.Src, &e.Regexp} {
		if _, err := p.expect(tComma); err != nil {
			return nil, err
		}
		t, err := p.expect(tString)
		if err != nil {
			return nil, err
		}
		*dst = t.text
	}
	if _, err := p.expect(tCloseParen); err != nil {
		return nil, err
	}
	if _, err := compileRegex("^(?:" + e.Regexp + ")$"); err != nil {
		return nil, &ParseError{Msg: fmt.Sprintf("invalid regex in label_replace: %v", err)}
	}
	return e, nil
}

// validate applies the checks Loki makes after parsing: every selector must
// select something narrower than "all streams".
func validate(e Expr) error {
	var err error
	Walk(e, func(n Expr) {
		if err != nil {
			return
		}
		if l, ok := n.(*LogExpr); ok && !hasNonEmptyMatcher(l.Matchers) {
			err = &ParseError{Msg: errEmptySelector}
		}
	})
	return err
}

func hasNonEmptyMatcher(ms []*labels.Matcher) bool {
	for _, m := range ms {
		if (m.Type == labels.MatchEqual || m.Type == labels.MatchRegexp) && !m.Matches("") {
			return true
		}
	}
	return false
}

// Walk calls f for e and every expression below it, log expressions included.
func Walk(e Expr, f func(Expr)) {
	f(e)
	switch n := e.(type) {
	case *RangeAggExpr:
		Walk(n.Log, f)
	case *VectorAggExpr:
		Walk(n.Inner, f)
	case *BinOpExpr:
		Walk(n.LHS, f)
		Walk(n.RHS, f)
	case *LabelReplaceExpr:
		Walk(n.Inner, f)
	}
}
