package headchunks

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// A chunks.Meta's Ref is either a closed chunk's place in the head chunk
// files or, with openFlag set, a series' open chunk as it was listed: the
// series ref and its sample count then, so that a reader sees the samples
// that were there when it listed them even if more arrive.
const openFlag = 1 << 63

func openRef(ref uint32, num uint16) chunks.ChunkRef {
	return chunks.ChunkRef(openFlag | uint64(ref)<<16 | uint64(num))
}

// Chunks appends to dst the metas of series ref's chunks that overlap
// [mint, maxt], oldest first, and returns it.
func (b *Buffer) Chunks(ref uint32, mint, maxt int64, dst []chunks.Meta) []chunks.Meta {
	m := b.stripe(ref)
	m.Lock()
	defer m.Unlock()
	s := b.existing(ref)
	if s == nil {
		return dst
	}
	from := len(dst)
	b.closedMu.RLock()
	closed := b.closedOf(ref)
	for i := s.lastClosed; i != 0; i = closed[i].prev {
		c := &closed[i]
		if c.maxt < mint {
			break // the rest are older
		}
		if c.mint <= maxt {
			dst = append(dst, chunks.Meta{Ref: chunks.ChunkRef(c.ref), MinTime: c.mint, MaxTime: c.maxt})
		}
	}
	b.closedMu.RUnlock()
	slices.Reverse(dst[from:])
	if s.loc != 0 {
		chunk := b.slabs.bytes(s.loc)
		if first := firstTimestamp(chunk); first <= maxt && s.t >= mint {
			dst = append(dst, chunks.Meta{Ref: openRef(ref, binary.BigEndian.Uint16(chunk)), MinTime: first, MaxTime: s.t})
		}
	}
	return dst
}

// sharedChunk is a closed chunk as the chunk files hand it out: it may be
// the very object their write queue or buffer holds, so it is wrapped to
// keep chunkenc.Pool.Put, which a compactor calls on the chunks it read and
// which skips types it does not know, from emptying it for every later
// reader (and for the write, if still queued). Prometheus's head wraps its
// chunks alike.
type sharedChunk struct{ chunkenc.Chunk }

// Chunk returns the chunk m names, m being from Chunks. An open chunk is
// copied with the samples it had when listed; if it has been closed since,
// the closed chunk is found by its first timestamp.
func (b *Buffer) Chunk(m chunks.Meta) (chunkenc.Chunk, error) {
	if uint64(m.Ref)&openFlag == 0 {
		c, err := b.disk.Chunk(chunks.ChunkDiskMapperRef(m.Ref))
		if err != nil {
			return nil, err
		}
		return sharedChunk{c}, nil
	}
	ref, num := uint32(uint64(m.Ref)>>16), uint16(m.Ref)
	data, diskRef, err := b.openOrClosed(ref, m.MinTime)
	if err != nil {
		return nil, err
	}
	if data == nil {
		chk, err := b.disk.Chunk(diskRef)
		if err != nil {
			return nil, err
		}
		data = append([]byte(nil), chk.Bytes()...)
	}
	binary.BigEndian.PutUint16(data, num)
	return chunkenc.FromData(chunkenc.EncXOR, data)
}

// openOrClosed returns a copy of series ref's open chunk if it starts at
// mint, or else the closed chunk that does.
func (b *Buffer) openOrClosed(ref uint32, mint int64) ([]byte, chunks.ChunkDiskMapperRef, error) {
	m := b.stripe(ref)
	m.Lock()
	defer m.Unlock()
	s := b.existing(ref)
	if s == nil {
		return nil, 0, fmt.Errorf("headchunks: series %d has no chunks", ref)
	}
	if s.loc != 0 {
		if chunk := b.slabs.bytes(s.loc)[:s.n]; firstTimestamp(chunk) == mint {
			return append([]byte(nil), chunk...), 0, nil
		}
	}
	b.closedMu.RLock()
	defer b.closedMu.RUnlock()
	closed := b.closedOf(ref)
	for i := s.lastClosed; i != 0; i = closed[i].prev {
		if c := &closed[i]; c.mint == mint {
			return nil, c.ref, nil
		}
	}
	return nil, 0, fmt.Errorf("headchunks: series %d has no chunk from %d any more", ref, mint)
}
