package block

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traces/backend"
)

// A block's summary is built in the same pass as its tag index, which hands the
// summary only the values it had not indexed yet. It must be the summary that
// Summarizer.AddSpan (the head's path) gives for the same spans, also where the
// caps of either the index or the summary cut values off.
func TestWriterSummaryMatchesSummarizer(t *testing.T) {
	td := ptrace.NewTraces()
	const n = 12000 // more distinct values than the index keeps for one key
	for r := range 3 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprint("svc-", r))
		rs.Resource().Attributes().PutInt("pod", int64(r))
		if r == 2 {
			rs.Resource().Attributes().PutEmptySlice("list").AppendEmpty().SetInt(1)
		}
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := r; i < n; i += 3 {
			sp := spans.AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{byte(i >> 16), byte(i >> 8 / 4), 1})
			sp.SetSpanID(pcommon.SpanID{byte(i >> 8), byte(i), 1})
			if i < 300 { // names seen once, then more names than a summary lists
				sp.SetName(fmt.Sprint("once-", i))
			} else {
				sp.SetName(fmt.Sprint("op-", i%1200))
			}
			sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1e6))
			sp.SetEndTimestamp(sp.StartTimestamp() + pcommon.Timestamp(int64(i%10+1)*1e6))
			a := sp.Attributes()
			a.PutStr("method", []string{"GET", "POST", "PUT"}[i%3])
			if i%5 == 0 { // the same text as a string and as an int
				a.PutStr("code", "200")
			} else {
				a.PutInt("code", int64([]int{200, 404}[i%2]))
			}
			a.PutStr("user", fmt.Sprint("u-", i%500)) // more values than a summary lists
			a.PutInt("req", int64(i))                 // more values than the index keeps
			a.PutStr("big", strings.Repeat("x", 300+i%3))
			a.PutDouble("ratio", float64(i%4)/4)
			a.PutBool("cached", i%2 == 0)
			a.PutStr(fmt.Sprint("k", i%2100), "v") // more keys than either keeps
			if i%11 == 0 {
				a.PutEmptySlice("tags").AppendEmpty().SetStr("x")
			}
			if i%7 == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
	}
	rows := sortedRows(t, td)
	be, _ := backend.NewLocal(t.TempDir())
	meta, err := Write(context.Background(), be, "t", "b", 0, rows)
	if err != nil {
		t.Fatal(err)
	}
	z := NewSummarizer()
	for start := 0; start < len(rows); {
		end, lo, hi := start, rows[start].Start, rows[start].End()
		for ; end < len(rows) && rows[end].TraceID == rows[start].TraceID; end++ {
			z.AddSpan(&rows[end])
			lo, hi = min(lo, rows[end].Start), max(hi, rows[end].End())
		}
		z.AddTraceDuration(hi - lo)
		start = end
	}
	want := z.Summary()
	if want.SpanTagsComplete || want.NamesComplete || len(want.SpanTags["user"].Values) != maxValuesPerKey {
		t.Fatalf("the spans do not reach the summary's caps: %+v", want)
	}
	if !reflect.DeepEqual(meta.Summary, want) {
		t.Errorf("block summary differs from the summarizer's\nblock:      %+v\nsummarizer: %+v", meta.Summary, want)
	}
}
