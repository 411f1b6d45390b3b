package headchunks

import "math"

// Oldest returns the timestamp of the oldest sample the buffer holds, the
// first of the oldest chunk kept; ok is false if it holds none. A head sets
// its MinTime from it after Truncate, so that it is not compacted again
// from a time where no sample is left. It is one pass over the series and
// their closed chunks, passStripes stripes at a time as Truncate's, so an
// append or a read waits at most for those stripes' series; a series is
// read when the pass reaches it.
func (b *Buffer) Oldest() (t int64, ok bool) {
	t = math.MaxInt64
	for lo := 0; lo < len(b.stripes); lo += passStripes {
		if first, has := b.oldestIn(lo, lo+passStripes); has {
			t, ok = min(t, first), true
		}
	}
	return t, ok
}

// oldestIn is Oldest for the series of stripes lo to hi-1.
func (b *Buffer) oldestIn(lo, hi int) (t int64, ok bool) {
	for i := lo; i < hi; i++ {
		b.stripes[i].Lock()
	}
	defer func() {
		for i := lo; i < hi; i++ {
			b.stripes[i].Unlock()
		}
	}()
	b.closedMu.RLock()
	defer b.closedMu.RUnlock()
	t = math.MaxInt64
	for p, page := range *b.pages.Load() {
		if page == nil {
			continue
		}
		for i := lo; i < hi; i++ {
			if first, has := b.first(uint32(p<<pageBits|i), &page[i]); has {
				t, ok = min(t, first), true
			}
		}
	}
	return t, ok
}

// first is the timestamp of series ref's oldest sample still held; s is
// its record. The caller holds its stripe lock and closedMu.
func (b *Buffer) first(ref uint32, s *series) (int64, bool) {
	if c := s.lastClosed; c != 0 {
		closed := b.closedOf(ref)
		for closed[c].prev != 0 {
			c = closed[c].prev
		}
		return closed[c].mint, true
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
