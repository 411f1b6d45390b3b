package otlp

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// telemetrygenTraces has the shape of telemetrygen's traces: a resource with
// service.name, a scope, a parent and child span per trace, with
// attributes, an event, a link and a status; plus one attribute of every
// value type.
func telemetrygenTraces(traces int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.4.0")
	rs.Resource().Attributes().PutStr("service.name", "telemetrygen")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("telemetrygen")
	ss.Scope().SetVersion("0.1")
	now := time.Unix(1_700_000_000, 0)
	for i := range traces {
		tid := pcommon.TraceID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
		parent := ss.Spans().AppendEmpty()
		parent.SetTraceID(tid)
		parent.SetSpanID(pcommon.SpanID{byte(i), 1})
		parent.SetName("lets-go")
		parent.SetKind(ptrace.SpanKindClient)
		parent.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		parent.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(123 * time.Microsecond)))
		parent.Attributes().PutStr("net.peer.ip", "1.2.3.4")
		parent.Attributes().PutStr("peer.service", "telemetrygen-server")
		child := ss.Spans().AppendEmpty()
		parent.CopyTo(child)
		child.SetName("okey-dokey-0")
		child.SetKind(ptrace.SpanKindServer)
		child.SetSpanID(pcommon.SpanID{byte(i), 2})
		child.SetParentSpanID(parent.SpanID())
		child.TraceState().FromRaw("rojo=00f067aa0ba902b7")
		child.SetFlags(1)
		child.Status().SetCode(ptrace.StatusCodeError)
		child.Status().SetMessage("boom")
		ev := child.Events().AppendEmpty()
		ev.SetName("exception")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(now))
		ev.Attributes().PutStr("exception.message", "boom")
		ev.SetDroppedAttributesCount(1)
		l := child.Links().AppendEmpty()
		l.SetTraceID(tid)
		l.SetSpanID(pcommon.SpanID{9})
		l.SetFlags(1)
		l.Attributes().PutInt("link.n", 1)
		a := child.Attributes()
		a.PutBool("b", true)
		a.PutDouble("d", 1.5)
		a.PutEmptyBytes("raw").FromRaw([]byte{0, 1, 2})
		arr := a.PutEmptySlice("arr")
		arr.AppendEmpty().SetStr("x")
		arr.AppendEmpty().SetEmptyMap().PutInt("deep", 3)
		a.PutEmptyMap("map").PutEmptySlice("empty")
		child.SetDroppedAttributesCount(2)
		child.SetDroppedEventsCount(3)
		child.SetDroppedLinksCount(4)
	}
	// A second resource and an empty scope: SpanCount walks them all.
	rs2 := td.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("service.name", "other")
	rs2.ScopeSpans().AppendEmpty()
	rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("lonely")
	return td
}

func marshalTraces(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// legacyRequest is a request from an exporter older than OTLP 0.19: one
// resource with its spans in instrumentation_library_spans (1000), and, when
// alsoScopeSpans, a scope_spans beside it that makes pdata drop them.
func legacyRequest(alsoScopeSpans bool) []byte {
	span := protowire.AppendTag(nil, 5, protowire.BytesType)
	span = protowire.AppendString(span, "old")
	scope := protowire.AppendTag(nil, 2, protowire.BytesType)
	scope = protowire.AppendBytes(scope, span)
	scope = protowire.AppendTag(scope, 2, protowire.BytesType)
	scope = protowire.AppendBytes(scope, span)
	rs := protowire.AppendTag(nil, 1000, protowire.BytesType)
	rs = protowire.AppendBytes(rs, scope)
	if alsoScopeSpans {
		rs = protowire.AppendTag(rs, 2, protowire.BytesType)
		rs = protowire.AppendBytes(rs, nil)
	}
	req := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(req, rs)
}

// oddRequests are valid and invalid encodings pdata decides on by rules of
// its own: unknown fields and groups, over-long varints, truncated field
// numbers, IDs of the wrong length, wrong wire types.
func oddRequests() [][]byte {
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	msg := func(num protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(tag(num, protowire.BytesType), body)
	}
	span := func(fields ...[]byte) []byte { return msg(1, msg(2, msg(2, cat(fields...)))) }
	return [][]byte{
		nil,
		cat(tag(7, protowire.VarintType), []byte{0x96, 0x01}),                          // unknown varint
		cat(tag(7, protowire.StartGroupType), tag(7, protowire.EndGroupType)),          // empty group
		cat(tag(7, protowire.StartGroupType), tag(8, protowire.VarintType), []byte{1}), // group ended by its first field
		cat(tag(7, protowire.StartGroupType), tag(8, protowire.VarintType), []byte{1}, tag(7, protowire.EndGroupType)),
		cat(tag(7, protowire.StartGroupType), tag(8, protowire.StartGroupType), tag(8, protowire.EndGroupType), tag(9, protowire.EndGroupType)),
		tag(7, protowire.EndGroupType),
		{0x0f},       // wire type 7
		{0x0a, 0x00}, // an empty ResourceSpans
		{0x08, 0x01}, // ResourceSpans as a varint
		{0x0a},       // truncated
		{0x00},       // field 0
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, // ten-byte tag
		{0x8a, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00},                   // field 2^32+1 is field 1 for pdata
		{0x88, 0x80, 0x80, 0x80, 0x80, 0x01, 0x01},                   // so a varint there is refused
		span(msg(1, make([]byte, 16)), msg(2, make([]byte, 8)), msg(4, nil)),
		span(msg(1, make([]byte, 15))),
		span(msg(2, make([]byte, 9))),
		span(msg(4, make([]byte, 1))),
		span(tag(16, protowire.Fixed32Type), []byte{1, 0, 0, 0}),
		span(tag(16, protowire.Fixed32Type), []byte{1, 0, 0}),
		span(tag(6, protowire.VarintType), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}),
		span(tag(6, protowire.VarintType), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}),
		span(tag(7, protowire.VarintType), []byte{1}),
		span(msg(15, msg(1, []byte{8, 1}))), // status with the deprecated code
		span(msg(9, msg(2, msg(5, msg(1, msg(6, msg(1, msg(2, tag(4, protowire.Fixed64Type))))))))),
		span(msg(9, msg(2, cat(tag(4, protowire.Fixed64Type), make([]byte, 8))))),
		span(msg(11, cat(tag(1, protowire.Fixed64Type), make([]byte, 8)))),
		span(msg(13, msg(1, make([]byte, 3)))),
		msg(1, msg(1, msg(3, msg(3, []byte("k"))))), // resource entity ref
		msg(1, msg(1, msg(3, tag(3, protowire.VarintType)))),
		msg(1, msg(2, msg(1, msg(3, msg(2, nil))))), // scope attribute with an empty value
	}
}

