package traceql

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Hand-built traces used by the evaluation tests.
//
// Trace A (frontend -> api -> db), t0 = 2026-01-01T00:00:00Z:
//
//	GET /        frontend server  [0,100ms]   http.method=GET http.status_code=200
//	 call api    frontend client  [5,85ms]    peer.service=api
//	  handle     api      server  [10,80ms]   status=error "boom", http.method=POST, tags=[a,b], event "exception"
//	   SELECT    db       client  [20,40ms]   db.system=postgresql db.rows=42 ratio=0.5 cached=true
//	   INSERT    db       client  [45,75ms]   link -> trace B / consume (link.kind=follows)
//
// Trace B (api only), t0 + 10s:
//
//	consume      api consumer [0,5ms]      status=ok, scope kafka-lib 1.2.3 (lib.lang=go)
//	 process     api internal [5ms,1005ms] http.method=GET, "my attr"=1, quote=`say "hi"`
//
// Trace C (frontend), t0 + 20s:
//
//	GET /health  frontend server [0,1ms]
var (
	t0       = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	traceIDA = pcommon.TraceID{0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa}
	traceIDB = pcommon.TraceID{0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb}
	traceIDC = pcommon.TraceID{0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc, 0xc}
)

func sid(b byte) pcommon.SpanID { return pcommon.SpanID{b, b, b, b, b, b, b, b} }

type spanSpec struct {
	id, parent byte
	name       string
	kind       ptrace.SpanKind
	start, end time.Duration
	status     ptrace.StatusCode
	msg        string
	attrs      map[string]any
	edit       func(ptrace.Span)
}

type scopeSpec struct {
	name, version string
	attrs         map[string]any
	spans         []spanSpec
}

type resSpec struct {
	service string
	attrs   map[string]any
	scopes  []scopeSpec
}

func buildTrace(id pcommon.TraceID, base time.Time, res ...resSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, r := range res {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", r.service)
		_ = rs.Resource().Attributes().FromRaw(mergeAttrs(map[string]any{"service.name": r.service}, r.attrs))
		for _, sc := range r.scopes {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(sc.name)
			ss.Scope().SetVersion(sc.version)
			_ = ss.Scope().Attributes().FromRaw(sc.attrs)
			for _, s := range sc.spans {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(id)
				sp.SetSpanID(sid(s.id))
				if s.parent != 0 {
					sp.SetParentSpanID(sid(s.parent))
				}
				sp.SetName(s.name)
				sp.SetKind(s.kind)
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(s.start)))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(s.end)))
				sp.Status().SetCode(s.status)
				sp.Status().SetMessage(s.msg)
				_ = sp.Attributes().FromRaw(s.attrs)
				if s.edit != nil {
					s.edit(sp)
				}
			}
		}
	}
	return td
}

func mergeAttrs(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

const ms = time.Millisecond

func fixtureTraces() map[string]ptrace.Traces {
	a := buildTrace(traceIDA, t0,
		resSpec{service: "frontend", attrs: map[string]any{"deployment.env": "prod"}, scopes: []scopeSpec{{name: "http", spans: []spanSpec{
			{id: 1, name: "GET /", kind: ptrace.SpanKindServer, start: 0, end: 100 * ms,
				attrs: map[string]any{"http.method": "GET", "http.status_code": 200}},
			{id: 2, parent: 1, name: "call api", kind: ptrace.SpanKindClient, start: 5 * ms, end: 85 * ms,
				attrs: map[string]any{"peer.service": "api"}},
		}}}},
		resSpec{service: "api", scopes: []scopeSpec{{name: "http", spans: []spanSpec{
			{id: 3, parent: 2, name: "handle", kind: ptrace.SpanKindServer, start: 10 * ms, end: 80 * ms,
				status: ptrace.StatusCodeError, msg: "boom",
				attrs: map[string]any{"http.method": "POST", "tags": []any{"a", "b"}},
				edit: func(sp ptrace.Span) {
					ev := sp.Events().AppendEmpty()
					ev.SetName("exception")
					ev.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(15 * ms)))
					ev.Attributes().PutStr("exception.message", "nil pointer")
				}},
		}}}},
		resSpec{service: "db", scopes: []scopeSpec{{name: "sql", spans: []spanSpec{
			{id: 4, parent: 3, name: "SELECT", kind: ptrace.SpanKindClient, start: 20 * ms, end: 40 * ms,
				attrs: map[string]any{"db.system": "postgresql", "db.rows": 42, "ratio": 0.5, "cached": true}},
			{id: 5, parent: 3, name: "INSERT", kind: ptrace.SpanKindClient, start: 45 * ms, end: 75 * ms,
				edit: func(sp ptrace.Span) {
					l := sp.Links().AppendEmpty()
					l.SetTraceID(traceIDB)
					l.SetSpanID(sid(0x21))
					l.Attributes().PutStr("link.kind", "follows")
				}},
		}}}},
	)
	tb := t0.Add(10 * time.Second)
	b := buildTrace(traceIDB, tb,
		resSpec{service: "api", scopes: []scopeSpec{
			{name: "kafka-lib", version: "1.2.3", attrs: map[string]any{"lib.lang": "go"}, spans: []spanSpec{
				{id: 0x21, name: "consume", kind: ptrace.SpanKindConsumer, start: 0, end: 5 * ms, status: ptrace.StatusCodeOk},
			}},
			{name: "app", spans: []spanSpec{
				{id: 0x22, parent: 0x21, name: "process", kind: ptrace.SpanKindInternal, start: 5 * ms, end: 1005 * ms,
					attrs: map[string]any{"http.method": "GET", "my attr": 1, "quote": `say "hi"`}},
			}},
		}},
	)
	c := buildTrace(traceIDC, t0.Add(20*time.Second),
		resSpec{service: "frontend", scopes: []scopeSpec{{name: "http", spans: []spanSpec{
			{id: 0x31, name: "GET /health", kind: ptrace.SpanKindServer, start: 0, end: 1 * ms},
		}}}},
	)
	return map[string]ptrace.Traces{"A": a, "B": b, "C": c}
}
