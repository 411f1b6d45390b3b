package headchunks

import (
	"fmt"
	"math"
)

// Truncate drops every chunk that ends before mint, as Prometheus's head
// does once those samples are in a block, deletes the head chunk files no
// kept chunk is in, and returns the refs of the series left without a chunk
// (the head then forgets them). It stops all appends and reads while it
// runs: one pass over the series and the closed chunks.
func (b *Buffer) Truncate(mint int64) (empty []uint32, err error) {
	for i := range b.stripes {
		b.stripes[i].Lock()
	}
	defer func() {
		for i := range b.stripes {
			b.stripes[i].Unlock()
		}
	}()
	b.closedMu.Lock()
	defer b.closedMu.Unlock()

	kept := make([]closedChunk, 1, len(b.closed))
	oldestFile := uint32(math.MaxUint32)
	for p, page := range *b.pages.Load() {
		if page == nil {
			continue
		}
		for i := range page {
			s := &page[i]
			if !s.has || s.gone {
				continue
			}
			ref := uint32(p<<pageBits | i)
			s.lastClosed, kept = b.keepClosed(s.lastClosed, mint, kept)
			if s.loc != 0 && s.t < mint {
				b.slabs.release(s.loc)
				s.loc, s.n, s.free = 0, 0, 0
			}
			if s.loc == 0 && s.lastClosed == 0 {
				empty = append(empty, ref)
			}
		}
	}
	for _, c := range kept[1:] {
		oldestFile = min(oldestFile, fileOf(c))
	}
	b.closed = kept
	b.compact()
	// The mapper keeps the file it writes to, and starts a new one.
	if err := b.disk.Truncate(oldestFile); err != nil {
		return empty, fmt.Errorf("headchunks: truncate head chunk files before %d: %w", oldestFile, err)
	}
	return empty, nil
}

// keepClosed copies the chunks of the list from newest that end at or
// after mint into kept, in their order, and returns the new list's newest.
func (b *Buffer) keepClosed(newest uint32, mint int64, kept []closedChunk) (uint32, []closedChunk) {
	var list []uint32
	for i := newest; i != 0 && b.closed[i].maxt >= mint; i = b.closed[i].prev {
		list = append(list, i)
	}
	var prev uint32
	for j := len(list) - 1; j >= 0; j-- {
		c := b.closed[list[j]]
		c.prev = prev
		kept = append(kept, c)
		prev = uint32(len(kept) - 1)
	}
	return prev, kept
}

func fileOf(c closedChunk) uint32 {
	seq, _ := c.ref.Unpack()
	return uint32(seq)
}

// Bytes is the memory the buffer holds: its series records, its slabs and
// its closed chunks' metadata (not the head chunk files, which the kernel
// pages in when read).
func (b *Buffer) Bytes() int {
	b.closedMu.RLock()
	closed := cap(b.closed) * 32
	b.closedMu.RUnlock()
	pages := 0
	for _, page := range *b.pages.Load() {
		if page != nil {
			pages++
		}
	}
	return pages*pageSize*40 + b.slabs.inUse() + closed
}
