// Package logql parses and evaluates LogQL, Loki's query language: stream
// selectors, log pipelines (line filters, parsers, label filters, formatting)
// and metric queries over them.
package logql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind is a lexical class. The names printed in syntax errors are the ones
// Loki's grammar uses, so error messages read the same to users.
type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber // also durations and byte sizes: the parser classifies them
	tFlag   // --strict, --keep-empty
	tOpenBrace
	tCloseBrace
	tOpenParen
	tCloseParen
	tOpenBracket
	tCloseBracket
	tComma
	tColon
	tEq      // =
	tNeq     // !=
	tRe      // =~
	tNre     // !~
	tPipeEq  // |=
	tPipeRe  // |~
	tPipeGt  // |>
	tNotGt   // !>
	tPipe    // |
	tCmpEq   // ==
	tGt      // >
	tGte     // >=
	tLt      // <
	tLte     // <=
	tAdd     // +
	tSub     // -
	tMul     // *
	tDiv     // /
	tMod     // %
	tPow     // ^
	tInvalid // a character no token starts with
)

var tokNames = map[tokKind]string{
	tEOF: "$end", tIdent: "IDENTIFIER", tString: "STRING", tNumber: "NUMBER", tFlag: "PARSER_FLAG",
	tOpenBrace: "{", tCloseBrace: "}", tOpenParen: "(", tCloseParen: ")", tOpenBracket: "[",
	tCloseBracket: "]", tComma: ",", tColon: ":", tEq: "=", tNeq: "!=", tRe: "=~", tNre: "!~",
	tPipeEq: "|=", tPipeRe: "|~", tPipeGt: "|>", tNotGt: "!>", tPipe: "|", tCmpEq: "==",
	tGt: ">", tGte: ">=", tLt: "<", tLte: "<=", tAdd: "+", tSub: "-", tMul: "*", tDiv: "/",
	tMod: "%", tPow: "^", tInvalid: "INVALID",
}

func (k tokKind) String() string { return tokNames[k] }

type token struct {
	kind      tokKind
	text      string // identifier, unquoted string, number text
	line, col int
}

// lex splits a query into tokens. An unterminated string or a bad escape is
// reported as a ParseError at its position.
func lex(input string) ([]token, error) {
	var toks []token
	line, col := 1, 1
	i := 0
	advance := func(n int) {
		for _, r := range input[i : i+n] {
			if r == '\n' {
				line++
				col = 1
			} else {
				col++
			}
		}
		i += n
	}
	for i < len(input) {
		c := input[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			advance(1)
			continue
		case c == '#':
			for i < len(input) && input[i] != '\n' {
				advance(1)
			}
			continue
		}
		tok := token{line: line, col: col}
		n := 0
		switch {
		case c == '"' || c == '`':
			s, w, err := lexString(input[i:])
			if err != nil {
				return nil, &ParseError{Msg: err.Error(), Line: line, Col: col}
			}
			tok.kind, tok.text, n = tString, s, w
		case isIdentStart(c):
			n = identLen(input[i:])
			tok.kind, tok.text = tIdent, input[i:i+n]
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(input) && input[i+1] >= '0' && input[i+1] <= '9':
			n = numberLen(input[i:])
			tok.kind, tok.text = tNumber, input[i:i+n]
		case c == '-' && strings.HasPrefix(input[i:], "--") && i+2 < len(input) && isIdentStart(input[i+2]):
			n = 2 + flagLen(input[i+2:])
			tok.kind, tok.text = tFlag, input[i:i+n]
		default:
			tok.kind, n = punct(input[i:])
			tok.text = input[i : i+n]
		}
		advance(n)
		toks = append(toks, tok)
	}
	toks = append(toks, token{kind: tEOF, line: line, col: col})
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// identLen also accepts dots inside identifiers, as json field paths and
// OTel-style names (`| json a.b`) need; the parser rejects them where a label
// name is required.
func identLen(s string) int {
	n := 1
	for n < len(s) && (isIdentChar(s[n]) || s[n] == '.' && n+1 < len(s) && isIdentStart(s[n+1])) {
		n++
	}
	return n
}

func flagLen(s string) int {
	n := 0
	for n < len(s) && (isIdentChar(s[n]) || s[n] == '-') {
		n++
	}
	return n
}

// numberLen takes digits, a fraction, an exponent and unit suffixes, so that
// 1.5, 1e3, 5m, 1h30m, 10KB and 0x1f are single tokens.
func numberLen(s string) int {
	n := 0
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		n = 2
		for n < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[n]) >= 0 {
			n++
		}
		return n
	}
	for n < len(s) {
		c := s[n]
		switch {
		case c >= '0' && c <= '9' || c == '.' || isIdentStart(c):
			n++
		case (c == '+' || c == '-') && n > 0 && (s[n-1] == 'e' || s[n-1] == 'E') && isDigits(s[:n-1]):
			n++
		default:
			return n
		}
	}
	return n
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return s != ""
}

var puncts = []struct {
	s string
	k tokKind
}{
	{"|=", tPipeEq}, {"|~", tPipeRe}, {"|>", tPipeGt}, {"!=", tNeq}, {"!~", tNre}, {"!>", tNotGt},
	{"=~", tRe}, {"==", tCmpEq}, {">=", tGte}, {"<=", tLte},
	{"{", tOpenBrace}, {"}", tCloseBrace}, {"(", tOpenParen}, {")", tCloseParen},
	{"[", tOpenBracket}, {"]", tCloseBracket}, {",", tComma}, {":", tColon}, {"=", tEq},
	{"|", tPipe}, {">", tGt}, {"<", tLt}, {"+", tAdd}, {"-", tSub}, {"*", tMul}, {"/", tDiv},
	{"%", tMod}, {"^", tPow},
}

func punct(s string) (tokKind, int) {
	for _, p := range puncts {
		if strings.HasPrefix(s, p.s) {
			return p.k, len(p.s)
		}
	}
	_, w := utf8.DecodeRuneInString(s)
	return tInvalid, w
}

// lexString reads a double-quoted string with Go escapes or a raw
// backtick string, returning its value and the bytes consumed.
func lexString(s string) (string, int, error) {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if q == '"' {
				i++
			}
		case q:
			if q == '`' {
				return s[1:i], i + 1, nil
			}
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", 0, fmt.Errorf("invalid string %s: %w", s[:i+1], err)
			}
			return v, i + 1, nil
		case '\n':
			if q == '"' {
				return "", 0, fmt.Errorf("literal not terminated")
			}
		}
	}
	return "", 0, fmt.Errorf("literal not terminated")
}

// isLabelName reports whether s is a valid Prometheus label name.
func isLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) && r < 128 || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
