package spanrow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// marshalRequest is what an SDK sends for td.
func marshalRequest(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// viaPdata is the path FromProto must agree with.
func viaPdata(req []byte) ([]Span, error) {
	r := ptraceotlp.NewExportRequest()
	if err := r.UnmarshalProto(req); err != nil {
		return nil, err
	}
	return FromTraces(r.Traces(), nil)
}

// loadRequest builds one request as bench/traces does (with traces = 100): traces of 10
// spans, 5 in svc-a (a server span with HTTP attributes, two internal
// spans, a redis client span, an HTTP client span) and 5 in svc-b (a server
// span and four PostgreSQL client spans).
func loadRequest(n, traces int) ptrace.Traces {
	td := ptrace.NewTraces()
	svc := func(name string) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		a := rs.Resource().Attributes()
		a.PutStr("service.name", name)
		a.PutStr("service.version", "1.4.2")
		a.PutStr("deployment.environment", "prod")
		a.PutStr("host.name", name+"-7f9c6d5b8-x2kqp")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("github.com/example/" + name)
		return ss.Spans()
	}
	a, b := svc("svc-a"), svc("svc-b")
	routes := []string{"/api/orders/{id}", "/api/users/{id}", "/api/cart", "/api/search", "/healthz"}
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for t := range traces {
		rng := rand.New(rand.NewPCG(uint64(n), uint64(t)))
		var tid pcommon.TraceID
		binary.LittleEndian.PutUint64(tid[:], rng.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], uint64(n*100+t+1))
		var ids [10]pcommon.SpanID
		for i := range ids {
			binary.LittleEndian.PutUint64(ids[i][:], rng.Uint64()|1)
		}
		route, method := routes[t%len(routes)], "GET"
		if t%4 == 0 {
			method = "POST"
		}
		add := func(ss ptrace.SpanSlice, i, parent int, name string, kind ptrace.SpanKind) ptrace.Span {
			s := ss.AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(ids[i])
			if parent >= 0 {
				s.SetParentSpanID(ids[parent])
			}
			s.SetName(name)
			s.SetKind(kind)
			st := start.Add(time.Duration(rng.IntN(1e9)))
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(rng.IntN(5e7)))))
			return s
		}
		http := func(s ptrace.Span) {
			s.Attributes().PutStr("http.method", method)
			s.Attributes().PutStr("http.route", route)
			s.Attributes().PutInt("http.status_code", 200)
		}
		http(add(a, 0, -1, method+" "+route, ptrace.SpanKindServer))
		add(a, 1, 0, "authenticate", ptrace.SpanKindInternal)
		add(a, 2, 0, "render", ptrace.SpanKindInternal)
		c := add(a, 3, 0, "GET", ptrace.SpanKindClient)
		c.Attributes().PutStr("db.system", "redis")
		c.Attributes().PutStr("db.operation", "GET")
		call := add(a, 4, 0, method, ptrace.SpanKindClient)
		http(call)
		call.Attributes().PutStr("server.address", "svc-b")
		srv := add(b, 5, 4, method+" "+route, ptrace.SpanKindServer)
		http(srv)
		if t == 7 {
			srv.Status().SetCode(ptrace.StatusCodeError)
			srv.Status().SetMessage("upstream timeout")
		}
		for i := 6; i < 10; i++ {
			q := add(b, i, 5, "SELECT orders", ptrace.SpanKindClient)
			q.Attributes().PutStr("db.system", "postgresql")
			q.Attributes().PutStr("db.name", "shop")
			q.Attributes().PutStr("db.statement", "SELECT id, total FROM orders WHERE user_id = $1")
		}
	}
	return td
}

