package traceql

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// benchTrace is a 10-span trace over two services, 5 attributes per span.
func benchTrace() ptrace.Traces {
	var front, back []spanSpec
	for i := 1; i <= 10; i++ {
		s := spanSpec{
			id: byte(i), parent: byte(i - 1), name: fmt.Sprintf("op-%d", i%4),
			kind: ptrace.SpanKindServer, start: time.Duration(i) * ms, end: time.Duration(i*15) * ms,
			attrs: map[string]any{"http.method": "GET", "http.route": "/api/v1/items", "http.status_code": 200 + i,
				"net.peer.name": "10.0.0.1", "component": "http"},
		}
		if i == 7 {
			s.status = ptrace.StatusCodeError
			s.attrs["http.method"] = "POST"
		}
		if i <= 5 {
			front = append(front, s)
		} else {
			back = append(back, s)
		}
	}
	return buildTrace(traceIDA, t0,
		resSpec{service: "frontend", attrs: map[string]any{"host.name": "a"}, scopes: []scopeSpec{{name: "x", spans: front}}},
		resSpec{service: "backend", attrs: map[string]any{"host.name": "b"}, scopes: []scopeSpec{{name: "x", spans: back}}},
	)
}

func BenchmarkEvalTrace(b *testing.B) {
	td := benchTrace()
	for _, bc := range []struct{ name, q string }{
		{"nomatch", `{ resource.service.name = "nope" && span.http.method = "GET" }`},
		{"selective", `{ resource.service.name = "backend" && span.http.method = "POST" }`},
		{"broad", `{}`},
		{"duration_status", `{ duration > 50ms && status = error }`},
		{"regex", `{ span.http.route =~ "/api/v1/.*" && span.http.status_code >= 205 }`},
		{"structural", `{ resource.service.name = "frontend" } >> { status = error }`},
		{"pipeline", `{ } | by(resource.service.name) | count() > 2`},
	} {
		q, err := Parse(bc.q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				q.EvalTrace(td)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10, "ns/span")
		})
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(`{ resource.service.name = "x" && name = "y" && status = error && duration > 100ms } | count() > 2`); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvalMetrics feeds 1000 ten-span traces spread over an hour.
func BenchmarkEvalMetrics(b *testing.B) {
	base := benchTrace()
	traces := make([]ptrace.Traces, 1000)
	for i := range traces {
		td := ptrace.NewTraces()
		base.CopyTo(td)
		shift := time.Duration(i) * 3600 * time.Second / 1000
		rss := td.ResourceSpans()
		for r := 0; r < rss.Len(); r++ {
			spans := rss.At(r).ScopeSpans().At(0).Spans()
			for s := 0; s < spans.Len(); s++ {
				sp := spans.At(s)
				sp.SetStartTimestamp(sp.StartTimestamp() + pcommonTS(shift))
				sp.SetEndTimestamp(sp.EndTimestamp() + pcommonTS(shift))
			}
		}
		traces[i] = td
	}
	req := MetricsRequest{Start: t0, End: t0.Add(time.Hour), Step: time.Minute, Exemplars: 100}
	for _, bc := range []struct{ name, q string }{
		{"rate_by_service", `{} | rate() by(resource.service.name)`},
		{"errors_rate", `{ status = error } | rate()`},
		{"quantile_by_name", `{} | quantile_over_time(duration, .5, .9, .99) by(name)`},
		{"compare", `{} | compare({ status = error })`},
	} {
		q, err := Parse(bc.q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.EvalMetrics(req, slices.Values(traces)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/span")
		})
	}
}

func pcommonTS(d time.Duration) pcommon.Timestamp { return pcommon.Timestamp(d) }

// chainTrace is a pathological trace: n spans, each the child of the previous one.
func chainTrace(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < n; i++ {
		sp := spans.AppendEmpty()
		sp.SetSpanID(pcommon.SpanID{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 1})
		if i > 0 {
			sp.SetParentSpanID(pcommon.SpanID{byte((i - 1) >> 24), byte((i - 1) >> 16), byte((i - 1) >> 8), byte(i - 1), 1})
		}
		sp.SetName(fmt.Sprintf("s%d", i%7))
	}
	return td
}

func BenchmarkStructuralDeepTrace(b *testing.B) {
	td := chainTrace(10000)
	for _, q := range []string{`{ name = "s1" } >> { name = "s2" }`, `{ name = "s1" } << { name = "s2" }`, `{ name = "s1" } ~ { }`, `{ } !>> { name = "s3" }`} {
		parsed, err := Parse(q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				parsed.EvalTrace(td)
			}
		})
	}
}
