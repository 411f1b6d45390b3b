package traces

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// headShards spreads traces over independently locked maps so that concurrent
// writers (and the allocations they make under the lock) do not queue on one mutex.
const headShards = 16

// head holds spans not yet in a block, by tenant and trace ID, so that a trace whose
// spans arrive minutes apart from several services is found in one place.
type head struct {
	shards  [headShards]headShard
	spans   atomic.Int64
	bytes   atomic.Int64
	created atomic.Int64 // Unix ns of the first span added
	// walSeg is set when the head is cut: its data lives in WAL segments below it.
	walSeg int
}

type headShard struct {
	mu      sync.RWMutex
	tenants map[string]map[[16]byte][]*spanrow.Span
}

func newHead() *head {
	h := &head{}
	for i := range h.shards {
		h.shards[i].tenants = map[string]map[[16]byte][]*spanrow.Span{}
	}
	return h
}

func shardOf(id [16]byte) int { return int(id[15]) % headShards }

// Index costs the head pays on top of the spans themselves, so that the byte
// budget tracks the real heap. A trace's map entry (16-byte key, 24-byte slice
// header, control byte) in a Swiss table kept between 7/16 and 7/8 full averages
// about 64 bytes; each span adds one pointer to its trace's slice.
const (
	traceEntryBytes = 64
	spanPtrBytes    = 8
)

// add inserts rows, whose traceOrder is order, and returns how many bytes they
// added. The head keeps pointers into rows (the batch slice), so spans are not
// copied; rows must not be reused. Grouped by trace, each trace takes its shard
// lock once per batch.
func (h *head) add(tenant string, rows []spanrow.Span, order []int32) int64 {
	added := batchMemSize(rows)
	h.created.CompareAndSwap(0, time.Now().UnixNano())
	for start := 0; start < len(order); {
		id := rows[order[start]].TraceID
		end := start + traceRun(rows, order, start)
		sh := &h.shards[shardOf(id)]
		sh.mu.Lock()
		traces := sh.tenants[tenant]
		if traces == nil {
			traces = map[[16]byte][]*spanrow.Span{}
			sh.tenants[tenant] = traces
		}
		t, ok := traces[id]
		if !ok {
			added += traceEntryBytes
		}
		oldCap := cap(t)
		t = slices.Grow(t, end-start) // exact for a trace's first batch, the usual case
		for _, i := range order[start:end] {
			t = append(t, &rows[i])
		}
		added += int64(cap(t)-oldCap) * spanPtrBytes
		traces[id] = t
		sh.mu.Unlock()
		start = end
	}
	h.spans.Add(int64(len(rows)))
	h.bytes.Add(added)
	return added
}

// traceOrder returns the indexes of rows grouped by trace: sorted by trace ID,
// the rows of one trace in batch order. SDKs and forwarders mostly send a
// trace's spans next to each other, so the runs of one ID are sorted rather
// than the rows, each by its ID as two integers and its position.
func traceOrder(rows []spanrow.Span) []int32 {
	type run struct {
		hi, lo   uint64
		start, n int32
	}
	var runs []run
	for i := range rows {
		if i > 0 && rows[i].TraceID == rows[i-1].TraceID {
			runs[len(runs)-1].n++
			continue
		}
		id := &rows[i].TraceID
		runs = append(runs, run{binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:]), int32(i), 1})
	}
	slices.SortFunc(runs, func(a, b run) int {
		switch {
		case a.hi != b.hi:
			return cmp.Compare(a.hi, b.hi)
		case a.lo != b.lo:
			return cmp.Compare(a.lo, b.lo)
		}
		return cmp.Compare(a.start, b.start)
	})
	order := make([]int32, 0, len(rows))
	for _, r := range runs {
		for i := r.start; i < r.start+r.n; i++ {
			order = append(order, i)
		}
	}
	return order
}

// traceRun is how many entries of order from start belong to one trace.
func traceRun(rows []spanrow.Span, order []int32, start int) int {
	id := &rows[order[start]].TraceID
	n := 1
	for start+n < len(order) && rows[order[start+n]].TraceID == *id {
		n++
	}
	return n
}

