package traceql

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Malformed traces (parent cycles, self parents, duplicate IDs, no spans)
// must not hang or panic any operator.
func TestMalformedTraces(t *testing.T) {
	cyc := ptrace.NewTraces()
	spans := cyc.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i, p := range []byte{2, 1, 3, 3} { // 1<->2 cycle, 3 is its own parent, duplicate id 3
		sp := spans.AppendEmpty()
		id := byte(i + 1)
		if i == 3 {
			id = 3
		}
		sp.SetSpanID(pcommon.SpanID{id})
		sp.SetParentSpanID(pcommon.SpanID{p})
		sp.SetName("x")
	}
	queries := []string{
		`{} >> {}`, `{} << {}`, `{} > {}`, `{} < {}`, `{} ~ {}`, `{} &>> {}`, `{} &<< {}`, `{} !>> {}`,
		`{ nestedSetParent < 0 }`, `{ span:childCount > 0 }`, `{ rootName = "x" }`, `{ traceDuration > 0 }`,
		`{} | by(name) | coalesce()`,
	}
	for _, q := range queries {
		parsed, err := Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		parsed.EvalTrace(cyc)
		if got := parsed.EvalTrace(ptrace.NewTraces()); got != nil {
			t.Errorf("%s on an empty trace returned %v", q, got)
		}
	}
	// A span cannot be its own ancestor even in a cycle-free view of the data.
	q, _ := Parse(`{} >> {}`)
	for _, ss := range q.EvalTrace(cyc) {
		if len(ss.Spans) > 4 {
			t.Errorf("duplicated spans: %d", len(ss.Spans))
		}
	}
}
