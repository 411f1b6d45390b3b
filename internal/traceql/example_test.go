package traceql_test

import (
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traceql"
)

func exampleTrace() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1})
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetName("POST /pay")
	start := time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(250 * time.Millisecond)))
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.Attributes().PutStr("http.method", "POST")
	return td
}

// A store parses once, skips data with Hints, and evaluates whole traces.
func ExampleQuery_EvalTrace() {
	q, err := traceql.Parse(`{ resource.service.name = "checkout" && status = error } | select(span.http.method)`)
	if err != nil {
		panic(err) // a *traceql.ParseError: answer 400 with err.Error()
	}
	td := exampleTrace()
	if !q.Hints().MayMatch(traceql.Summarize(td)) {
		return // the trace (or a whole block) cannot match
	}
	for _, ss := range q.EvalTrace(td) {
		for _, s := range ss.Spans {
			fmt.Println(s.Span.Name())
			for _, a := range s.Selected {
				fmt.Printf("  %s = %s\n", a.Key, a.Value.AsString())
			}
		}
	}
	// Output:
	// POST /pay
	//   service.name = checkout
	//   status = error
	//   http.method = POST
}

func ExampleHints_MayMatch() {
	q, _ := traceql.Parse(`{ resource.service.name = "api" && duration > 1s }`)
	block := traceql.TraceSummary{
		ServiceNames:    map[string]struct{}{"checkout": {}, "web": {}},
		MaxSpanDuration: 3 * time.Second,
	}
	fmt.Println(q.Hints().MayMatch(block))
	// Output: false
}

func ExampleQuery_EvalMetrics() {
	q, _ := traceql.Parse(`{ status = error } | count_over_time() by(resource.service.name)`)
	req := traceql.MetricsRequest{
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		End:   time.Date(2026, 1, 1, 0, 0, 20, 0, time.UTC),
		Step:  10 * time.Second,
	}
	res, _ := q.EvalMetrics(req, slices.Values([]ptrace.Traces{exampleTrace()}))
	for _, s := range res.Series {
		fmt.Println(s.Labels[0].Key, s.Labels[0].Value.AsString(), s.Samples)
	}
	// Output: resource.service.name checkout [{1767225600000 0} {1767225610000 1} {1767225620000 0}]
}
