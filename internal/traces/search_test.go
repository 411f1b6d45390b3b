package traces

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traceql"
)

// searchPiece appends the spans of trace i that service svc sends: a server
// span and a client child, with attributes that vary per trace.
func searchPiece(td ptrace.Traces, i int, svc string, base time.Time) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	rs.Resource().Attributes().PutStr("region", []string{"eu", "us"}[i%2])
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for j := range 2 {
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid(i))
		sp.SetSpanID(pcommon.SpanID{byte(i >> 8), byte(i), svc[0], byte(j)})
		if svc != "frontend" || j == 1 {
			sp.SetParentSpanID(pcommon.SpanID{byte(i >> 8), byte(i), 'f', 0})
		}
		sp.SetName(fmt.Sprintf("%s-op-%d", svc, j))
		start := base.Add(time.Duration(i)*time.Second + time.Duration(len(svc))*time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(5+i%40) * time.Millisecond)))
		if svc == "backend" {
			sp.Attributes().PutInt("http.status_code", int64([]int{200, 404, 500}[i%3]))
			sp.Attributes().PutStr("http.method", []string{"GET", "POST"}[i%2])
			sp.Attributes().PutStr("user.tier", []string{"gold", "platinum", "silver", "bronze", "free"}[i%5])
		}
		if svc == "db" && i%6 == 0 {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
}

// searchFixture stores n traces in three blocks and the head. Every fourth
// trace is split: its db spans arrive one block cut after the rest.
func searchFixture(t *testing.T, n int) (*Store, [][16]byte) {
	t.Helper()
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	return searchFixtureOrdered(t, order)
}

