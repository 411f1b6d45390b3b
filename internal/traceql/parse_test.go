package traceql

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type corpus struct {
	Valid   []string `yaml:"valid"`
	Invalid []struct {
		Query string `yaml:"query"`
		Line  int    `yaml:"line"`
		Col   int    `yaml:"col"`
		Msg   string `yaml:"msg"`
	} `yaml:"invalid"`
}

func loadCorpus(t testing.TB) corpus {
	b, err := os.ReadFile("testdata/queries.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c corpus
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseCorpus(t *testing.T) {
	c := loadCorpus(t)
	for _, q := range c.Valid {
		t.Run("valid/"+q, func(t *testing.T) {
			parsed, err := Parse(q)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			s := parsed.String()
			again, err := Parse(s)
			if err != nil {
				t.Fatalf("re-Parse(%q): %v", s, err)
			}
			if again.String() != s {
				t.Fatalf("round trip: %q -> %q", s, again.String())
			}
		})
	}
	for _, tc := range c.Invalid {
		t.Run("invalid/"+tc.Query, func(t *testing.T) {
			_, err := Parse(tc.Query)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			if pe.Line != tc.Line || pe.Col != tc.Col || !strings.Contains(pe.Msg, tc.Msg) {
				t.Fatalf("got %v, want line %d col %d containing %q", err, tc.Line, tc.Col, tc.Msg)
			}
			if !strings.HasPrefix(err.Error(), "parse error at line ") {
				t.Fatalf("message %q lacks the position prefix", err.Error())
			}
		})
	}
}

func TestParseStringCanonical(t *testing.T) {
	cases := map[string]string{
		`{.a="b"}`:                                   `{ .a = "b" }`,
		`{ span:name = "x" }`:                        `{ name = "x" }`,
		`{ trace:rootService = "x" }`:                `{ rootServiceName = "x" }`,
		`{ .a = 1 } >> { .b = 2 } | count() > 3`:     `{ .a = 1 } >> { .b = 2 } | count() > 3`,
		`{} | by(resource.service.name)`:             `{} | by(resource.service.name)`,
		`{ span."http.method" = "GET" }`:             `{ span.http.method = "GET" }`,
		`{ span."a b" = 1 }`:                         `{ span."a b" = 1 }`,
		`{ duration > 1h30m }`:                       `{ duration > 1h30m0s }`,
		`{ .a = 1 || .b = 2 && .c = 3 }`:             `{ ((.a = 1) || (.b = 2)) && (.c = 3) }`,
		`{ } | quantile_over_time(duration, .5, .9)`: `{} | quantile_over_time(duration, 0.5, 0.9)`,
	}
	for in, want := range cases {
		q, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if q.String() != want {
			t.Errorf("Parse(%q).String() = %q, want %q", in, q.String(), want)
		}
	}
}

func TestIsMetrics(t *testing.T) {
	for q, want := range map[string]bool{
		`{ }`: false, `{ } | count() > 1`: false, `{ } | rate()`: true,
		`{ } | quantile_over_time(duration, .9) by(name)`: true,
	} {
		parsed, err := Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		if parsed.IsMetrics() != want {
			t.Errorf("%s: IsMetrics = %v", q, !want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, q := range loadCorpus(f).Valid {
		f.Add(q)
	}
	for _, tc := range loadCorpus(f).Invalid {
		f.Add(tc.Query)
	}
	traces := fixtureTraces()
	f.Fuzz(func(t *testing.T, query string) {
		if lq, err := ParseLenient(query); err == nil && !lq.IsMetrics() {
			for _, td := range traces {
				lq.EvalTrace(td)
			}
		}
		q, err := Parse(query)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Col < 1 {
				t.Fatalf("bad error for %q: %v", query, err)
			}
			return
		}
		s := q.String()
		again, err := Parse(s)
		if err != nil {
			t.Fatalf("String() of %q is %q which does not parse: %v", query, s, err)
		}
		if again.String() != s {
			t.Fatalf("round trip of %q: %q -> %q", query, s, again.String())
		}
		h := q.Hints()
		if q.IsMetrics() {
			req := MetricsRequest{Start: t0, End: t0.Add(30 * time.Second), Step: 10 * time.Second, Exemplars: 3}
			if _, err := q.EvalMetrics(req, fixtureSeq()); err != nil && !errors.Is(err, ErrTooManySeries) {
				t.Fatalf("EvalMetrics(%q): %v", query, err)
			}
		} else {
			for _, td := range traces {
				if len(q.EvalTrace(td)) > 0 && !h.MayMatch(Summarize(td)) {
					t.Fatalf("hints %+v of %q skip a matching trace", h, query)
				}
			}
		}
	})
}

// Parentheses nested past maxNesting are refused at once with the position
// of the "(" that goes too deep, instead of a parse whose time grows with
// the cube of the depth; as deep as allowed still parses.
func TestParseRefusesDeepNesting(t *testing.T) {
	deep := strings.Repeat("(", maxNesting+1) + "{}" + strings.Repeat(")", maxNesting+1)
	for _, parse := range []func(string) (*Query, error){Parse, ParseLenient} {
		_, err := parse(strings.Repeat("(", 2400))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Col != maxNesting+1 || !strings.Contains(pe.Msg, "nest") {
			t.Errorf("2400 open parentheses: got %v, want a parse error at col %d about nesting", err, maxNesting+1)
		}
		if _, err := parse(deep); !errors.As(err, &pe) {
			t.Errorf("%d levels: got %v, want a parse error", maxNesting+1, err)
		}
	}
	ok := strings.Repeat("(", maxNesting) + "{ .a = 1 }" + strings.Repeat(")", maxNesting)
	if _, err := Parse(ok); err != nil {
		t.Errorf("%d levels: %v", maxNesting, err)
	}
}
