package spanrow

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// fuzzSource turns fuzz input into choices; past its end every choice is 0.
type fuzzSource struct{ b []byte }

func (f *fuzzSource) byte1() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *fuzzSource) u64() uint64 {
	var x [8]byte
	for i := range x {
		x[i] = f.byte1()
	}
	return binary.LittleEndian.Uint64(x[:])
}

// str is empty, short, or (rarely) long enough that its length takes two varint bytes.
func (f *fuzzSource) str() string {
	n := int(f.byte1() % 8)
	if n == 7 {
		n = 200
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + f.byte1()%26
	}
	return string(b)
}

// value fills v with a value of any type, nesting slices and maps up to depth 3.
func (f *fuzzSource) value(v pcommon.Value, depth int) {
	switch t := f.byte1() % 9; {
	case t == 0:
		// left empty
	case t == 1:
		v.SetStr(f.str())
	case t == 2:
		v.SetInt(int64(f.u64()))
	case t == 3:
		doubles := []float64{0, -0.5, 1e21, 1e-7, math.NaN(), math.Inf(1), math.Inf(-1)}
		if c := f.byte1(); int(c) < len(doubles) {
			v.SetDouble(doubles[c])
		} else {
			v.SetDouble(math.Float64frombits(f.u64()))
		}
	case t == 4:
		v.SetBool(f.byte1()%2 == 1)
	case t == 5:
		v.SetEmptyBytes().FromRaw([]byte(f.str()))
	case t == 6 && depth < 3:
		s := v.SetEmptySlice()
		for n := f.byte1() % 4; n > 0; n-- {
			f.value(s.AppendEmpty(), depth+1)
		}
	case t == 7 && depth < 3:
		f.attrs(v.SetEmptyMap(), depth+1)
	default:
		v.SetStr("")
	}
}

func (f *fuzzSource) attrs(m pcommon.Map, depth int) {
	for n := f.byte1() % 6; n > 0; n-- {
		f.value(m.PutEmpty(f.str()), depth)
	}
}

func (f *fuzzSource) id(n int) []byte {
	b := make([]byte, n)
	if f.byte1()%4 != 0 { // a quarter of optional IDs are left empty
		for i := range b {
			b[i] = f.byte1() | 1
		}
	}
	return b
}

// span builds a span that uses whatever f chooses of every OTLP span field.
func (f *fuzzSource) span(sp ptrace.Span) {
	sp.SetTraceID(pcommon.TraceID{1, f.byte1()})
	sp.SetSpanID(pcommon.SpanID{2, f.byte1()})
	sp.SetParentSpanID(pcommon.SpanID(f.id(8)))
	sp.SetName(f.str())
	sp.SetKind(ptrace.SpanKind(int32(f.byte1()) - 1)) // -1 is a kind only the wire can carry
	sp.SetStartTimestamp(pcommon.Timestamp(f.u64() >> (f.byte1() % 64)))
	sp.SetEndTimestamp(pcommon.Timestamp(f.u64() >> (f.byte1() % 64)))
	sp.TraceState().FromRaw(f.str())
	sp.SetFlags(uint32(f.u64() >> (f.byte1() % 33)))
	sp.Status().SetCode(ptrace.StatusCode(int32(f.byte1()%4) - 1))
	sp.Status().SetMessage(f.str())
	f.attrs(sp.Attributes(), 0)
	sp.SetDroppedAttributesCount(uint32(f.u64() >> (f.byte1() % 33)))
	sp.SetDroppedEventsCount(uint32(f.byte1()))
	sp.SetDroppedLinksCount(uint32(f.byte1()) << 8)
	for n := f.byte1() % 3; n > 0; n-- {
		e := sp.Events().AppendEmpty()
		e.SetTimestamp(pcommon.Timestamp(f.u64() >> (f.byte1() % 65)))
		e.SetName(f.str())
		e.SetDroppedAttributesCount(uint32(f.byte1()))
		f.attrs(e.Attributes(), 0)
	}
	for n := f.byte1() % 3; n > 0; n-- {
		l := sp.Links().AppendEmpty()
		l.SetTraceID(pcommon.TraceID(f.id(16)))
		l.SetSpanID(pcommon.SpanID(f.id(8)))
		l.TraceState().FromRaw(f.str())
		l.SetFlags(uint32(f.byte1()))
		l.SetDroppedAttributesCount(uint32(f.byte1()))
		f.attrs(l.Attributes(), 0)
	}
}

