package traces

import (
	"bytes"
	"slices"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces/block"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// scanRefs calls fn with the spans of every trace of the tenant, in place, under
// the trace's shard read lock, until fn returns false. fn must be quick and must not
// keep the slice: it is how search looks at a head of hundreds of thousands of spans
// without copying them.
func (h *head) scanRefs(tenant string, fn func(spans []*spanrow.Span) bool) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for _, spans := range sh.tenants[tenant] {
			if len(spans) > 0 && !fn(spans) {
				sh.mu.RUnlock()
				return
			}
		}
		sh.mu.RUnlock()
	}
}

func refBounds(spans []*spanrow.Span) (start, end int64) {
	start, end = spans[0].Start, spans[0].End()
	for _, s := range spans {
		start, end = min(start, s.Start), max(end, s.End())
	}
	return start, end
}

// headMayMatch checks the hints against a head trace without copying or decoding it:
// intrinsics from the row fields, attributes by walking their encoded form.
func headMayMatch(h traceql.Hints, spans []*spanrow.Span) bool {
	start, end := refBounds(spans)
	if h.MinTraceDuration > 0 && time.Duration(end-start) < h.MinTraceDuration {
		return false
	}
	svc, name, errs, dur := h.ServiceNames == nil, h.SpanNames == nil, !h.RequireError, h.MinSpanDuration == 0
	for _, s := range spans {
		svc = svc || slices.Contains(h.ServiceNames, s.Service)
		name = name || slices.Contains(h.SpanNames, s.Name)
		errs = errs || s.StatusCode == int32(ptrace.StatusCodeError)
		dur = dur || time.Duration(s.Duration) >= h.MinSpanDuration
	}
	if !svc || !name || !errs || !dur {
		return false
	}
	return attrsMayMatch(h, spans)
}

// attrsMayMatch reports whether every attribute hint is met by some span or
// resource of the trace. Hints on events, links and scopes are not checked.
func attrsMayMatch(h traceql.Hints, spans []*spanrow.Span) bool {
	n := len(h.AttrKeys) + len(h.AttrValues) + len(h.AttrCmps)
	if n == 0 {
		return true
	}
	var metBuf [8]bool
	met := metBuf[:0]
	if n > len(metBuf) {
		met = make([]bool, 0, n)
	}
	left := 0
	for i := range n {
		k := attrHintKey(h, i)
		checked := k.Scope == "span" || k.Scope == "resource" || k.Scope == ""
		met = append(met, !checked)
		if checked {
			left++
		}
	}
	visit := func(scope string) func(key []byte, v spanrow.Scalar) {
		return func(key []byte, v spanrow.Scalar) {
			for i := range met {
				if met[i] {
					continue
				}
				k := attrHintKey(h, i)
				if (k.Scope == "" || k.Scope == scope) && k.Key == string(key) && hintHolds(h, i, v) {
					met[i] = true
					left--
				}
			}
		}
	}
	onSpan, onRes := visit("span"), visit("resource")
	var lastRes []byte
	for i, s := range spans {
		if left == 0 {
			break
		}
		_ = spanrow.EachScalar(s.Attrs, onSpan) // a damaged blob just matches nothing
		if i == 0 || !bytes.Equal(s.Resource, lastRes) {
			lastRes = s.Resource
			if attrs, ok := spanrow.ResourceAttrs(lastRes); ok {
				_ = spanrow.EachScalar(attrs, onRes)
			}
		}
	}
	return left == 0
}

// attrHintKey is the key of the i-th attribute hint (keys, then values, then
// comparisons).
func attrHintKey(h traceql.Hints, i int) traceql.ScopedKey {
	if i < len(h.AttrKeys) {
		return h.AttrKeys[i]
	}
	if i -= len(h.AttrKeys); i < len(h.AttrValues) {
		return h.AttrValues[i].ScopedKey
	}
	return h.AttrCmps[i-len(h.AttrValues)].ScopedKey
}

// hintHolds tests the value condition of the i-th attribute hint.
func hintHolds(h traceql.Hints, i int, v spanrow.Scalar) bool {
	if i < len(h.AttrKeys) {
		return true
	}
	if i -= len(h.AttrKeys); i < len(h.AttrValues) {
		return v.Kind == spanrow.KindString && string(v.Str) == h.AttrValues[i].Value
	}
	c := h.AttrCmps[i-len(h.AttrValues)]
	switch v.Kind {
	case spanrow.KindString:
		// The comparison does not keep the string, so a view of the bytes is safe.
		return c.HoldsString(unsafe.String(unsafe.SliceData(v.Str), len(v.Str)))
	case spanrow.KindInt:
		return c.HoldsInt(v.Int)
	case spanrow.KindFloat:
		return c.HoldsFloat(v.Float)
	case spanrow.KindBool:
		return c.HoldsBool(v.Bool)
	}
	return true // arrays and maps: cannot tell here
}

// summarize summarizes a head's spans of the tenant, in place; false if it has none.
func (h *head) summarize(tenant string) (block.Summary, bool) {
	z := block.NewSummarizer()
	n := 0
	h.scanRefs(tenant, func(t []*spanrow.Span) bool {
		start, end := refBounds(t)
		for _, sp := range t {
			z.AddSpan(sp)
		}
		z.AddTraceDuration(end - start)
		n++
		return true
	})
	return z.Summary(), n > 0
}
