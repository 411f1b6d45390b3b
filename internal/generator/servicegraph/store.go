package servicegraph

import "go.opentelemetry.io/collector/pdata/ptrace"

// edgeKey identifies a request: the trace and the client span's ID, which the
// server span carries as its parent. A root server span has a zero span ID.
type edgeKey struct {
	trace [16]byte
	span  [8]byte
}

// edge is one request, half or fully seen. While a span updates it, its
// strings alias the row's; own copies them before the edge is kept, since
// the rows' memory may be reused (or be a trace head's arena, which a kept
// string would pin) once Consume returns.
type edge struct {
	key        edgeKey
	expiresAt  int64 // unix ms
	prev, next *edge // insertion (= expiry) order

	connType       string
	client, server string
	clientLatency  float64
	serverLatency  float64
	failed         bool
	peer           string // virtual node name from the span's peer attributes
	root           bool   // a server span without parent: nobody called it
	kind           ptrace.SpanKind
	traceID        [16]byte
	spanID         [8]byte
	clientDims     []string
	serverDims     []string
}

func (e *edge) complete() bool { return e.client != "" && e.server != "" }

// store holds unpaired edges until their counterpart arrives or they expire.
// All edges live for the same wait, so insertion order is expiry order and
// expiring is a walk from the head of a list. Guarded by the processor's mutex.
type store struct {
	m          map[edgeKey]*edge
	head, tail *edge
	free       []*edge
	ttl        int64 // ms
	max        int
	nDims      int
}

func newStore(ttlMs int64, max, nDims int) *store {
	return &store{m: make(map[edgeKey]*edge), ttl: ttlMs, max: max, nDims: nDims}
}

// newEdge returns a blank edge, not yet stored.
func (s *store) newEdge(k edgeKey, nowMs int64) *edge {
	var e *edge
	if n := len(s.free); n > 0 {
		e = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		e = &edge{clientDims: make([]string, s.nDims), serverDims: make([]string, s.nDims)}
	}
	e.key = k
	e.expiresAt = nowMs + s.ttl
	return e
}

// release blanks and recycles an edge that is not in the store; blanking
// drops strings that may alias rows. The free list is bounded by
// max, as is the store, so it cannot grow without limit.
func (s *store) release(e *edge) {
	cd, sd := e.clientDims, e.serverDims
	clear(cd)
	clear(sd)
	*e = edge{clientDims: cd, serverDims: sd}
	if len(s.free) < s.max {
		s.free = append(s.free, e)
	}
}

func (s *store) full() bool { return len(s.m) >= s.max }

func (s *store) insert(e *edge) {
	s.m[e.key] = e
	e.prev, e.next = s.tail, nil
	if s.tail != nil {
		s.tail.next = e
	} else {
		s.head = e
	}
	s.tail = e
}

// remove takes a stored edge out and recycles it.
func (s *store) remove(e *edge) {
	delete(s.m, e.key)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
	s.release(e)
}

// expire calls f for, then removes, every edge whose wait is over at nowMs.
func (s *store) expire(nowMs int64, f func(*edge)) {
	for s.head != nil && s.head.expiresAt <= nowMs {
		e := s.head
		f(e)
		s.remove(e)
	}
}
