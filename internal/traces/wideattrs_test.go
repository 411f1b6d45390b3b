package traces

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traceql"
)

// One span with 100,000 attributes, stored in a block and in the head,
// leaves `{}` fast: attributes decode in linear time (quadratically, this
// search took 11–25 s), and every attribute comes back.
func TestSpanWithHundredThousandAttributesKeepsSearchFast(t *testing.T) {
	const attrs = 100_000
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Config{})
	t.Cleanup(func() { s.Close() })
	now := time.Now()
	for i, inBlock := range []bool{true, false} {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "wide")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(tid(i))
		sp.SetSpanID(pcommon.SpanID{1})
		sp.SetName("wide")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		raw := make(map[string]any, attrs)
		for j := range attrs {
			raw["attr."+strconv.Itoa(j)] = int64(j)
		}
		if err := sp.Attributes().FromRaw(raw); err != nil {
			t.Fatal(err)
		}
		if err := s.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		if inBlock {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	q, err := traceql.Parse(`{}`)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, _, err := s.Search(ctx, SearchRequest{Tenant: pipeline.DefaultTenant, Query: q, Limit: 20})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("search found %d traces, want 2", len(res))
	}
	for _, r := range res {
		got := r.Trace.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
		if got.Len() != attrs {
			t.Fatalf("trace %x: %d attributes, want %d", r.TraceID, got.Len(), attrs)
		}
		for k, v := range got.All() {
			if k != "attr."+strconv.FormatInt(v.Int(), 10) {
				t.Fatalf("attribute %s=%v", k, v.AsRaw())
			}
		}
	}
	if took > time.Second {
		t.Fatalf("{} took %v with one 100k-attribute span, want under 1s", took)
	}
}