// variedTraces uses every part of OTLP a row keeps, with the values that
// are easy to get wrong: empty ones, extremes, nesting, several resources
// and scopes of several services.
func variedTraces() ptrace.Traces {
	td := sampleTraces()
	for r := range 3 {
		rs := td.ResourceSpans().AppendEmpty()
		if r != 1 {
			rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("tenant-%d", r))
		}
		rs.Resource().Attributes().PutEmptyBytes("empty-bytes")
		rs.Resource().Attributes().PutEmptySlice("empty-slice")
		rs.Resource().Attributes().PutEmptyMap("empty-map")
		rs.Resource().Attributes().PutStr("", "")
		rs.SetSchemaUrl(fmt.Sprint("schema-", r))
		for s := range r + 1 {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.SetSchemaUrl("scope-schema")
			ss.Scope().SetName(fmt.Sprint("scope-", s))
			ss.Scope().SetDroppedAttributesCount(uint32(s))
			for k := range 3 {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(pcommon.TraceID{byte(r), 1, byte(s), byte(k)})
				sp.SetSpanID(pcommon.SpanID{byte(k + 1)})
				sp.SetName([]string{"a", "", "a"}[k])
				sp.SetKind(ptrace.SpanKind(k))
				sp.SetStartTimestamp(math.MaxUint64 - pcommon.Timestamp(k))
				sp.SetEndTimestamp(math.MaxUint64 - 1)
				sp.SetFlags(uint32(0x1ff * k))
				sp.TraceState().FromRaw([]string{"", "k=v", "k=v"}[k])
				sp.Status().SetCode(ptrace.StatusCode(k))
				a := sp.Attributes()
				a.PutDouble("nan", math.NaN())
				a.PutDouble("-inf", math.Inf(-1))
				a.PutInt("min", math.MinInt64)
				a.PutBool("f", false)
				a.PutStr("utf8", "naïve ☃")
				sl := a.PutEmptySlice("deep")
				for range 5 {
					sl = sl.AppendEmpty().SetEmptyMap().PutEmptySlice("x")
					sl.AppendEmpty().SetEmptyBytes().FromRaw([]byte{0xff, 0})
					sl.AppendEmpty()
				}
				if k == 2 {
					ev := sp.Events().AppendEmpty()
					ev.SetDroppedAttributesCount(9)
					sp.Events().AppendEmpty().Attributes().PutEmpty("e")
					ln := sp.Links().AppendEmpty()
					ln.SetFlags(1)
					ln.TraceState().FromRaw("l=1")
					ln.SetDroppedAttributesCount(4)
				}
				if k == 1 {
					sp.SetDroppedEventsCount(1) // extras without events or links
				}
			}
		}
	}
	return td
}