// walkTraces accepts exactly what pdata's unmarshal accepts, and counts the
// spans SpanCount counts, on real requests, their truncations and anything
// the fuzzer makes of them.
func FuzzWalkTracesMatchesPdata(f *testing.F) {
	seeds := [][]byte{
		marshalTraces(f, sampleTraces(3)),
		marshalTraces(f, telemetrygenTraces(4)),
		marshalTraces(f, ptrace.NewTraces()),
		legacyRequest(false),
		legacyRequest(true),
		[]byte("\xff\xff\xff garbage"),
	}
	seeds = append(seeds, oddRequests()...)
	full := marshalTraces(f, telemetrygenTraces(2))
	for _, n := range []int{1, 2, 7, len(full) / 3, len(full) / 2, len(full) - 1} {
		seeds = append(seeds, full[:n])
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkWalk(t, b)
	})
}

// checkWalk fails unless walkTraces refuses b only when pdata does, and
// accepts it only when pdata does, with pdata's span count, and protobuf's
// own parser reads it too: what a destination that is not pdata-based
// gets. What the walk leaves to pdata, pdata decides.
func checkWalk(t *testing.T, b []byte) {
	t.Helper()
	req := ptraceotlp.NewExportRequest()
	perr := req.UnmarshalProto(b)
	spans, decode, err := walkTraces(b)
	switch {
	case decode && err != nil:
		t.Fatalf("walk leaves %x to pdata and refuses it: %v", b, err)
	case decode:
	case (perr == nil) != (err == nil):
		t.Fatalf("pdata says %v, walk says %v, for %x", perr, err, b)
	case err == nil && spans != req.Traces().SpanCount():
		t.Fatalf("walk counts %d spans, pdata %d, in %x", spans, req.Traces().SpanCount(), b)
	case err == nil:
		// protobuf-go checks UTF-8, which pdata never did on decoding nor
		// encoding again: no change for a destination.
		if err := proto.Unmarshal(b, &coltracepb.ExportTraceServiceRequest{}); err != nil && !strings.Contains(err.Error(), "UTF-8") {
			t.Fatalf("walk and pdata accept %x, protobuf refuses it: %v", b, err)
		}
	}
}

func TestWalkTracesSeeds(t *testing.T) {
	for _, b := range append(oddRequests(), legacyRequest(false), legacyRequest(true)) {
		checkWalk(t, b)
	}
	group := protowire.AppendTag(protowire.AppendTag(nil, 7, protowire.StartGroupType), 7, protowire.EndGroupType)
	for _, tc := range []struct {
		name   string
		req    []byte
		spans  int
		decode bool
	}{
		{"telemetrygen", marshalTraces(t, telemetrygenTraces(5)), 11, false},
		{"deprecated field", legacyRequest(false), 0, true},
		{"deprecated field beside scope_spans", legacyRequest(true), 0, true},
		{"group", group, 0, true},
		{"field 2^32+1", []byte{0x8a, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00}, 0, true},
		{"varint past 64 bits", []byte{0x38, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 0, true},
		{"ten-byte varint", []byte{0x38, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, false},
	} {
		spans, decode, err := walkTraces(tc.req)
		if err != nil || spans != tc.spans || decode != tc.decode {
			t.Errorf("%s: walk = %d spans, decode %v, %v; want %d, %v", tc.name, spans, decode, err, tc.spans, tc.decode)
		}
	}
}

// The walk against pdata's decode, on requests of bench/traces' size (100
// traces of telemetrygen's shape): go test -run '^$' -bench Traces.
func BenchmarkWalkTraces(b *testing.B) {
	req := marshalTraces(b, telemetrygenTraces(100))
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := walkTraces(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeTracesPdata(b *testing.B) {
	req := marshalTraces(b, telemetrygenTraces(100))
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ptraceotlp.NewExportRequest().UnmarshalProto(req); err != nil {
			b.Fatal(err)
		}
	}
}
