package traces

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/internal/traceql"
)

// One span with 100,000 attributes, stored in a block and in the head, leaves
// `{}` fast: attributes decode in linear time (quadratically, this search took
// 11–25 s), and every attribute comes back. Linear is told from quadratic by
// the search's CPU time against the same search over spans of 10,000
// attributes: ten times the attributes cost about ten times the CPU, where
// quadratic decoding costs a hundred times. Comparing CPU times measured in one
// process keeps the test independent of how busy the machine is.
func TestSpanWithHundredThousandAttributesKeepsSearchFast(t *testing.T) {
	small := wideSearchCPU(t, 10_000)
	big := wideSearchCPU(t, 100_000)
	t.Logf("{} over 10k-attribute spans: %v CPU; over 100k: %v", small, big)
	if big > 40*small {
		t.Fatalf("{} over spans of 100k attributes took %v CPU, %.0f× the %v of 10k: decoding is not linear",
			big, float64(big)/float64(small), small)
	}
}

// wideSearchCPU stores two traces of one span with attrs attributes, one in a
// block and one in the head, checks that `{}` returns them with every attribute,
// and returns the least CPU time of three such searches.
func wideSearchCPU(t *testing.T, attrs int) time.Duration {
	t.Helper()
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
	least := time.Duration(1<<63 - 1)
	for range 3 {
		cpu0 := testpeer.CPUTime()
		res, _, err := s.Search(ctx, SearchRequest{Tenant: pipeline.DefaultTenant, Query: q, Limit: 20})
		least = min(least, testpeer.CPUTime()-cpu0)
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
	}
	return least
}
