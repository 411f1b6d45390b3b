package traces

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// ingestPaths are the two ways spans reach the store: decoded into pdata
// (ConsumeTraces), and as the request's bytes decoded straight into rows
// (ConsumeRows, through the same path serve builds), which hands batches a
// limit applies to over to ConsumeTraces.
var ingestPaths = []struct {
	name    string
	consume func(ctx context.Context, s *Store, td ptrace.Traces) error
}{
	{"pdata", func(ctx context.Context, s *Store, td ptrace.Traces) error { return s.ConsumeTraces(ctx, td) }},
	{"rows", func(ctx context.Context, s *Store, td ptrace.Traces) error {
		req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			return err
		}
		path := &pipeline.RowTraces{Store: s, Traces: s}
		return path.ConsumeRawTraces(ctx, req, td.SpanCount())
	}},
}

func TestSpansOverPerTraceLimitAreReportedAsPartialSuccess(t *testing.T) {
	for _, p := range ingestPaths {
		t.Run(p.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), Config{MaxSpansPerTrace: 5})
			defer s.Close()
			ctx := context.Background()
			base := time.Now()

			td := ptrace.NewTraces()
			spansOf(td, 1, "svc", 0, 3, base)
			if err := p.consume(ctx, s, td); err != nil {
				t.Fatalf("under the limit: %v", err)
			}
			td = ptrace.NewTraces()
			spansOf(td, 1, "svc", 3, 4, base) // 3 + 4 = 7 > 5
			spansOf(td, 2, "svc", 0, 2, base) // another trace is unaffected
			err := p.consume(ctx, s, td)
			pe, ok := pipeline.AsPartial(err)
			if !ok || pe.Rejected != 2 || !strings.Contains(pe.Error(), "TRACE_TOO_LARGE: max size of trace (5 spans, max_spans_per_trace) exceeded while adding 2 spans to trace") {
				t.Fatalf("over the limit: %v, want a partial success refusing 2 spans", err)
			}
			mustFind(t, s, pipeline.DefaultTenant, 1, 5)
			mustFind(t, s, pipeline.DefaultTenant, 2, 2)
		})
	}
}

func TestSpansOverPerTraceLimitAreCutFromTheBatchPassedOn(t *testing.T) {
	s := openStore(t, t.TempDir(), Config{MaxSpansPerTrace: 5})
	defer s.Close()
	td := ptrace.NewTraces()
	spansOf(td, 1, "svc", 0, 7, time.Now())
	if _, ok := pipeline.AsPartial(s.ConsumeTraces(context.Background(), td)); !ok {
		t.Fatal("want a partial success")
	}
	if td.SpanCount() != 5 {
		t.Errorf("the batch passed on holds %d spans, want the 5 accepted", td.SpanCount())
	}
}

func TestLongAttributesAreTruncated(t *testing.T) {
	for _, p := range ingestPaths {
		t.Run(p.name, func(t *testing.T) { testLongAttributesAreTruncated(t, p.consume) })
	}
}

func testLongAttributesAreTruncated(t *testing.T, consume func(context.Context, *Store, ptrace.Traces) error) {
	s := openStore(t, t.TempDir(), Config{MaxAttributeBytes: 64})
	defer s.Close()
	td := ptrace.NewTraces()
	spansOf(td, 3, "svc", 0, 1, time.Now())
	span := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	span.Attributes().PutStr("db.statement", strings.Repeat("é", 100)) // 200 bytes
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("k8s.pod.labels", strings.Repeat("x", 65))
	span.Events().AppendEmpty().Attributes().PutStr("exception.stacktrace", strings.Repeat("y", 300))
	if err := consume(context.Background(), s, td); err != nil {
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

func TestRowsAreStoredWithoutPdata(t *testing.T) {
	s := openStore(t, t.TempDir(), Config{MaxSpansPerTrace: 5})
	defer s.Close()
	ctx := context.Background()
	viaPdata := 0
	path := &pipeline.RowTraces{Store: s, Traces: pipeline.TracesFunc(func(ctx context.Context, td ptrace.Traces) error {
		viaPdata++
		return s.ConsumeTraces(ctx, td)
	})}
	consume := func(td ptrace.Traces) error {
		req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		return path.ConsumeRawTraces(ctx, req, td.SpanCount())
	}
	td := ptrace.NewTraces()
	spansOf(td, 1, "svc", 0, 4, time.Now())
	if err := consume(td); err != nil || viaPdata != 0 {
		t.Fatalf("under the limits: err %v, %d batches through pdata; want neither", err, viaPdata)
	}
	mustFind(t, s, pipeline.DefaultTenant, 1, 4)

	// Over a limit, the rows are refused before anything is kept.
	td = ptrace.NewTraces()
	spansOf(td, 1, "svc", 4, 2, time.Now())
	rows, err := spanrow.FromTraces(td, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeRows(ctx, rows); !errors.Is(err, pipeline.ErrWantTraces) {
		t.Fatalf("ConsumeRows over the limit: %v, want ErrWantTraces", err)
	}
	mustFind(t, s, pipeline.DefaultTenant, 1, 4)
	if _, ok := pipeline.AsPartial(consume(td)); !ok || viaPdata != 1 {
		t.Fatalf("over the limit: want a partial success through pdata, got %d batches through it", viaPdata)
	}
	mustFind(t, s, pipeline.DefaultTenant, 1, 5)
}
