package traceql

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token.
type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tInt
	tFloat
	tDuration
	tAttr      // .name, span.name, resource."quoted name": text holds the name, scope the scope
	tIntrinsic // span:name, trace:duration ...: text holds "scope:name"
	tPunct     // operators and punctuation: text holds the operator
)

// token is one lexeme with its position (1-based line and column, in runes).
type token struct {
	kind  tokKind
	text  string // identifier, operator, decoded string, attribute name
	scope string // attribute scope: "", "span", "resource", "event", "link", "instrumentation", "parent"
	i     int64
	f     float64
	d     time.Duration
	line  int
	col   int
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tIdent:
		return fmt.Sprintf("%q", t.text)
	case tString:
		return "string " + strconv.Quote(t.text)
	case tInt, tFloat, tDuration:
		return "number " + t.text
	case tAttr:
		return "attribute " + attrText(t.scope, t.text)
	case tIntrinsic:
		return "intrinsic " + t.text
	default:
		return fmt.Sprintf("%q", t.text)
	}
}

// operators, longest first so that greedy matching works.
var operators = []string{
	"!>>", "!<<", "&>>", "&<<",
	"&&", "||", "!=", "=~", "!~", ">=", "<=", ">>", "<<", "!>", "!<", "&>", "&<", "&~",
	"{", "}", "(", ")", ",", "=", ">", "<", "+", "-", "*", "/", "%", "^", "!", "~", "|",
}

var attrScopes = map[string]bool{"span": true, "resource": true, "event": true, "link": true, "instrumentation": true, "parent": true}
var intrinsicScopes = map[string]bool{"span": true, "trace": true, "event": true, "link": true, "instrumentation": true}

type lexer struct {
	src  string
	pos  int // byte offset
	line int
	col  int
}

// lex splits the query into tokens; the last token is always tEOF.
func lex(src string) ([]token, error) {
	l := &lexer{src: src, line: 1, col: 1}
	var toks []token
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.kind == tEOF {
			return toks, nil
		}
	}
}

func (l *lexer) peek(off int) rune {
	if l.pos+off >= len(l.src) || off < 0 {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos+off:])
	return r
}

func (l *lexer) advance() rune {
	r, n := utf8.DecodeRuneInString(l.src[l.pos:])
	l.pos += n
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	return r
}

func (l *lexer) errf(line, col int, format string, args ...any) error {
	return &ParseError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) && unicode.IsSpace(l.peek(0)) {
		l.advance()
	}
	t := token{line: l.line, col: l.col}
	if l.pos >= len(l.src) {
		t.kind = tEOF
		return t, nil
	}
	r := l.peek(0)
	switch {
	case r == '"' || r == '`':
		return l.lexString(t)
	case isDigit(r) || (r == '.' && isDigit(l.peek(1))):
		return l.lexNumber(t)
	case r == '.':
		l.advance()
		return l.lexAttr(t, "")
	case isIdentStart(r):
		start := l.pos
		for l.pos < len(l.src) && isIdentPart(l.peek(0)) {
			l.advance()
		}
		word := l.src[start:l.pos]
		if l.peek(0) == '.' && attrScopes[word] {
			l.advance()
			return l.lexAttr(t, word)
		}
		if l.peek(0) == ':' && intrinsicScopes[word] {
			l.advance()
			nstart := l.pos
			for l.pos < len(l.src) && isIdentPart(l.peek(0)) {
				l.advance()
			}
			if l.pos == nstart {
				return t, l.errf(l.line, l.col, "expected an intrinsic name after %q", word+":")
			}
			t.kind = tIntrinsic
			t.text = word + ":" + l.src[nstart:l.pos]
			return t, nil
		}
		t.kind = tIdent
		t.text = word
		return t, nil
	}
	for _, op := range operators {
		if strings.HasPrefix(l.src[l.pos:], op) {
			for range op {
				l.advance()
			}
			t.kind = tPunct
			t.text = op
			return t, nil
		}
	}
	return t, l.errf(t.line, t.col, "unexpected character %q", r)
}

func (l *lexer) lexString(t token) (token, error) {
	quote := l.advance()
	start := l.pos - 1
	for {
		if l.pos >= len(l.src) {
			return t, l.errf(t.line, t.col, "unterminated string")
		}
		r := l.advance()
		if r == '\\' && quote == '"' {
			if l.pos >= len(l.src) {
				return t, l.errf(t.line, t.col, "unterminated string")
			}
			l.advance()
			continue
		}
		if r == quote {
			break
		}
		if r == '\n' && quote == '"' {
			return t, l.errf(t.line, t.col, "unterminated string")
		}
	}
	s, err := strconv.Unquote(l.src[start:l.pos])
	if err != nil {
		return t, l.errf(t.line, t.col, "invalid string literal %s", l.src[start:l.pos])
	}
	t.kind = tString
	t.text = s
	return t, nil
}

