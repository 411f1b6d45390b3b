package generator

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// spanSpec describes one hand-built span.
type spanSpec struct {
	service, name string
	kind          ptrace.SpanKind
	trace         [16]byte
	id, parent    [8]byte
	start         time.Time
	dur           time.Duration
	failed        bool
	attrs         map[string]string
}

// build groups specs into one resource per service, in order of appearance.
func build(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, s := range specs {
		spans, ok := bySvc[s.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.service)
			spans = rs.ScopeSpans().AppendEmpty().Spans()
			bySvc[s.service] = spans
		}
		sp := spans.AppendEmpty()
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.SetTraceID(s.trace)
		sp.SetSpanID(s.id)
		sp.SetParentSpanID(s.parent)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.start.Add(s.dur)))
		if s.failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage("payment declined")
		}
		for k, v := range s.attrs {
			sp.Attributes().PutStr(k, v)
		}
	}
	return td
}

func traceID(i int) [16]byte { return [16]byte{0: 0xab, 14: byte(i >> 8), 15: byte(i)} }

func spanID(i, n int) [8]byte { return [8]byte{0: 0xcd, 5: byte(i >> 8), 6: byte(i), 7: byte(n)} }

// checkout returns the spans of request i through three services: an HTTP
// server in frontend calling payments, which queries a database and
// publishes to a queue that notifier consumes. Requests 0 and 1 fail in
// payments. The frontend server span takes (i+1)*10ms.
func checkout(i int, at time.Time) []spanSpec {
	tid := traceID(i)
	feServer, feClient := spanID(i, 1), spanID(i, 2)
	payServer, payDB, payProduce := spanID(i, 3), spanID(i, 4), spanID(i, 5)
	notify := spanID(i, 6)
	return []spanSpec{
		{service: "frontend", name: "GET /checkout", kind: ptrace.SpanKindServer, trace: tid, id: feServer,
			start: at, dur: time.Duration(i+1) * 10 * time.Millisecond},
		{service: "frontend", name: "POST /pay", kind: ptrace.SpanKindClient, trace: tid, id: feClient, parent: feServer,
			start: at.Add(time.Millisecond), dur: 8 * time.Millisecond},
		{service: "payments", name: "POST /pay", kind: ptrace.SpanKindServer, trace: tid, id: payServer, parent: feClient,
			start: at.Add(2 * time.Millisecond), dur: 6 * time.Millisecond, failed: i < 2},
		{service: "payments", name: "SELECT orders", kind: ptrace.SpanKindClient, trace: tid, id: payDB, parent: payServer,
			start: at.Add(3 * time.Millisecond), dur: 2 * time.Millisecond,
			attrs: map[string]string{"db.system": "postgresql", "db.name": "orders"}},
		{service: "payments", name: "payment.done publish", kind: ptrace.SpanKindProducer, trace: tid, id: payProduce, parent: payServer,
			start: at.Add(5 * time.Millisecond), dur: time.Millisecond,
			attrs: map[string]string{"messaging.system": "kafka"}},
		{service: "notifier", name: "payment.done process", kind: ptrace.SpanKindConsumer, trace: tid, id: notify, parent: payProduce,
			start: at.Add(20 * time.Millisecond), dur: 3 * time.Millisecond},
	}
}
