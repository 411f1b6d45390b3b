package traceql

import (
	"fmt"
	"testing"
	"time"

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