// Wire building for forms pdata never marshals but reads.
func tagBytes(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func tagVarint(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func kv(key string, value []byte) []byte {
	return tagBytes(tagBytes(nil, pKVKey, []byte(key)), pKVValue, value)
}

func strValue(s string) []byte { return tagBytes(nil, fStr, []byte(s)) }

func wrapSpans(spans ...[]byte) []byte {
	var ss, rs []byte
	for _, sp := range spans {
		ss = tagBytes(ss, pSSSpans, sp)
	}
	rs = tagBytes(rs, pRSScopeSpans, ss)
	return tagBytes(nil, pReqResourceSpans, rs)
}

func ids(b []byte) []byte {
	b = tagBytes(b, pSpanTraceID, bytes.Repeat([]byte{7}, 16))
	return tagBytes(b, pSpanSpanID, bytes.Repeat([]byte{8}, 8))
}

// wireForms are requests in forms that pdata reads and FromProto must read
// too: fields out of order, repeated fields interleaved with others,
// unknown fields everywhere, Status's deprecated code, entity refs.
func wireForms() map[string][]byte {
	unknown := func(b []byte) []byte {
		b = tagVarint(b, 99, 1<<63)
		b = protowire.AppendFixed32(protowire.AppendTag(b, 98, protowire.Fixed32Type), 5)
		b = protowire.AppendFixed64(protowire.AppendTag(b, 97, protowire.Fixed64Type), 5)
		return tagBytes(b, 96, []byte("x"))
	}
	span := ids(nil)
	span = tagBytes(span, pSpanAttributes, kv("a", strValue("1")))
	span = tagBytes(span, pSpanName, []byte("interleaved"))
	span = tagBytes(span, pSpanEvents, tagVarint(tagBytes(nil, pEventName, []byte("e1")), pEventDropped, 1<<32|0x12345))
	span = tagBytes(span, pSpanAttributes, unknown(kv("b", unknown(tagVarint(nil, fInt, 5)))))
	span = tagBytes(span, pSpanLinks, tagVarint(tagBytes(nil, pLinkAttributes, kv("l", nil)), pLinkDropped, 1<<40|0x12345))
	span = tagVarint(span, pSpanDroppedLinks, 1<<32|0x12347)
	span = tagBytes(span, pSpanEvents, tagBytes(tagBytes(nil, pEventAttributes, kv("x", nil)), pEventName, []byte("e2")))
	span = tagBytes(span, pSpanAttributes, tagBytes(nil, pKVValue, tagBytes(nil, fKvlist, unknown(tagBytes(nil, pListValues, kv("k", nil))))))
	span = tagBytes(span, pSpanAttributes, kv("arr", tagBytes(nil, fArray, unknown(tagBytes(tagBytes(nil, pListValues, nil), pListValues, strValue("v"))))))
	span = tagBytes(span, pSpanStatus, tagVarint(tagVarint(nil, 1, 2), pStatusCode, 1<<40|0x10002))
	span = tagVarint(span, pSpanKind, 1<<33|0x1003)
	span = tagVarint(span, pSpanDroppedAttrs, 1<<32) // truncates to 0: no extras for this
	span = unknown(span)

	var res []byte
	res = tagBytes(res, pResAttributes, kv("service.name", strValue("first")))
	res = tagBytes(res, pResEntityRefs, tagBytes(tagBytes(nil, 3, []byte("id")), 3, []byte("id2")))
	res = tagBytes(res, pResAttributes, kv("service.name", tagVarint(nil, fInt, 1)))
	res = tagVarint(res, pResDropped, 1<<32|1)
	var scope []byte
	scope = tagBytes(scope, pScopeAttributes, kv("s", nil))
	scope = tagVarint(scope, pScopeDropped, 1<<35|3)
	scope = tagBytes(scope, pScopeName, []byte("late name"))
	var ss []byte
	ss = tagBytes(ss, pSSSpans, span)
	ss = tagBytes(ss, pSSSchemaURL, []byte("ss-schema"))
	ss = unknown(ss)
	ss = tagBytes(ss, pSSSpans, ids(nil))
	ss = tagBytes(ss, pSSScope, scope)
	var rs []byte
	rs = tagBytes(rs, pRSScopeSpans, ss)
	rs = tagBytes(rs, pRSSchemaURL, []byte("rs-schema"))
	rs = tagBytes(rs, pRSScopeSpans, tagBytes(nil, pSSSpans, ids(nil)))
	rs = unknown(rs)
	rs = tagBytes(rs, pRSResource, res)
	req := unknown(tagBytes(nil, pReqResourceSpans, rs))
	req = tagBytes(req, pReqResourceSpans, nil) // a resource without spans
	long := ids(nil)
	// varints written longer than needed, as some encoders do
	long = append(long, byte(pSpanKind<<3), 0x82, 0x80, 0x80, 0)
	long = append(long, byte(pSpanName<<3|2)|0x80, 0, 1, 'n')
	return map[string][]byte{
		"interleaved":     req,
		"padded varints":  wrapSpans(long),
		"only IDs":        wrapSpans(ids(nil)),
		"empty request":   nil,
		"unknown request": unknown(nil),
	}
}

// refused are requests FromProto must leave to pdata (some of which pdata
// reads, some of which it refuses).
func refused() map[string][]byte {
	dup := ids(nil)
	dup = tagBytes(dup, pSpanName, []byte("a"))
	dup = tagBytes(dup, pSpanName, []byte("b"))
	twoMembers := ids(tagBytes(nil, pSpanAttributes, kv("a", tagVarint(strValue("s"), fInt, 1))))
	group := ids(protowire.AppendTag(protowire.AppendTag(nil, 50, protowire.StartGroupType), 50, protowire.EndGroupType))
	deprecated := tagBytes(nil, pReqResourceSpans, tagBytes(nil, pRSDeprecated, tagBytes(nil, pSSSpans, ids(nil))))
	zeroID := tagBytes(tagBytes(nil, pSpanTraceID, make([]byte, 16)), pSpanSpanID, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	strindex := ids(tagBytes(nil, pSpanAttributes, tagVarint(kv("a", nil), pKVStrindex, 1)))
	nonStringService := tagBytes(nil, pReqResourceSpans, tagBytes(
		tagBytes(nil, pRSResource, tagBytes(nil, pResAttributes, kv("service.name", tagVarint(nil, fInt, 1)))),
		pRSScopeSpans, tagBytes(nil, pSSSpans, ids(nil))))
	deep := strValue("leaf")
	for range maxDepth + 1 {
		deep = tagBytes(nil, fArray, tagBytes(nil, pListValues, deep))
	}
	return map[string][]byte{
		"name twice":          wrapSpans(dup),
		"two oneof members":   wrapSpans(twoMembers),
		"group":               wrapSpans(group),
		"deprecated scopes":   deprecated,
		"no IDs":              wrapSpans(tagBytes(nil, pSpanName, []byte("x"))),
		"zero trace ID":       wrapSpans(zeroID),
		"short span ID":       wrapSpans(tagBytes(ids(nil), pSpanSpanID, []byte{1})),
		"key_strindex":        wrapSpans(strindex),
		"non-string service":  nonStringService,
		"too deep":            wrapSpans(ids(tagBytes(nil, pSpanAttributes, kv("d", deep)))),
		"big field number":    wrapSpans(ids(tagVarint(nil, protowire.MaxValidNumber+1, 0))),
		"varint past 64 bits": append(wrapSpans(ids(nil)), 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"truncated":           wrapSpans(ids(nil))[:20],
		"wrong wire type":     wrapSpans(tagVarint(ids(nil), pSpanName, 1)),
	}
}

func wellFormed(t testing.TB) map[string][]byte {
	reqs := wireForms()
	reqs["sample"] = marshalRequest(t, sampleTraces())
	reqs["varied"] = marshalRequest(t, variedTraces())
	reqs["load"] = marshalRequest(t, loadRequest(0, 100))
	return reqs
}

// checkAgainstPdata is the fuzz property: rows FromProto gives are those
// of the pdata path.
func checkAgainstPdata(t *testing.T, req []byte) (fast bool) {
	t.Helper()
	got, err := FromProto(req, 0, nil)
	if err != nil {
		if !errors.Is(err, ErrLeaveToPdata) {
			t.Fatalf("error does not wrap ErrLeaveToPdata: %v", err)
		}
		return false
	}
	want, err := viaPdata(req)
	if err != nil {
		t.Fatalf("FromProto read a request the pdata path refuses (%v)", err)
	}
	if !reflect.DeepEqual(got, want) {
		for i := range min(len(got), len(want)) {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("row %d of %d differs:\ngot  %+v\nwant %+v", i, len(want), got[i], want[i])
			}
		}
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	// A count from the caller only sizes the rows, right or wrong.
	for _, spans := range []int{len(want), 1, 2*len(want) + 1} {
		again, err := FromProto(req, spans, nil)
		if same := len(again) == 0 && len(want) == 0 || reflect.DeepEqual(again, want); err != nil || !same {
			t.Fatalf("with a span count of %d (the request has %d): err %v, same rows %v", spans, len(want), err, same)
		}
	}
	return true
}

// TestFromProtoTakesTheFastPath holds FromProto to reading what SDKs and
// other encoders send, not leaving it to pdata.
func TestFromProtoTakesTheFastPath(t *testing.T) {
	for name, req := range wellFormed(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := viaPdata(req); err != nil {
				t.Fatalf("the test's request is bad: %v", err)
			}
			if !checkAgainstPdata(t, req) {
				_, err := FromProto(req, 0, nil)
				t.Fatalf("left to pdata: %v", err)
			}
		})
	}
}

func TestFromProtoLeavesUnusualFormsToPdata(t *testing.T) {
	for name, req := range refused() {
		t.Run(name, func(t *testing.T) {
			prefix := []Span{{Name: "kept"}}
			got, err := FromProto(req, 0, prefix)
			if !errors.Is(err, ErrLeaveToPdata) {
				t.Fatalf("err = %v, want ErrLeaveToPdata", err)
			}
			if len(got) != 1 || got[0].Name != "kept" {
				t.Fatalf("dst changed on error: %+v", got)
			}
		})
	}
}

func TestFromProtoAppendsToDst(t *testing.T) {
	req := marshalRequest(t, sampleTraces())
	want, err := viaPdata(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromProto(req, 0, []Span{{Name: "before"}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Name != "before" || !reflect.DeepEqual(got[1:], want) {
		t.Fatalf("got %+v", got)
	}
}

// TestFromProtoKeepsNoReferenceToReq: the caller reuses the request's buffer.
func TestFromProtoKeepsNoReferenceToReq(t *testing.T) {
	for name, req := range wellFormed(t) {
		want, err := viaPdata(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := bytes.Clone(req)
		got, err := FromProto(buf, 0, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range buf {
			buf[i] = 0xa5
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: rows changed when the request's buffer was overwritten", name)
		}
	}
}

// TestFromProtoInternsStrings: repeated names share one string and the
// blobs of a request take a handful of allocations, not some per span.
func TestFromProtoInternsStrings(t *testing.T) {
	req := marshalRequest(t, loadRequest(0, 100))
	rows, err := FromProto(req, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]*byte{}
	for _, r := range rows {
		for _, s := range []string{r.Name, r.Service} {
			if p, ok := names[s]; ok && p != unsafe.StringData(s) {
				t.Fatalf("%q is not shared", s)
			}
			names[s] = unsafe.StringData(s)
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := FromProto(req, 0, nil); err != nil {
			t.Fatal(err)
		}
	})
	// rows, arena, two resource and scope blobs, about 20 distinct strings
	if allocs > 40 {
		t.Fatalf("%v allocations for %d spans", allocs, len(rows))
	}
}

func FuzzFromProtoMatchesPdata(f *testing.F) {
	// Small inputs: the fuzzer mutates and minimizes them faster.
	seeds := wellFormed(f)
	seeds["load"] = marshalRequest(f, loadRequest(1, 2))
	for _, req := range seeds {
		f.Add(req)
		if len(req) > 10 {
			f.Add(req[:len(req)/2])
			f.Add(req[:len(req)-1])
		}
	}
	for _, req := range refused() {
		f.Add(req)
	}
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Add([]byte{0xff, 0xff, 0xff})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 6 {
		f.Add(marshalRequest(f, randomTraces(rng)))
	}
	for range 4 {
		garbage := make([]byte, 64)
		for i := range garbage {
			garbage[i] = byte(rng.Uint32())
		}
		f.Add(garbage)
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		checkAgainstPdata(t, req)
	})
}

// BenchmarkFromProto compares the two ways from a request's bytes to rows,
// on requests like bench/traces sends.
func BenchmarkFromProto(b *testing.B) {
	reqs := make([][]byte, 8)
	for i := range reqs {
		reqs[i] = marshalRequest(b, loadRequest(i, 100))
	}
	const spans = 1000
	run := func(b *testing.B, rows func([]byte) ([]Span, error)) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.ResetTimer()
		cpu0 := testpeer.CPUTime()
		for i := 0; b.Loop(); i++ {
			if _, err := rows(reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu := testpeer.CPUTime() - cpu0
		runtime.ReadMemStats(&after)
		n := float64(b.N * spans)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
		// The process's CPU, GC included: steadier than wall time on a
		// shared machine.
		b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/span")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/span")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/span")
	}
	b.Run("pdata+FromTraces", func(b *testing.B) { run(b, viaPdata) })
	b.Run("FromProto", func(b *testing.B) {
		run(b, func(req []byte) ([]Span, error) { return FromProto(req, 0, nil) })
	})
	// With the count the receiver's walk gives, as serve calls it.
	b.Run("FromProto-counted", func(b *testing.B) {
		run(b, func(req []byte) ([]Span, error) { return FromProto(req, spans, nil) })
	})
	// Without the first writes to a fresh row slice, which the store pays
	// for as long as it keeps every request's rows.
	b.Run("FromProto-reused-rows", func(b *testing.B) {
		var rows []Span
		run(b, func(req []byte) (_ []Span, err error) {
			rows, err = FromProto(req, 0, rows[:0])
			return rows, err
		})
	})
}

// randomTraces builds traces with random content of every kind a row keeps.
func randomTraces(rng *rand.Rand) ptrace.Traces {
	td := ptrace.NewTraces()
	for range rng.IntN(3) + 1 {
		rs := td.ResourceSpans().AppendEmpty()
		randomAttrs(rng, rs.Resource().Attributes(), 0)
		// FromProto leaves a service.name that is not a string to pdata.
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok || rng.IntN(3) > 0 {
			if !ok {
				v = rs.Resource().Attributes().PutEmpty("service.name")
			}
			v.SetStr(randomString(rng))
		}
		rs.Resource().SetDroppedAttributesCount(randomUint32(rng))
		rs.SetSchemaUrl(randomString(rng))
		for range rng.IntN(3) {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.SetSchemaUrl(randomString(rng))
			ss.Scope().SetName(randomString(rng))
			ss.Scope().SetVersion(randomString(rng))
			ss.Scope().SetDroppedAttributesCount(randomUint32(rng))
			randomAttrs(rng, ss.Scope().Attributes(), 0)
			for range rng.IntN(4) {
				randomSpan(rng, ss.Spans().AppendEmpty())
			}
		}
	}
	return td
}

func randomSpan(rng *rand.Rand, sp ptrace.Span) {
	var tid pcommon.TraceID
	var sid, parent pcommon.SpanID
	binary.LittleEndian.PutUint64(tid[:], rng.Uint64()|1)
	binary.LittleEndian.PutUint64(sid[:], rng.Uint64()|1)
	if rng.IntN(2) == 0 {
		binary.LittleEndian.PutUint64(parent[:], rng.Uint64())
	}
	sp.SetTraceID(tid)
	sp.SetSpanID(sid)
	sp.SetParentSpanID(parent)
	sp.SetName(randomString(rng))
	sp.SetKind(ptrace.SpanKind(rng.IntN(7) - 1))
	sp.SetStartTimestamp(pcommon.Timestamp(rng.Uint64()))
	sp.SetEndTimestamp(pcommon.Timestamp(rng.Uint64()))
	sp.SetFlags(randomUint32(rng))
	sp.TraceState().FromRaw(randomString(rng))
	sp.Status().SetCode(ptrace.StatusCode(rng.IntN(4) - 1))
	sp.Status().SetMessage(randomString(rng))
	sp.SetDroppedAttributesCount(randomUint32(rng))
	sp.SetDroppedEventsCount(randomUint32(rng))
	sp.SetDroppedLinksCount(randomUint32(rng))
	randomAttrs(rng, sp.Attributes(), 0)
	for range rng.IntN(3) {
		e := sp.Events().AppendEmpty()
		e.SetName(randomString(rng))
		e.SetTimestamp(pcommon.Timestamp(rng.Uint64()))
		e.SetDroppedAttributesCount(randomUint32(rng))
		randomAttrs(rng, e.Attributes(), 0)
	}
	for range rng.IntN(3) {
		l := sp.Links().AppendEmpty()
		if rng.IntN(2) == 0 {
			l.SetTraceID(tid)
			l.SetSpanID(parent)
		}
		l.TraceState().FromRaw(randomString(rng))
		l.SetFlags(randomUint32(rng))
		l.SetDroppedAttributesCount(randomUint32(rng))
		randomAttrs(rng, l.Attributes(), 0)
	}
}

// randomUint32 is zero half the time, as most counts are.
func randomUint32(rng *rand.Rand) uint32 {
	if rng.IntN(2) == 0 {
		return 0
	}
	return rng.Uint32() >> rng.IntN(32)
}

func randomString(rng *rand.Rand) string {
	words := []string{"", "a", "GET /api", "naïve ☃", "service.name", string([]byte{0xff, 0}), strings.Repeat("x", 200)}
	return words[rng.IntN(len(words))]
}

func randomAttrs(rng *rand.Rand, m pcommon.Map, depth int) {
	for range rng.IntN(5) {
		randomValue(rng, m.PutEmpty(randomString(rng)), depth)
	}
}

func randomValue(rng *rand.Rand, v pcommon.Value, depth int) {
	kinds := 6
	if depth < 3 {
		kinds = 8
	}
	switch rng.IntN(kinds) {
	case 0:
		v.SetStr(randomString(rng))
	case 1:
		v.SetInt(int64(rng.Uint64()) >> rng.IntN(64))
	case 2:
		v.SetDouble(math.Float64frombits(rng.Uint64()))
	case 3:
		v.SetBool(rng.IntN(2) == 0)
	case 4:
		v.SetEmptyBytes().FromRaw([]byte(randomString(rng)))
	case 5: // empty
	case 6:
		s := v.SetEmptySlice()
		for range rng.IntN(4) {
			randomValue(rng, s.AppendEmpty(), depth+1)
		}
	case 7:
		randomAttrs(rng, v.SetEmptyMap(), depth+1)
	}
}

// TestFromProtoMatchesPdataOnRandomTraces checks the fast path on what the
// byte fuzzer rarely builds: many valid requests of random content.
func TestFromProtoMatchesPdataOnRandomTraces(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fast := 0
	for range 300 {
		req := marshalRequest(t, randomTraces(rng))
		if checkAgainstPdata(t, req) {
			fast++
		} else {
			_, err := FromProto(req, 0, nil)
			t.Error(err)
		}
	}
	if fast != 300 {
		t.Fatalf("%d of 300 requests took the fast path", fast)
	}
}
