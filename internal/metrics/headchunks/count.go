package headchunks

// Count returns the chunks the buffer holds: open ones, which have a slot
// each, and closed ones still in the head (in the chunk files, not yet
// truncated away): what Prometheus's head counts in prometheus_tsdb_head_chunks.
//
// Open chunks are counted from the slabs, not the series: each has exactly
// one slot, and a class's slots in use are those handed out less those
// given back, so the count costs a look at each class rather than a pass
// over a million series. Every stripe lock is taken, as Compact takes them,
// so that no slot is between two chunks (grow), no chunk between its slot
// and the closed list (cut), and no Compact halfway through its moves.
// A truncation running is waited for: until its pass is over, the closed
// list holds the chunks it has moved twice and those it drops.
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
