package logs

import (
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// chunkRef is one sealed chunk: compressed bytes in memory until a flush writes
// them to a block, then a range of the block file. It is immutable; a flush
// replaces the in-memory ref with a block one.
type chunkRef struct {
	meta chunkMeta
	data []byte // in memory (not yet flushed), else nil
	blk  *block
	off  int64
	size int64
}

func (c *chunkRef) bytes() ([]byte, error) {
	if c.blk == nil {
		return c.data, nil
	}
	return c.blk.read(c.off, c.size)
}

// stream is one label set of one tenant: its open head (entries not yet in a
// chunk) and its sealed chunks, oldest first.
type stream struct {
	labels labels.Labels

	mu        sync.Mutex
	head      []Entry
	headBytes int
	chunks    []*chunkRef
	minT      int64 // over head and chunks; for Labels/Series range checks
	maxT      int64
	lastPush  int64 // wall clock, Unix ns: active streams count towards the limit
}

// append adds entries; it returns the chunk it sealed when the head reached
// chunkBytes (the caller counts it as unflushed).
func (s *stream) append(entries []Entry, chunkBytes int, now int64) (added int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		if s.empty() {
			s.minT, s.maxT = e.Timestamp, e.Timestamp
		}
		s.minT = min(s.minT, e.Timestamp)
		s.maxT = max(s.maxT, e.Timestamp)
		s.head = append(s.head, e)
		s.headBytes += len(e.Line)
		added += len(e.Line)
		if s.headBytes >= chunkBytes {
			s.sealLocked()
		}
	}
	s.lastPush = now
	return added
}

func (s *stream) empty() bool { return len(s.head) == 0 && len(s.chunks) == 0 }

// sealLocked compresses the head into a chunk. The head array is not reused:
// queries may still hold it.
func (s *stream) sealLocked() {
	if len(s.head) == 0 {
		return
	}
	entries := slices.Clone(s.head)
	data, meta := encodeChunk(entries)
	s.chunks = append(s.chunks, &chunkRef{meta: meta, data: data})
	s.head, s.headBytes = nil, 0
}

// snapshot returns the chunks overlapping [start, end) and a sorted copy of the
// head entries in range.
func (s *stream) snapshot(start, end int64) ([]*chunkRef, []Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []*chunkRef
	for _, c := range s.chunks {
		if c.meta.MaxT >= start && c.meta.MinT < end {
			cs = append(cs, c)
		}
	}
	var head []Entry
	for _, e := range s.head {
		if e.Timestamp >= start && e.Timestamp < end {
			head = append(head, e)
		}
	}
	slices.SortStableFunc(head, func(a, b Entry) int { return cmpInt(a.Timestamp, b.Timestamp) })
	return cs, head
}

// overlaps reports whether the stream has data in [start, end).
func (s *stream) overlaps(start, end int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.empty() && s.maxT >= start && s.minT < end
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
