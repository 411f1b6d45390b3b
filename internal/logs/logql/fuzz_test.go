package logql

import (
	"context"
	"testing"
	"time"
)

// FuzzParseExpr feeds the parser arbitrary queries: it must never panic, and
// whatever it accepts must print to a query that parses to the same text and
// that the engine evaluates without panicking.
func FuzzParseExpr(f *testing.F) {
	for _, q := range validQueries {
		f.Add(q)
	}
	for _, q := range []string{`{`, `{a="b"} |`, `sum(`, `{a="b"} | json | line_format "{{"`, "{a=`b`} |= \"\\x\"",
		`rate({a="b"}[0s])`, `{a="b"} | x > 1e400`, `topk(99999999999999999999, rate({a="b"}[1m]))`, `--`, `0x`} {
		f.Add(q)
	}
	m := fixture()
	e := NewEngine(m, Options{})
	f.Fuzz(func(t *testing.T, q string) {
		expr, err := ParseExpr(q)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("%q: error %T %v is not a ParseError", q, err, err)
			}
			return
		}
		printed := expr.String()
		again, err := ParseExpr(printed)
		if err != nil {
			t.Fatalf("%q printed as %q does not parse: %v", q, printed, err)
		}
		if again.String() != printed {
			t.Fatalf("%q: %q reprints as %q", q, printed, again.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = e.Exec(ctx, Params{Query: q, Start: t0, End: t0.Add(10 * time.Minute), Step: time.Minute, Limit: 10})
	})
}