// batchMemSize is the heap a batch of rows holds: every span's own cost, plus each
// distinct resource and scope blob once (neighbouring rows of one batch share them).
func batchMemSize(rows []spanrow.Span) int64 {
	var n int64
	var lastRes, lastScope *byte
	for i := range rows {
		r := &rows[i]
		n += int64(r.MemSize())
		if p := unsafe.SliceData(r.Resource); p != lastRes {
			n += int64(len(r.Resource))
			lastRes = p
		}
		if p := unsafe.SliceData(r.Scope); p != lastScope {
			n += int64(len(r.Scope))
			lastScope = p
		}
	}
	return n
}

// trace returns a copy of the spans of one trace.
func (h *head) trace(tenant string, id [16]byte) []spanrow.Span {
	sh := &h.shards[shardOf(id)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return copyRows(nil, sh.tenants[tenant][id])
}

// size returns the span count and byte estimate.
func (h *head) size() (int, int64) { return int(h.spans.Load()), h.bytes.Load() }

// age is how long ago the first span arrived (0 for an empty head).
func (h *head) age() time.Duration {
	c := h.created.Load()
	if c == 0 {
		return 0
	}
	return time.Since(time.Unix(0, c))
}

// eachSorted calls fn with every trace of the tenant in ascending trace ID order,
// its spans in block order (spanrow.SortTrace) and deduplicated, until fn returns
// an error. fn gets pointers to the head's spans in a reused slice, so a cut head
// is written without a copy of its spans. Only called on a head that no longer
// receives writes.
func (h *head) eachSorted(tenant string, fn func(spans []*spanrow.Span) error) error {
	type trace struct {
		id    [16]byte
		spans []*spanrow.Span
	}
	var traces []trace
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for id, spans := range sh.tenants[tenant] {
			traces = append(traces, trace{id, spans})
		}
		sh.mu.RUnlock()
	}
	slices.SortFunc(traces, func(a, b trace) int { return bytes.Compare(a.id[:], b.id[:]) })
	var ptrs []*spanrow.Span
	for i := range traces {
		// The trace's own slice is left alone, as readers may be copying it.
		ptrs = append(ptrs[:0], traces[i].spans...)
		if len(ptrs) == 0 {
			continue
		}
		spanrow.SortTrace(ptrs)
		if err := fn(spanrow.DedupePtrs(ptrs)); err != nil {
			return err
		}
	}
	return nil
}

// tenantNames lists the tenants present.
func (h *head) tenantNames() []string {
	seen := map[string]bool{}
	var out []string
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for t := range sh.tenants {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// tenantSpans counts the spans the head holds for the tenant.
func (h *head) tenantSpans(tenant string) int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for _, spans := range sh.tenants[tenant] {
			n += len(spans)
		}
		sh.mu.RUnlock()
	}
	return n
}

// each calls fn with a copy of every trace of the tenant until fn returns false.
// Copies are made one at a time so that no lock is held during fn.
func (h *head) each(tenant string, fn func(spans []spanrow.Span) bool) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		ids := make([][16]byte, 0, len(sh.tenants[tenant]))
		for id := range sh.tenants[tenant] {
			ids = append(ids, id)
		}
		sh.mu.RUnlock()
		for _, id := range ids {
			if spans := h.trace(tenant, id); spans != nil && !fn(spans) {
				return
			}
		}
	}
}

// has reports whether the head holds spans of the trace.
func (h *head) has(tenant string, id [16]byte) bool {
	sh := &h.shards[shardOf(id)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	_, ok := sh.tenants[tenant][id]
	return ok
}

func copyRows(dst []spanrow.Span, src []*spanrow.Span) []spanrow.Span {
	if len(src) == 0 {
		return dst
	}
	dst = slices.Grow(dst, len(src))
	for _, r := range src {
		dst = append(dst, *r)
	}
	return dst
}
