package traces

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// spanCount is how many spans of one trace the head holds.
func (h *head) spanCount(tenant string, id [16]byte) int {
	sh := &h.shards[shardOf(id)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return len(sh.tenants[tenant][id])
}

// overSpanLimit reports whether a trace of rows (grouped by order, as
// traceOrder returns them) would hold more than max spans in h.
func overSpanLimit(h *head, tenant string, rows []spanrow.Span, order []int32, max int) bool {
	for start := 0; start < len(order); {
		n := traceRun(rows, order, start)
		if n > max || h.spanCount(tenant, rows[order[start]].TraceID)+n > max {
			return true
		}
		start += n
	}
	return false
}

// hasBlobOver reports whether a row holds an encoded attribute blob longer than
// max bytes: only then can one of its string values be (each is a part of its
// blob), so only then need truncateAttributes walk the request.
func hasBlobOver(rows []spanrow.Span, max int) bool {
	for i := range rows {
		r := &rows[i]
		if len(r.Attrs) > max || len(r.Extra) > max || len(r.Resource) > max || len(r.Scope) > max {
			return true
		}
	}
	return false
}

// limitSpansPerTrace removes from td the spans of traces that would hold more
// than max spans in h, and returns how many it removed and the first trace
// they belong to. Concurrent batches of the same trace may each pass the
// check, so the cap is approximate by at most one batch.
func limitSpansPerTrace(h *head, tenant string, td ptrace.Traces, max int) (removed int64, first [16]byte) {
	var seen map[[16]byte]int
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			sss.At(j).Spans().RemoveIf(func(s ptrace.Span) bool {
				id := [16]byte(s.TraceID())
				if seen == nil {
					seen = map[[16]byte]int{}
				}
				n, ok := seen[id]
				if !ok {
					n = h.spanCount(tenant, id)
				}
				if n >= max {
					if removed == 0 {
						first = id
					}
					removed++
					return true
				}
				seen[id] = n + 1
				return false
			})
		}
	}
	return removed, first
}

// truncateAttributes cuts string attribute values (resource, span, event and
// link) to max bytes, and returns how many it cut.
func truncateAttributes(td ptrace.Traces, max int) int {
	cut := 0
	trunc := func(m pcommon.Map) {
		for _, v := range m.All() {
			if v.Type() == pcommon.ValueTypeStr && len(v.Str()) > max {
				v.SetStr(truncateUTF8(v.Str(), max))
				cut++
			}
		}
	}
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		trunc(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				s := spans.At(k)
				trunc(s.Attributes())
				for e := range s.Events().Len() {
					trunc(s.Events().At(e).Attributes())
				}
				for l := range s.Links().Len() {
					trunc(s.Links().At(l).Attributes())
				}
			}
		}
	}
	return cut
}

// truncateUTF8 cuts s to at most max bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, max int) string {
	for max > 0 && max < len(s) && s[max]&0xC0 == 0x80 {
		max--
	}
	return s[:max]
}
