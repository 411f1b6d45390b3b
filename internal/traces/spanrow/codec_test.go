package spanrow

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// sampleTraces builds a trace that uses every part of OTLP the row form must keep.
func sampleTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.21.0")
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	rs.Resource().Attributes().PutInt("pid", 42)
	rs.Resource().SetDroppedAttributesCount(2)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("lib")
	ss.Scope().SetVersion("1.0")
	ss.Scope().Attributes().PutBool("x", true)
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1, 2, 3})
	sp.SetSpanID(pcommon.SpanID{4, 5})
	sp.SetParentSpanID(pcommon.SpanID{6})
	sp.SetName("GET /cart")
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(1_700_000_000_000_000_000)
	sp.SetEndTimestamp(1_700_000_000_250_000_000)
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.Status().SetMessage("boom")
	sp.TraceState().FromRaw("a=b")
	sp.SetFlags(1)
	a := sp.Attributes()
	a.PutStr("http.method", "GET")
	a.PutInt("http.status_code", 500)
	a.PutDouble("ratio", 0.25)
	a.PutEmptyBytes("raw").FromRaw([]byte{0, 1, 2})
	sl := a.PutEmptySlice("list")
	sl.AppendEmpty().SetStr("x")
	sl.AppendEmpty().SetInt(-7)
	a.PutEmptyMap("nested").PutEmptyMap("deeper").PutStr("k", "v")
	a.PutEmpty("nothing")
	sp.SetDroppedAttributesCount(1)
	ev := sp.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(1_700_000_000_100_000_000)
	ev.Attributes().PutStr("exception.message", "nil pointer")
	ln := sp.Links().AppendEmpty()
	ln.SetTraceID(pcommon.TraceID{9})
	ln.SetSpanID(pcommon.SpanID{8})
	ln.Attributes().PutStr("l", "v")
	sp.SetDroppedLinksCount(3)
	// a second span of the same trace in the same scope, with no extras
	sp2 := ss.Spans().AppendEmpty()
	sp2.SetTraceID(pcommon.TraceID{1, 2, 3})
	sp2.SetSpanID(pcommon.SpanID{6})
	sp2.SetName("root")
	sp2.SetStartTimestamp(1_699_999_999_000_000_000)
	sp2.SetEndTimestamp(1_700_000_001_000_000_000)
	return td
}

func TestRoundTripKeepsEverything(t *testing.T) {
	td := sampleTraces()
	rows, err := FromTraces(td, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Service != "checkout" || rows[0].Duration != 250_000_000 {
		t.Fatalf("unexpected rows: %+v", rows)
	}
	back, err := ToTraces(rows)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	got, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(back)
	if string(want) != string(got) {
		t.Fatalf("round trip changed the trace\nwant %s\ngot  %s", want, got)
	}
}

func TestFromTracesRejectsEmptyIDs(t *testing.T) {
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("x")
	if _, err := FromTraces(td, nil); err == nil {
		t.Fatal("span without IDs was accepted")
	}
}

func TestDedupeDropsRepeatedSpans(t *testing.T) {
	rows, _ := FromTraces(sampleTraces(), nil)
	rows = append(rows, rows...)
	Sort(rows)
	if got := len(Dedupe(rows)); got != 2 {
		t.Fatalf("dedupe kept %d spans, want 2", got)
	}
}

// The head sorts a trace's spans by pointer with SortTrace and DedupePtrs; the
// block must get the order and the spans that Sort and Dedupe give.
func TestSortTraceAgreesWithSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var rows []Span
		for range 1 + rng.IntN(30) {
			r := Span{TraceID: [16]byte{7}, Start: int64(rng.IntN(4))}
			// Few distinct span IDs and start times, so that duplicates and
			// ties on start are common; IDs differ in high and low bytes.
			r.SpanID[rng.IntN(8)] = byte(1 + rng.IntN(3))
			rows = append(rows, r)
		}
		ptrs := make([]*Span, len(rows))
		for i := range rows {
			ptrs[i] = &rows[i]
		}
		SortTrace(ptrs)
		var got []Span
		for _, p := range DedupePtrs(ptrs) {
			got = append(got, *p)
		}
		want := slices.Clone(rows)
		Sort(want)
		want = Dedupe(want)
		key := func(r Span) [2]int64 { return [2]int64{r.Start, int64(binary.BigEndian.Uint64(r.SpanID[:]))} }
		if len(got) != len(want) || !slices.EqualFunc(got, want, func(a, b Span) bool { return key(a) == key(b) }) {
			t.Fatalf("SortTrace+DedupePtrs\n got %v\nwant %v", got, want)
		}
	}
}

