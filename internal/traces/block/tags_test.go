package block

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traces/backend"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// tagRows builds traces whose attributes vary per trace: a status code, a
// method, a per-trace user ID (high cardinality), an array attribute on some
// traces and an error status on every 7th.
func tagRows(t testing.TB, n int) []spanrow.Span {
	td := ptrace.NewTraces()
	for svcIdx, svc := range []string{"web", "db"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range n {
			sp := spans.AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{byte(i >> 8), byte(i), 0xbb})
			sp.SetSpanID(pcommon.SpanID{byte(i >> 8), byte(i), byte(svcIdx), 1})
			sp.SetName(svc + "-op")
			sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1e6))
			sp.SetEndTimestamp(sp.StartTimestamp() + pcommon.Timestamp(int64(i%10+1)*1e6))
			if svc == "web" {
				sp.Attributes().PutInt("http.status_code", int64([]int{200, 404, 500}[i%3]))
				sp.Attributes().PutStr("http.method", []string{"GET", "POST"}[i%2])
				sp.Attributes().PutStr("user.id", "u-"+strconv.Itoa(i))
			}
			if i%5 == 0 {
				sp.Attributes().PutEmptySlice("tags").AppendEmpty().SetStr("x")
			}
			if i%7 == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
	}
	return sortedRows(t, td)
}

// bruteForce lists the ordinals of traces that have a span (scope 's') or
// resource ('r') value of key for which match holds, by decoding every row.
func bruteForce(rows []spanrow.Span, scope byte, key string, match func(typ, text string) bool) []uint32 {
	var out []uint32
	ord := -1
	for i := range rows {
		if i == 0 || rows[i].TraceID != rows[i-1].TraceID {
			ord++
		}
		blob := rows[i].Attrs
		if scope == ScopeResource {
			blob, _ = spanrow.ResourceAttrs(rows[i].Resource)
		}
		hit := false
		spanrow.ScanScalars(blob, func(k, typ, text string) { hit = hit || (k == key && typ != "" && match(typ, text)) })
		if hit && (len(out) == 0 || out[len(out)-1] != uint32(ord)) {
			out = append(out, uint32(ord))
		}
	}
	return out
}

func TestTagPostingsMatchTheSpans(t *testing.T) {
	ctx := context.Background()
	const n = 3000
	rows := tagRows(t, n)
	tags, err := writeAndOpen(t, rows).Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eq := func(want string) func(string, string) bool {
		return func(_, text string) bool { return text == want }
	}
	ge500 := func(typ, text string) bool { v, _ := strconv.Atoi(text); return typ == "int" && v >= 500 }
	cases := []struct {
		scope byte
		key   string
		match func(string, string) bool
		want  int // expected number of traces, as a cross-check of bruteForce
	}{
		{ScopeSpan, "http.status_code", eq("500"), n / 3},
		{ScopeSpan, "http.status_code", ge500, n / 3},
		{ScopeSpan, "http.method", eq("POST"), n / 2},
		{ScopeSpan, "http.method", nil, n},
		{ScopeResource, "service.name", eq("db"), n},
		{ScopeSpan, "http.method", eq("DELETE"), 0},
	}
	for _, tc := range cases {
		got, ok := tags.Postings(tc.scope, tc.key, tc.match)
		if !ok {
			t.Fatalf("%c %s: index cannot tell", tc.scope, tc.key)
		}
		m := tc.match
		if m == nil {
			m = func(string, string) bool { return true }
		}
		want := bruteForce(rows, tc.scope, tc.key, m)
		if len(want) != tc.want || !slices.Equal(got, want) {
			t.Errorf("%c %s: %d traces from postings, %d by decoding spans (expected %d)", tc.scope, tc.key, len(got), len(want), tc.want)
		}
	}
	if got, ok := tags.Postings(ScopeStatus, "", eq("error")); !ok || len(got) != (n+6)/7 {
		t.Errorf("error status: %d traces (ok %v), want %d", len(got), ok, (n+6)/7)
	}
	if got, ok := tags.Postings(ScopeName, "", eq("web-op")); !ok || len(got) != n {
		t.Errorf("span name: %d traces (ok %v), want %d", len(got), ok, n)
	}
	// A key nobody sent: surely absent.
	if got, ok := tags.Postings(ScopeSpan, "no.such.key", nil); !ok || len(got) != 0 {
		t.Errorf("absent key: %v %v", got, ok)
	}
	// Arrays and too many distinct values: the index must say it cannot tell.
	if _, ok := tags.Postings(ScopeSpan, "tags", nil); ok {
		t.Error("array attribute claimed to be indexed")
	}
	if _, ok := tags.Postings(ScopeSpan, "user.id", eq("u-7")); n > maxIndexedValues && ok {
		t.Error("over-cap key claimed to be indexed")
	}
}

