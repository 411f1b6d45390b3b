package headchunks

import "math"

// Oldest returns the timestamp of the oldest sample the buffer holds, the
// first of the oldest chunk kept; ok is false if it holds none. A head sets
// its MinTime from it after Truncate, so that it is not compacted again
// from a time where no sample is left. It is one pass over the series and
// their closed chunks, with appends and reads stopped.
func (b *Buffer) Oldest() (t int64, ok bool) {
	for i := range b.stripes {
		b.stripes[i].Lock()
	}
	defer func() {
		for i := range b.stripes {
			b.stripes[i].Unlock()
		}
	}()
	b.closedMu.RLock()
	defer b.closedMu.RUnlock()
	t = math.MaxInt64
	for _, page := range *b.pages.Load() {
		if page == nil {
			continue
		}
		for i := range page {
			if first, has := b.first(&page[i]); has {
				t, ok = min(t, first), true
			}
		}
	}
	return t, ok
}

// first is the timestamp of series s's oldest sample still held. The
// caller holds its stripe lock and closedMu.
func (b *Buffer) first(s *series) (int64, bool) {
	if c := s.lastClosed; c != 0 {
		for b.closed[c].prev != 0 {
			c = b.closed[c].prev
		}
		return b.closed[c].mint, true
	}
	if s.loc != 0 {
		return firstTimestamp(b.slabs.bytes(s.loc)), true
	}
	return 0, false
}

// Holds reports whether series ref has a sample in the buffer. A head
// removes the series that hold none after a truncation: those it dropped
// every chunk of, and those created but never given a sample.
func (b *Buffer) Holds(ref uint32) bool {
	m := b.stripe(ref)
	m.Lock()
	defer m.Unlock()
	s := b.existing(ref)
	return s != nil && (s.loc != 0 || s.lastClosed != 0)
}