// lexNumber reads an int, float or duration. Durations are a number immediately
// followed by a unit (ns us µs ms s m h d w y), optionally repeated: 1h30m, 1.5s.
func (l *lexer) lexNumber(t token) (token, error) {
	start := l.pos
	l.scanDigits()
	isFloat := false
	if l.peek(0) == '.' && isDigit(l.peek(1)) {
		isFloat = true
		l.advance()
		l.scanDigits()
	}
	if (l.peek(0) == 'e' || l.peek(0) == 'E') && (isDigit(l.peek(1)) || ((l.peek(1) == '+' || l.peek(1) == '-') && isDigit(l.peek(2)))) {
		isFloat = true
		l.advance()
		if l.peek(0) == '+' || l.peek(0) == '-' {
			l.advance()
		}
		l.scanDigits()
	}
	if isUnitStart(l.peek(0)) {
		// Try to read a duration: number unit (number unit)*.
		save := *l
		l.pos, l.line, l.col = start, t.line, t.col
		end := l.scanDurationEnd()
		d, ok := parseDuration(l.src[start:end])
		if ok {
			for l.pos < end {
				l.advance()
			}
			t.kind = tDuration
			t.d = d
			t.text = l.src[start:end]
			return t, nil
		}
		*l = save
	}
	text := l.src[start:l.pos]
	t.text = text
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return t, l.errf(t.line, t.col, "invalid number %s", text)
		}
		t.kind, t.f = tFloat, f
		return t, nil
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return t, l.errf(t.line, t.col, "invalid integer %s", text)
	}
	t.kind, t.i = tInt, i
	return t, nil
}

func (l *lexer) scanDigits() {
	for isDigit(l.peek(0)) {
		l.advance()
	}
}

// scanDurationEnd returns the byte offset where a duration literal starting at
// l.pos would end: digits, dots and unit letters up to the first other rune.
func (l *lexer) scanDurationEnd() int {
	p := l.pos
	for p < len(l.src) {
		r, n := utf8.DecodeRuneInString(l.src[p:])
		if !isDigit(r) && r != '.' && !isUnitRune(r) {
			break
		}
		p += n
	}
	return p
}

var durationUnits = []struct {
	name string
	d    time.Duration
}{
	{"ns", time.Nanosecond}, {"us", time.Microsecond}, {"µs", time.Microsecond}, {"μs", time.Microsecond},
	{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour},
	{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}, {"y", 365 * 24 * time.Hour},
}

// parseDuration parses one or more number+unit pairs, e.g. "1h30m", "1.5s", "250µs".
func parseDuration(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (isDigit(rune(s[i])) || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, false
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, false
		}
		s = s[i:]
		matched := false
		// longest unit first: "ms" before "m", "ns" before nothing.
		for _, unit := range durationUnits {
			if strings.HasPrefix(s, unit.name) {
				total += n * float64(unit.d)
				s = s[len(unit.name):]
				matched = true
				break
			}
		}
		if !matched {
			return 0, false
		}
	}
	if total > float64(1<<63-1) {
		return 0, false
	}
	return time.Duration(total), true
}

// lexAttr reads an attribute name after "." or "scope.". Like Tempo, the name
// runs until whitespace or one of {}()=~!<>&|^, and may contain quoted parts
// ("http.method" or span."a b") with \" and \\ escapes.
func (l *lexer) lexAttr(t token, scope string) (token, error) {
	var sb strings.Builder
	for l.pos < len(l.src) {
		r := l.peek(0)
		if r == '"' {
			l.advance()
			closed := false
			for l.pos < len(l.src) {
				c := l.advance()
				if c == '\\' {
					e := l.peek(0)
					if e != '"' && e != '\\' {
						return t, l.errf(l.line, l.col, "invalid escape sequence in quoted attribute name")
					}
					sb.WriteRune(l.advance())
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				sb.WriteRune(c)
			}
			if !closed {
				return t, l.errf(t.line, t.col, "unterminated quoted attribute name")
			}
			continue
		}
		if !isAttrRune(r) {
			break
		}
		sb.WriteRune(l.advance())
	}
	if sb.Len() == 0 {
		return t, l.errf(l.line, l.col, "expected an attribute name after %q", scope+".")
	}
	t.kind = tAttr
	t.scope = scope
	t.text = sb.String()
	return t, nil
}

func isDigit(r rune) bool      { return r >= '0' && r <= '9' }
func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isIdentPart(r rune) bool  { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
func isUnitStart(r rune) bool {
	switch r {
	case 'n', 'u', 'µ', 'μ', 'm', 's', 'h', 'd', 'w', 'y':
		return true
	}
	return false
}
func isUnitRune(r rune) bool { return isUnitStart(r) }

// isAttrRune reports whether r may appear unquoted in an attribute name.
func isAttrRune(r rune) bool {
	if r < 0 || unicode.IsSpace(r) {
		return false
	}
	switch r {
	case '{', '}', '(', ')', '=', '~', '!', '<', '>', '&', '|', '^', ',', '"':
		return false
	}
	return true
}