func FuzzDecodeMap(f *testing.F) {
	rows, _ := FromTraces(sampleTraces(), nil)
	for _, r := range rows {
		f.Add(r.Attrs)
		f.Add(r.Extra)
		f.Add(r.Resource)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	// A map large enough for the linear path, with a duplicate key.
	big := pcommon.NewMap()
	for i := range bigMap + 2 {
		big.PutStr("k"+strconv.Itoa(i), "v")
	}
	bb := AppendMap(nil, big)
	f.Add(bb)
	f.Add(append(bb[:len(bb)-8:len(bb)-8], 2, 'k', '0', tStr, 1, 'w'))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := pcommon.NewMap()
		if err := DecodeMap(b, m); err != nil {
			return
		}
		// whatever decodes must encode back to the same bytes
		if again := AppendMap(nil, m); string(again) != string(b) {
			// maps with duplicate keys legitimately collapse; only check lengths shrink
			if len(again) > len(b) {
				t.Fatalf("re-encoding grew: %x -> %x", b, again)
			}
		}
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		_ = decodeExtra(b, sp)
		checkEachScalarAgrees(t, b)
	})
}

// checkEachScalarAgrees checks that the allocation-free walk sees what ScanScalars
// sees: the same keys, types and values, and the same error.
func checkEachScalarAgrees(t *testing.T, b []byte) {
	var want, got []string
	errWant := ScanScalars(b, func(k, typ, v string) { want = append(want, k+"|"+typ+"|"+v) })
	errGot := EachScalar(b, func(k []byte, v Scalar) {
		var s string
		switch v.Kind {
		case KindString:
			s = "string|" + string(v.Str)
		case KindInt:
			s = "int|" + strconv.FormatInt(v.Int, 10)
		case KindFloat:
			s = "float|" + strconv.FormatFloat(v.Float, 'g', -1, 64)
		case KindBool:
			s = "bool|" + strconv.FormatBool(v.Bool)
		default:
			s = "|"
		}
		got = append(got, string(k)+"|"+s)
	})
	if (errWant == nil) != (errGot == nil) || !slices.Equal(want, got) {
		t.Fatalf("EachScalar saw %q (%v), ScanScalars %q (%v)", got, errGot, want, errWant)
	}
}

func TestEachScalarAgreesWithScanScalars(t *testing.T) {
	rows, _ := FromTraces(sampleTraces(), nil)
	for _, r := range rows {
		checkEachScalarAgrees(t, r.Attrs)
		attrs, _ := ResourceAttrs(r.Resource)
		checkEachScalarAgrees(t, attrs)
	}
}

// A map over bigMap entries decodes through the linear path: every type,
// nesting and the order of keys survive, the same as the small path.
func TestBigMapRoundTrip(t *testing.T) {
	m := pcommon.NewMap()
	for i := range 3 * bigMap {
		k := "k" + strconv.Itoa(i)
		switch i % 7 {
		case 0:
			m.PutStr(k, "v\xff"+strconv.Itoa(i))
		case 1:
			m.PutInt(k, -int64(i))
		case 2:
			m.PutDouble(k, float64(i)/3)
		case 3:
			m.PutBool(k, i%2 == 0)
		case 4:
			m.PutEmptyBytes(k).FromRaw([]byte{byte(i), 0})
		case 5:
			s := m.PutEmptySlice(k)
			s.AppendEmpty().SetStr("a")
			s.AppendEmpty()
			inner := s.AppendEmpty().SetEmptyMap()
			for j := range bigMap + 1 {
				inner.PutInt("n"+strconv.Itoa(j), int64(j))
			}
		case 6:
			m.PutEmpty(k)
		}
	}
	b := AppendMap(nil, m)
	got := pcommon.NewMap()
	if err := DecodeMap(b, got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(m) {
		t.Fatal("big map changed in the round trip")
	}
	if again := AppendMap(nil, got); string(again) != string(b) {
		t.Fatal("big map re-encodes differently (order lost?)")
	}
}
