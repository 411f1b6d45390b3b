package traces

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
)

func TestSpansOverPerTraceLimitAreReportedAsPartialSuccess(t *testing.T) {
	s := openStore(t, t.TempDir(), Config{MaxSpansPerTrace: 5})
	defer s.Close()
	ctx := context.Background()
	base := time.Now()

	td := ptrace.NewTraces()
	spansOf(td, 1, "svc", 0, 3, base)
	if err := s.ConsumeTraces(ctx, td); err != nil {
		t.Fatalf("under the limit: %v", err)
	}
	td = ptrace.NewTraces()
	spansOf(td, 1, "svc", 3, 4, base) // 3 + 4 = 7 > 5
	spansOf(td, 2, "svc", 0, 2, base) // another trace is unaffected
	err := s.ConsumeTraces(ctx, td)
	pe, ok := pipeline.AsPartial(err)
	if !ok || pe.Rejected != 2 || !strings.Contains(pe.Error(), "TRACE_TOO_LARGE: max size of trace (5 spans, max_spans_per_trace) exceeded while adding 2 spans to trace") {
		t.Fatalf("over the limit: %v, want a partial success refusing 2 spans", err)
	}
	if td.SpanCount() != 4 {
		t.Errorf("the batch passed on holds %d spans, want the 4 accepted", td.SpanCount())
	}
	mustFind(t, s, pipeline.DefaultTenant, 1, 5)
	mustFind(t, s, pipeline.DefaultTenant, 2, 2)
}

func TestLongAttributesAreTruncated(t *testing.T) {
	s := openStore(t, t.TempDir(), Config{MaxAttributeBytes: 64})
	defer s.Close()
	td := ptrace.NewTraces()
	spansOf(td, 3, "svc", 0, 1, time.Now())
	span := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	span.Attributes().PutStr("db.statement", strings.Repeat("é", 100)) // 200 bytes
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("k8s.pod.labels", strings.Repeat("x", 65))
	span.Events().AppendEmpty().Attributes().PutStr("exception.stacktrace", strings.Repeat("y", 300))
	if err := s.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.FindTrace(context.Background(), pipeline.DefaultTenant, tid(3), 0, 0)
	if err != nil || !ok {
		t.Fatalf("find: %v %v", ok, err)
	}
	rs := got.ResourceSpans().At(0)
	gotSpan := rs.ScopeSpans().At(0).Spans().At(0)
	v, _ := gotSpan.Attributes().Get("db.statement")
	if v.Str() != strings.Repeat("é", 32) {
		t.Errorf("db.statement = %q (%d bytes), want 32 whole runes", v.Str(), len(v.Str()))
	}
	if v, _ := rs.Resource().Attributes().Get("k8s.pod.labels"); v.Str() != strings.Repeat("x", 64) {
		t.Errorf("resource attribute kept %d bytes, want 64", len(v.Str()))
	}
	if v, _ := gotSpan.Events().At(0).Attributes().Get("exception.stacktrace"); v.Str() != strings.Repeat("y", 64) {
		t.Errorf("event attribute kept %d bytes, want 64", len(v.Str()))
	}
}
