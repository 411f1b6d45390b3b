package traceql

import (
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// splitTrace puts each ResourceSpans of td into its own Traces, as blocks
// holding parts of one trace would.
func splitTrace(td ptrace.Traces) []ptrace.Traces {
	var out []ptrace.Traces
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		part := ptrace.NewTraces()
		td.ResourceSpans().At(i).CopyTo(part.ResourceSpans().AppendEmpty())
		out = append(out, part)
	}
	return out
}

func spanNames(sets []Spanset) []string {
	var names []string
	for _, ss := range sets {
		for _, s := range ss.Spans {
			names = append(names, s.Span.Name())
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestSpanLocal checks the promise SpanLocal makes to the store: evaluating
// the parts of a trace separately finds the same spans as the whole trace.
func TestSpanLocal(t *testing.T) {
	traces := fixtureTraces()
	local := 0
	for _, tc := range evalCases {
		q, err := Parse(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if !q.SpanLocal() {
			continue
		}
		local++
		for name, td := range traces {
			var parts []Spanset
			for _, p := range splitTrace(td) {
				parts = append(parts, q.EvalTrace(p)...)
			}
			if whole, split := spanNames(q.EvalTrace(td)), spanNames(parts); !slices.Equal(whole, split) {
				t.Errorf("%s on trace %s: whole %v, parts %v", tc.q, name, whole, split)
			}
		}
	}
	if local < 50 {
		t.Errorf("only %d of the evaluation cases are span-local", local)
	}
	for q, want := range map[string]bool{
		`{ name = "a" }`: true, `{ .a = 1 } || { .b = 2 }`: true, `{ .a = 1 } | select(.b)`: true,
		`{ status = error } | rate() by(resource.service.name)`: true,
		`{ .a = 1 } && { .b = 2 }`:                              false, `{ } > { }`: false, `{ rootName = "x" }`: false,
		`{ } | count() > 1`: false, `{ } | by(name)`: false, `{ } | rate() by(rootServiceName)`: false,
		`{ } | compare({ status = error })`: false, `({} | rate()) / ({ traceDuration > 1s } | rate())`: false,
	} {
		parsed, err := Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		if parsed.SpanLocal() != want {
			t.Errorf("%s: SpanLocal = %v, want %v", q, !want, want)
		}
	}
}

// TestMatchesAll checks the promise MatchesAll makes to the store: such a query
// matches every trace with one spanset of all its spans, in trace order, without
// attributes.
func TestMatchesAll(t *testing.T) {
	for q, want := range map[string]bool{
		`{}`: true, `{ }`: true, `{ true }`: false, `{} | select(span.foo)`: false,
		`{} >> {}`: false, `{} | count() > 0`: false, `{ duration > 0 }`: false,
	} {
		pq, err := Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		if got := pq.MatchesAll(); got != want {
			t.Errorf("%s: MatchesAll() = %v, want %v", q, got, want)
		}
		if !want {
			continue
		}
		for name, td := range fixtureTraces() {
			sets := pq.EvalTrace(td)
			if len(sets) != 1 || len(sets[0].Attributes) != 0 || len(sets[0].Spans) != td.SpanCount() {
				t.Fatalf("%s on trace %s: %d spansets, want 1 of all %d spans", q, name, len(sets), td.SpanCount())
			}
			k := 0
			for _, rs := range td.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, sp := range ss.Spans().All() {
						got := sets[0].Spans[k]
						if got.Span != sp || len(got.Selected) != 0 {
							t.Fatalf("%s on trace %s: span %d is %q with %d attributes, want %q with none",
								q, name, k, got.Span.Name(), len(got.Selected), sp.Name())
						}
						k++
					}
				}
			}
		}
	}
}
