package headchunks

// Count returns the chunks the buffer holds: open ones, which have a slot
// each, and closed ones still in the head (in the chunk files, not yet
// truncated away): what Prometheus's head counts in prometheus_tsdb_head_chunks.
//
// Open chunks are counted from the slabs, not the series: each has exactly
// one slot, and a class's slots in use are those handed out less those
// given back, so the count costs a look at each class rather than a pass
// over a million series. Every stripe lock is taken so that no slot is
// between two chunks (grow) and no chunk between its slot and the closed
// list (cut). A truncation or a Compact running is waited for: until a
// truncation's pass is over, the closed list holds the chunks it has moved
// twice and those it drops, and until a Compact's is, the slots it is to
// drop are neither free nor in use.
func (b *Buffer) Count() (open, closed int) {
	b.truncMu.Lock()
	defer b.truncMu.Unlock()
	for i := range b.stripes {
		b.stripes[i].Lock()
	}
	defer func() {
		for i := range b.stripes {
			b.stripes[i].Unlock()
		}
	}()
	b.closedMu.RLock()
	closed = len(b.closed) - 1 // [0] is no chunk
	b.closedMu.RUnlock()
	return b.slabs.used(), closed
}

// used is the slots handed out and not given back, class 0's slot 0 (never
// used) left out.
func (s *slabs) used() int {
	n := -1
	for c := range s.classes {
		cl := &s.classes[c]
		cl.mu.Lock()
		n += int(cl.next) - len(cl.free)
		cl.mu.Unlock()
	}
	return n
}