// FuzzProtoSizeMatchesPdata checks ProtoSize against pdata's SpanSize for random
// spans of every shape, and Lookup against pcommon.Map.Get for their attributes.
func FuzzProtoSizeMatchesPdata(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("some attributes, events and links to start from: 0123456789abcdef"))
	f.Add(func() []byte {
		b := make([]byte, 512)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		return b
	}())
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &fuzzSource{b: data}
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		src.attrs(rs.Resource().Attributes(), 0)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for n := 1 + src.byte1()%3; n > 0; n-- {
			src.span(spans.AppendEmpty())
		}
		rows, err := FromTraces(td, nil)
		if err != nil {
			t.Fatal(err)
		}
		var m ptrace.ProtoMarshaler
		for i := range rows {
			sp := spans.At(i)
			want := m.SpanSize(sp)
			if sp.EndTimestamp() == 0 && sp.StartTimestamp() != 0 {
				want += 9 // the row ends at its start (see ProtoSize)
			}
			if got := ProtoSize(&rows[i]); got != want {
				t.Fatalf("span %d: ProtoSize = %d, pdata's SpanSize = %d", i, got, want)
			}
			checkLookups(t, rows[i].Attrs, sp.Attributes())
		}
		res, ok := ResourceAttrs(rows[0].Resource)
		if !ok {
			t.Fatal("resource blob without attributes")
		}
		checkLookups(t, res, rs.Resource().Attributes())
	})
}

// checkLookups fails unless every key of m, and one it lacks, is found in its
// encoding b as m.Get finds it.
func checkLookups(t *testing.T, b []byte, m pcommon.Map) {
	t.Helper()
	m.Range(func(k string, v pcommon.Value) bool {
		got, ok := LookupString(b, k)
		if !ok || got != v.AsString() {
			t.Fatalf("LookupString(%q) = %q, %v; pdata has %q", k, got, ok, v.AsString())
		}
		return true
	})
	if _, ok := Lookup(b, "no such key, not even in a fuzzed map"); ok {
		t.Fatal("found a missing key")
	}
	// LookupFirst is Lookup over its keys in order: try the map's keys from
	// the last, behind one it lacks.
	keys := []string{"missing"}
	m.Range(func(k string, _ pcommon.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.Reverse(keys[1:])
	for len(keys) > 0 {
		wantI, wantV := -1, Value(nil)
		for i, k := range keys {
			if v, ok := Lookup(b, k); ok {
				wantI, wantV = i, v
				break
			}
		}
		if i, v := LookupFirst(b, keys); i != wantI || !bytes.Equal(v, wantV) {
			t.Fatalf("LookupFirst(%q) = %d, %x; Lookup finds %d, %x", keys, i, v, wantI, wantV)
		}
		keys = keys[1:]
	}
}

func TestProtoSizeOfSample(t *testing.T) {
	td := sampleTraces()
	rows, err := FromTraces(td, nil)
	if err != nil {
		t.Fatal(err)
	}
	var m ptrace.ProtoMarshaler
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range rows {
		if got, want := ProtoSize(&rows[i]), m.SpanSize(spans.At(i)); got != want {
			t.Errorf("span %d: ProtoSize = %d, want %d", i, got, want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { ProtoSize(&rows[0]) }); a != 0 {
		t.Errorf("ProtoSize allocates %v times", a)
	}
}