// searchFixtureOrdered is searchFixture sending trace order[k] k-th, so that
// shuffled orders give blocks that overlap in time, as blocks cut by arrival do.
func searchFixtureOrdered(t *testing.T, order []int) (*Store, [][16]byte) {
	t.Helper()
	n := len(order)
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Config{})
	t.Cleanup(func() { s.Close() })
	base := time.Now().Add(-time.Hour)
	var ids [][16]byte
	late := ptrace.NewTraces()
	for part := range 4 {
		td := ptrace.NewTraces()
		late.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
		for _, i := range order[part*n/4 : (part+1)*n/4] {
			ids = append(ids, tid(i))
			searchPiece(td, i, "frontend", base)
			searchPiece(td, i, "backend", base)
			if i%4 == 0 {
				searchPiece(late, i, "db", base)
			} else {
				searchPiece(td, i, "db", base)
			}
		}
		if err := s.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		if part < 3 {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.ConsumeTraces(ctx, late); err != nil {
		t.Fatal(err)
	}
	return s, ids
}

// TestSearchFindsExactlyWhatEvaluationFinds compares every search with
// evaluating the query on every whole trace: push-down may skip work, never
// a match.
func TestSearchFindsExactlyWhatEvaluationFinds(t *testing.T) {
	ctx := context.Background()
	s, ids := searchFixture(t, 400)
	queries := []string{
		`{}`,
		`{span.http.status_code = 500}`,
		`{span.http.status_code >= 404}`,
		`{.http.status_code != 200}`,
		`{span.http.status_code = 500.0}`,
		`{resource.service.name = "backend" && span.http.method = "POST"}`,
		`{resource.region = "eu" && span.http.status_code = 404}`,
		`{.region = "us"}`,
		`{span.user.tier =~ "gold|plat.*"}`,
		`{status = error}`,
		`{name = "db-op-1"}`,
		`{duration > 30ms}`,
		`{traceDuration > 40ms}`,
		`{span.no.such.key = "x"}`,
		`{span.http.method = "DELETE"}`,
		`{resource.service.name = "frontend"} && {status = error}`,
		`{span.http.status_code = 500} >> {resource.service.name = "db"}`,
		`{span.http.status_code = 500} && {name = "db-op-0"}`,
		`{resource.service.name = "db"} | count() > 1`,
		`{span.http.status_code = 200 || span.user.tier = "free"}`,
	}
	for _, src := range queries {
		q, err := traceql.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		var want [][16]byte
		for _, id := range ids {
			td, ok, err := s.FindTrace(ctx, pipeline.DefaultTenant, id, 0, 0)
			if err != nil || !ok {
				t.Fatalf("trace %x: %v %v", id, ok, err)
			}
			if len(q.EvalTrace(td)) > 0 {
				want = append(want, id)
			}
		}
		res, m, err := s.Search(ctx, SearchRequest{Tenant: pipeline.DefaultTenant, Query: q, Limit: 1000})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		var got [][16]byte
		for _, r := range res {
			got = append(got, r.TraceID)
			if r.Trace.SpanCount() != 6 {
				t.Errorf("%s: trace %x returned with %d spans, want all 6", src, r.TraceID, r.Trace.SpanCount())
			}
		}
		sortIDs(got)
		sortIDs(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: search found %d traces, evaluating every trace finds %d", src, len(got), len(want))
		}
		t.Logf("%-70s %3d matches, %3d traces inspected", src, len(got), m.InspectedTraces)
	}
}

func sortIDs(ids [][16]byte) {
	slices.SortFunc(ids, func(a, b [16]byte) int { return slices.Compare(a[:], b[:]) })
}

// TestSelectiveSearchReadsOnlyMatchingTraces checks the push-down itself: an
// attribute comparison that the postings answer inspects no trace that does
// not match, and a small limit reads no more traces than it returns.
func TestSelectiveSearchReadsOnlyMatchingTraces(t *testing.T) {
	ctx := context.Background()
	s, _ := searchFixture(t, 400)
	search := func(src string, limit int) ([]Match, SearchMetrics) {
		q, err := traceql.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		res, m, err := s.Search(ctx, SearchRequest{Tenant: pipeline.DefaultTenant, Query: q, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		return res, m
	}
	res, m := search(`{resource.service.name = "backend" && span.http.status_code = 500}`, 1000)
	if len(res) != 133 || m.InspectedTraces != int64(len(res)) {
		t.Errorf("status 500: %d matches, %d traces inspected; want 133 and 133", len(res), m.InspectedTraces)
	}
	res, m = search(`{}`, 5)
	if len(res) != 5 || m.InspectedTraces > 32 {
		t.Errorf("{} limit 5: %d matches, %d traces inspected", len(res), m.InspectedTraces)
	}
	for i := 1; i < len(res); i++ {
		if res[i].Start > res[i-1].Start {
			t.Fatalf("results not most recent first")
		}
	}
	if want := tid(399); res[0].TraceID != want {
		t.Errorf("most recent trace %x, want %x", res[0].TraceID, want)
	}
}

// TestTraceSplitAcrossBlocksThatEachLackAHalfIsFound covers the case block
// summaries cannot see: a query needing two attributes that only the two pieces
// of one trace hold together, each in a block that lacks the other entirely.
func TestTraceSplitAcrossBlocksThatEachLackAHalfIsFound(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Config{})
	defer s.Close()
	send := func(i int, key string, spanByte byte) {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(tid(i))
		sp.SetSpanID(pcommon.SpanID{spanByte, byte(i)})
		sp.SetName("op")
		now := time.Now()
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		sp.Attributes().PutStr(key, "yes")
		if err := s.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		send(i, "first.half", 1)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	send(7, "second.half", 2) // trace 7's second piece, in the next block only
	send(1000, "second.half", 2)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := traceql.Parse(`{span.first.half = "yes"} && {span.second.half = "yes"}`)
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := s.Search(ctx, SearchRequest{Tenant: pipeline.DefaultTenant, Query: q, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].TraceID != tid(7) || res[0].Trace.SpanCount() != 2 {
		t.Fatalf("found %d traces, want trace 7 whole", len(res))
	}
}

// TestSearchAllTakesTheNewestOfEachSource checks {}, which takes only the limit
// most recent traces of each block and head: over blocks that overlap in time and
// traces split across them, it returns the same traces in the same order, with the
// same spans and spansets, as reading every candidate does, and reads no trace it
// does not return.
func TestSearchAllTakesTheNewestOfEachSource(t *testing.T) {
	ctx := context.Background()
	s, _ := searchFixtureOrdered(t, rand.New(rand.NewPCG(1, 2)).Perm(400))
	q, err := traceql.Parse(`{}`)
	if err != nil {
		t.Fatal(err)
	}
	all, _, _, err := s.searchKeeping(ctx, SearchRequest{Tenant: pipeline.DefaultTenant, Query: q, Limit: 1000}, false)
	if err != nil || len(all) != 400 {
		t.Fatalf("reading every candidate: %d traces, %v; want 400", len(all), err)
	}
	for _, r := range []struct{ start, end int64 }{{0, 0}, {all[300].Start, all[100].End}} {
		for _, limit := range []int{1, 3, 20, 150, 1000} {
			req := SearchRequest{Tenant: pipeline.DefaultTenant, Query: q, Start: r.start, End: r.end, Limit: limit}
			got, m, err := s.Search(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			want, _, _, err := s.searchKeeping(ctx, req, false)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("range %d–%d limit %d", r.start, r.end, limit)
			if m.InspectedTraces != int64(len(got)) {
				t.Errorf("%s: inspected %d traces to return %d", name, m.InspectedTraces, len(got))
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d traces, reading every candidate finds %d", name, len(got), len(want))
			}
			for i := range got {
				if d := matchDiff(got[i], want[i]); d != "" {
					t.Fatalf("%s: result %d: %s", name, i, d)
				}
			}
		}
	}
}

// matchDiff describes how two search results differ, or is empty.
func matchDiff(a, b Match) string {
	if a.TraceID != b.TraceID || a.Start != b.Start || a.End != b.End {
		return fmt.Sprintf("trace %x %d–%d, want %x %d–%d", a.TraceID, a.Start, a.End, b.TraceID, b.Start, b.End)
	}
	var m ptrace.ProtoMarshaler
	pa, err1 := m.MarshalTraces(a.Trace)
	pb, err2 := m.MarshalTraces(b.Trace)
	if err1 != nil || err2 != nil || !bytes.Equal(pa, pb) {
		return fmt.Sprintf("trace %x: stored spans differ", a.TraceID)
	}
	if len(a.Spansets) != len(b.Spansets) {
		return fmt.Sprintf("trace %x: %d spansets, want %d", a.TraceID, len(a.Spansets), len(b.Spansets))
	}
	for i, sa := range a.Spansets {
		sb := b.Spansets[i]
		if len(sa.Spans) != len(sb.Spans) || len(sa.Attributes) != len(sb.Attributes) {
			return fmt.Sprintf("trace %x spanset %d: %d spans, want %d", a.TraceID, i, len(sa.Spans), len(sb.Spans))
		}
		for j := range sa.Spans {
			if sa.Spans[j].Span.SpanID() != sb.Spans[j].Span.SpanID() || len(sa.Spans[j].Selected) != len(sb.Spans[j].Selected) {
				return fmt.Sprintf("trace %x spanset %d: span %d differs", a.TraceID, i, j)
			}
		}
	}
	return ""
}
