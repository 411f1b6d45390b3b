package traceql

import (
	"errors"
	"fmt"
	"strings"
)

// ParseError reports where a query stopped making sense and why.
type ParseError struct {
	Line, Col int // 1-based position of the offending token
	Msg       string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

// after reports whether e points further into the query than o.
func (e *ParseError) after(o *ParseError) bool {
	return e.Line > o.Line || e.Line == o.Line && e.Col > o.Col
}

type parser struct {
	toks []token
	pos  int
	// sawLeaf is set once a parenthesised metrics query was parsed: the
	// query is then certainly metrics arithmetic, so its errors win.
	sawLeaf bool
	// lenient accepts the half-typed queries Grafana sends while
	// autocompleting (see ParseLenient).
	lenient bool
}

// Parse parses a TraceQL query: a spanset pipeline such as
// `{resource.service.name="api" && duration > 100ms} | count() > 2`, or a
// metrics query such as `{status=error} | rate() by (resource.service.name)`.
// Errors are *ParseError values carrying the line and column.
func Parse(query string) (*Query, error) { return parse(query, false) }

// ParseLenient parses a query that is still being typed, as Grafana sends in
// the q parameter of tag-value requests while autocompleting: a comparison
// missing its right-hand side (`.http.method = }`) counts as true, and a
// missing closing "}" is supplied. Like Tempo's lenient parser it lets the
// complete conditions narrow the values offered. An empty query is {}.
func ParseLenient(query string) (*Query, error) {
	if strings.TrimSpace(query) == "" {
		query = "{}"
	}
	return parse(query, true)
}

func parse(query string, lenient bool) (*Query, error) {
	toks, err := lex(query)
	if err != nil {
		if lenient {
			// An unterminated string or attribute at the cursor: drop from there.
			var pe *ParseError
			if errors.As(err, &pe) {
				if cut := offsetOf(query, pe.Line, pe.Col); cut > 0 && cut < len(query) {
					return parse(query[:cut], true)
				}
			}
		}
		return nil, err
	}
	if err := checkNesting(toks); err != nil {
		return nil, err
	}
	p := &parser{toks: toks, lenient: lenient}
	pl, err := p.parsePipeline(true)
	if err != nil {
		// Arithmetic between metrics queries starts like a grouped pipeline
		// or a number: try it, and report whichever attempt got further.
		if t := toks[0]; t.kind == tPunct && (t.text == "(" || t.text == "-") || t.kind == tInt || t.kind == tFloat || t.kind == tDuration {
			q, committed, merr := parseMathQuery(query, toks)
			if merr == nil {
				return q, nil
			}
			var pe1, pe2 *ParseError
			if committed || errors.As(err, &pe1) && errors.As(merr, &pe2) && pe2.after(pe1) {
				return nil, merr
			}
		}
		return nil, err
	}
	if p.isIdent("with") {
		if err := p.parseHints(); err != nil {
			return nil, err
		}
	}
	if p.peek().kind != tEOF {
		return nil, p.errExpected(`"|", "&&", "||", a structural operator or the end of the query`)
	}
	if err := validatePipeline(pl); err != nil {
		return nil, err
	}
	return compileQuery(query, pl)
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) isIdent(s string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == s
}

// maxNesting bounds how deep parentheses nest. A "(" may open a spanset
// expression or a scalar one and the parser tries both, so its time grows
// with the cube of the depth: 400 levels took 0.75 s, 2,400 (a 2.5 KB query)
// nearly a minute. Queries people write nest a few levels.
const maxNesting = 64

// checkNesting refuses a query whose parentheses nest deeper than
// maxNesting, at the "(" that goes past it.
func checkNesting(toks []token) error {
	depth := 0
	for _, t := range toks {
		if t.kind != tPunct {
			continue
		}
		switch t.text {
		case "(":
			if depth++; depth > maxNesting {
				return &ParseError{Line: t.line, Col: t.col, Msg: fmt.Sprintf("parentheses nest more than %d deep", maxNesting)}
			}
		case ")":
			depth--
		}
	}
	return nil
}

func (p *parser) errAt(t token, format string, args ...any) *ParseError {
	return &ParseError{Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errExpected(what string) *ParseError {
	t := p.peek()
	return p.errAt(t, "expected %s but found %s", what, t.describe())
}

func (p *parser) expectPunct(s string) error {
	if !p.isPunct(s) {
		return p.errExpected(fmt.Sprintf("%q", s))
	}
	p.next()
	return nil
}

// offsetOf converts a 1-based line and rune column to a byte offset.
func offsetOf(s string, line, col int) int {
	l, c := 1, 1
	for i, r := range s {
		if l == line && c == col {
			return i
		}
		if r == '\n' {
			l, c = l+1, 1
		} else {
			c++
		}
	}
	return -1
}