func TestHighCardinalityKeyIsLeftUnindexed(t *testing.T) {
	x := newTagIndexer()
	for i := range maxIndexedValues + 1 {
		x.add(uint32(i), ScopeSpan, []byte("user.id"), kindString, []byte(fmt.Sprint(i)))
		x.add(uint32(i), ScopeSpan, []byte("method"), kindString, []byte("GET"))
	}
	ti, err := decodeTags(x.encode(), maxIndexedValues+1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ti.Postings(ScopeSpan, "user.id", nil); ok {
		t.Error("user.id over the cap still claims postings")
	}
	if got, ok := ti.Postings(ScopeSpan, "method", nil); !ok || len(got) != maxIndexedValues+1 {
		t.Errorf("method: %d traces, ok %v", len(got), ok)
	}
}

func TestIndexRecordsTraceTimes(t *testing.T) {
	ctx := context.Background()
	r := writeAndOpen(t, tagRows(t, 50))
	idx, err := r.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range idx.Len() {
		e := idx.At(i)
		spans, err := r.Trace(ctx, e.ID)
		if err != nil || len(spans) != e.Count {
			t.Fatalf("trace %x: %d spans (%v), index says %d", e.ID, len(spans), err, e.Count)
		}
		start, end, longest := spans[0].Start, spans[0].End(), int64(0)
		for _, s := range spans {
			start, end, longest = min(start, s.Start), max(end, s.End()), max(longest, s.Duration)
		}
		if e.Start != start || int64(e.Duration) < end-start || int64(e.Duration) >= end-start+1000 ||
			int64(e.MaxSpan) < longest || int64(e.MaxSpan) >= longest+1000 {
			t.Errorf("trace %x: index start %d dur %v longest %v; spans say %d %d %d", e.ID, e.Start, e.Duration, e.MaxSpan, start, end-start, longest)
		}
	}
}

func TestWriterRefusesTracesOutOfOrder(t *testing.T) {
	rows := tagRows(t, 3)
	w := NewWriter("t", "b", 0)
	if err := w.AddTrace(rows[2:4]); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTrace(rows[0:2]); err == nil {
		t.Error("a trace with a smaller ID after a larger one was accepted")
	}
}

// FuzzDecodeTags feeds damaged tags objects: decoding must fail cleanly or give
// postings that stay inside the block.
func FuzzDecodeTags(f *testing.F) {
	x := newTagIndexer()
	for i := range 20 {
		x.add(uint32(i), ScopeSpan, []byte("k"), kindInt, []byte(strconv.Itoa(i%3)))
		x.add(uint32(i), ScopeName, nil, kindString, []byte("op"))
	}
	good := x.encode()
	f.Add(good, 20)
	raw, _ := zstdDecoder.DecodeAll(good, nil)
	f.Add(zstdEncoder.EncodeAll(raw[:len(raw)/2], nil), 20)
	f.Add([]byte("VTG1"), 1)
	f.Fuzz(func(t *testing.T, b []byte, traces int) {
		traces = max(1, traces%100000)
		for _, in := range [][]byte{b, zstdEncoder.EncodeAll(b, nil)} {
			ti, err := decodeTags(in, traces)
			if err != nil {
				continue
			}
			for k := range ti.keys {
				ords, _ := ti.Postings(k.scope, k.key, nil)
				for _, o := range ords {
					if int(o) >= traces {
						t.Fatalf("ordinal %d in a block of %d traces", o, traces)
					}
				}
			}
		}
	})
}

// BenchmarkWrite measures writing a block of 50k spans: Parquet encoding, the
// index, the summary and the tag postings.
func BenchmarkWrite(b *testing.B) {
	rows := tagRows(b, 25000)
	be, _ := backend.NewLocal(b.TempDir())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Write(context.Background(), be, "t", fmt.Sprint("b", i), 0, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/span")
}

// TestTagValuesOfEachKindAreApart indexes one key whose values share a text
// across kinds (string "1", int 1, float 1; bool true, string "true"): each
// kind keeps its own postings.
func TestTagValuesOfEachKindAreApart(t *testing.T) {
	ctx := context.Background()
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	set := []func(pcommon.Map){
		func(m pcommon.Map) { m.PutStr("v", "1") },
		func(m pcommon.Map) { m.PutInt("v", 1) },
		func(m pcommon.Map) { m.PutDouble("v", 1) },
		func(m pcommon.Map) { m.PutBool("v", true) },
		func(m pcommon.Map) { m.PutStr("v", "true") },
		func(m pcommon.Map) { m.PutInt("v", 1) },
	}
	for i, f := range set {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{byte(i + 1)})
		sp.SetSpanID(pcommon.SpanID{1})
		sp.SetStartTimestamp(1_700_000_000_000_000_000)
		f(sp.Attributes())
	}
	tags, err := writeAndOpen(t, sortedRows(t, td)).Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ, text string
		want      []uint32
	}{
		{"string", "1", []uint32{0}},
		{"int", "1", []uint32{1, 5}},
		{"float", "1", []uint32{2}},
		{"bool", "true", []uint32{3}},
		{"string", "true", []uint32{4}},
	} {
		got, ok := tags.Postings(ScopeSpan, "v", func(typ, text string) bool { return typ == tc.typ && text == tc.text })
		if !ok || !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: postings %v (ok %v), want %v", tc.typ, tc.text, got, ok, tc.want)
		}
	}
}

// writeAndOpen writes rows as a block of a fresh local backend and opens it.
func writeAndOpen(t testing.TB, rows []spanrow.Span) *Reader {
	ctx := context.Background()
	be, _ := backend.NewLocal(t.TempDir())
	if _, err := Write(ctx, be, "t", "b1", 0, rows); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, be, nil, "t", "b1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
