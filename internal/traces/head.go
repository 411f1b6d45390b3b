package traces

import (
	"sync"
	"time"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// head holds spans not yet in a block, by tenant and trace ID, so that a trace whose
// spans arrive minutes apart from several services is found in one place.
type head struct {
	mu      sync.RWMutex
	tenants map[string]map[[16]byte]*headTrace
	spans   int
	bytes   int64
	created time.Time
	// walSeg is set when the head is cut: its data lives in WAL segments below it.
	walSeg int
}

type headTrace struct {
	spans []spanrow.Span
}

func newHead() *head {
	return &head{tenants: map[string]map[[16]byte]*headTrace{}, created: time.Now()}
}

// add appends rows and returns how many bytes they added.
func (h *head) add(tenant string, rows []spanrow.Span) int64 {
	var added int64
	for i := range rows {
		added += int64(rows[i].MemSize())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	traces := h.tenants[tenant]
	if traces == nil {
		traces = map[[16]byte]*headTrace{}
		h.tenants[tenant] = traces
	}
	if h.spans == 0 {
		h.created = time.Now()
	}
	for i := range rows {
		t := traces[rows[i].TraceID]
		if t == nil {
			t = &headTrace{}
			traces[rows[i].TraceID] = t
		}
		t.spans = append(t.spans, rows[i])
	}
	h.spans += len(rows)
	h.bytes += added
	return added
}

// trace returns a copy of the spans of one trace.
func (h *head) trace(tenant string, id [16]byte) []spanrow.Span {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if t := h.tenants[tenant][id]; t != nil {
		return append([]spanrow.Span(nil), t.spans...)
	}
	return nil
}

// size returns the span count and byte estimate.
func (h *head) size() (int, int64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.spans, h.bytes
}

// rows returns all spans of a tenant sorted in block order. Only called on a head that
// no longer receives writes.
func (h *head) rows(tenant string) []spanrow.Span {
	h.mu.RLock()
	n := 0
	for _, t := range h.tenants[tenant] {
		n += len(t.spans)
	}
	rows := make([]spanrow.Span, 0, n)
	for _, t := range h.tenants[tenant] {
		rows = append(rows, t.spans...)
	}
	h.mu.RUnlock()
	spanrow.Sort(rows)
	return spanrow.Dedupe(rows)
}

// tenantNames lists the tenants present.
func (h *head) tenantNames() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.tenants))
	for t := range h.tenants {
		out = append(out, t)
	}
	return out
}

// each calls fn with a copy of every trace of the tenant until fn returns false.
// Copies are made in small batches so that the lock is not held during fn.
func (h *head) each(tenant string, fn func(spans []spanrow.Span) bool) {
	h.mu.RLock()
	ids := make([][16]byte, 0, len(h.tenants[tenant]))
	for id := range h.tenants[tenant] {
		ids = append(ids, id)
	}
	h.mu.RUnlock()
	for _, id := range ids {
		if spans := h.trace(tenant, id); spans != nil && !fn(spans) {
			return
		}
	}
}
