package block

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bits-and-blooms/bloom/v3"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traces/backend"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// genRows builds nTraces traces of spansPer spans from two services.
func genRows(t testing.TB, nTraces, spansPer int) []spanrow.Span {
	td := ptrace.NewTraces()
	for s, svc := range []string{"frontend", "backend"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		rs.Resource().Attributes().PutStr("host.name", "node-1")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := 0; i < nTraces; i++ {
			for j := s; j < spansPer; j += 2 {
				sp := spans.AppendEmpty()
				sp.SetTraceID(pcommon.TraceID{byte(i >> 16), byte(i >> 8), byte(i), 0xaa})
				sp.SetSpanID(pcommon.SpanID{byte(i >> 8), byte(i), byte(j), 1})
				if j > 0 {
					sp.SetParentSpanID(pcommon.SpanID{byte(i >> 8), byte(i), 0, 1})
				}
				sp.SetName(fmt.Sprintf("op-%d", j))
				start := int64(1_700_000_000_000_000_000) + int64(i)*1_000_000 + int64(j)*1000
				sp.SetStartTimestamp(pcommon.Timestamp(start))
				sp.SetEndTimestamp(pcommon.Timestamp(start + 5_000_000))
				sp.Attributes().PutStr("http.method", "GET")
				sp.Attributes().PutInt("http.status_code", 200)
			}
		}
	}
	return sortedRows(t, td)
}

// sortedRows are td's spans as the head hands them to Write.
func sortedRows(t testing.TB, td ptrace.Traces) []spanrow.Span {
	rows, err := spanrow.FromTraces(td, nil)
	if err != nil {
		t.Fatal(err)
	}
	spanrow.Sort(rows)
	return rows
}

func TestWriteThenFindEveryTrace(t *testing.T) {
	ctx := context.Background()
	be, _ := backend.NewLocal(t.TempDir())
	rows := genRows(t, 3000, 10)
	meta, err := Write(ctx, be, "t", "b1", 0, rows)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Spans != 30000 || meta.Traces != 3000 {
		t.Fatalf("meta counts %d spans %d traces", meta.Spans, meta.Traces)
	}
	if len(meta.Summary.Services) != 2 || !meta.Summary.SpanTags["http.method"].Complete ||
		meta.Summary.SpanTags["http.method"].Values[0] != (TagValue{"string", "GET"}) ||
		meta.Summary.ResourceTags["host.name"] == nil {
		t.Fatalf("summary %+v", meta.Summary)
	}
	r, err := Open(ctx, be, nil, "t", "b1")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 1999, 2000, 2999} {
		id := [16]byte{byte(i >> 16), byte(i >> 8), byte(i), 0xaa}
		got, err := r.Trace(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 10 {
			t.Fatalf("trace %d: %d spans, want 10", i, len(got))
		}
		for _, sp := range got {
			if sp.TraceID != id {
				t.Fatalf("trace %d returned a span of %x", i, sp.TraceID)
			}
		}
	}
	if got, _ := r.Trace(ctx, [16]byte{9, 9, 9}); got != nil {
		t.Fatalf("unknown trace returned %d spans", len(got))
	}
	n := 0
	if err := r.Scan(ctx, func(sp []spanrow.Span) bool { n++; return len(sp) == 10 }); err != nil || n != 3000 {
		t.Fatalf("scan saw %d traces, %v", n, err)
	}
	if err := Delete(ctx, be, "t", "b1"); err != nil {
		t.Fatal(err)
	}
	if left, _ := be.List(ctx, ""); len(left) != 0 {
		t.Fatalf("objects left after delete: %q", left)
	}
}

// MayContainKey, which hashes a trace ID once for many blocks, must answer as
// MayContain does, for filters of any size and for one made with other
// parameters than Finish uses.
func TestMayContainKeyAgreesWithMayContain(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	id := func() (v [16]byte) {
		for i := range v {
			v[i] = byte(rng.Uint32())
		}
		return v
	}
	var readers []*Reader
	var ids [][16]byte // the members, then as many others
	for _, f := range []*bloom.BloomFilter{bloom.NewWithEstimates(10, bloomFPR), bloom.NewWithEstimates(50000, bloomFPR), bloom.New(2000, 3)} {
		for range 300 {
			v := id()
			f.Add(v[:])
			ids = append(ids, v)
		}
		readers = append(readers, &Reader{bloom: f})
	}
	for range 20000 {
		ids = append(ids, id())
	}
	yes := 0
	for _, v := range ids {
		k := NewBloomKey(v)
		for _, r := range readers {
			got, want := r.MayContainKey(k), r.MayContain(v)
			if got != want {
				t.Fatalf("filter k=%d m=%d: MayContainKey %v, MayContain %v", r.bloom.K(), r.bloom.Cap(), got, want)
			}
			if want {
				yes++
			}
		}
	}
	if yes < 900 {
		t.Fatalf("%d positive answers: fewer than the members", yes)
	}
}
