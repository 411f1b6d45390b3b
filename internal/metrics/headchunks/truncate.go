package headchunks

import (
	"fmt"
	"math"
	"slices"
)

// Truncation runs beside appends and reads. It goes over the series stripe
// by stripe, holding that stripe's lock and, for the stripe's lists,
// closedMu, and copies the closed chunks each series keeps into a new
// array, moving.next. Until every stripe is passed, a series' closed-chunk
// indices (lastClosed, prev) are into moving.next if its stripe has been
// passed and into closed if not; closedOf says which, for cut (link) and for
// every reader, all of which hold the series' stripe lock. A chunk cut
// meanwhile goes into its series' array: into closed before the pass
// reaches its stripe, so that the pass copies it with the rest of the list,
// and into moving.next after. Once every stripe is passed, moving.next
// replaces closed. An append or a read waits at most for the pass over one
// stripe's series (a 4,096th of them).

// moving is the state of a truncation's pass.
type moving struct {
	next    []closedChunk // the lists of the stripes passed; nil between truncations (closedMu)
	epoch   uint32        // this truncation's number (closedMu)
	cutFile uint32        // the oldest file a chunk cut during the pass went to (closedMu)
	// moved[i] is the epoch of the last truncation that passed stripe i
	// (stripe i's lock).
	moved [1 << stripeBits]uint32
}

const stripeMask = 1<<stripeBits - 1

// Truncate drops every chunk that ends before mint, as Prometheus's head
// does once those samples are in a block, deletes the head chunk files no
// kept chunk is in, and returns, in order, the refs of the series left
// without a chunk (the head then forgets them); a series is judged when
// the pass reaches it, so one may have been given a sample since. Appends
// and reads go on meanwhile, each waiting at most for the pass over its
// stripe. It leaves the slabs its freed chunks leave empty to Compact.
func (b *Buffer) Truncate(mint int64) (empty []uint32, err error) {
	b.truncMu.Lock()
	defer b.truncMu.Unlock()
	b.startMoving()
	oldestFile := uint32(math.MaxUint32)
	var scratch []uint32
	for i := range b.stripes {
		var oldest uint32
		empty, scratch, oldest = b.truncateStripe(i, mint, empty, scratch)
		oldestFile = min(oldestFile, oldest)
		passHook(i)
	}
	oldestFile = min(oldestFile, b.finishMoving())
	slices.Sort(empty)
	// The mapper keeps the file it writes to, and starts a new one. A chunk
	// cut from here on goes to that file or a later one, as in Prometheus's
	// head, which also truncates its files beside appends.
	if err := b.disk.Truncate(oldestFile); err != nil {
		return empty, fmt.Errorf("headchunks: truncate head chunk files before %d: %w", oldestFile, err)
	}
	return empty, nil
}

// passHook runs after the pass over each stripe, with no lock held (tests
// append and read there).
var passHook = func(stripe int) {}

// startMoving opens a truncation's pass with an empty moving.next.
func (b *Buffer) startMoving() {
	b.closedMu.RLock()
	n := len(b.closed)
	b.closedMu.RUnlock()
	next := make([]closedChunk, 1, n) // made outside the lock: it zeroes n×32 bytes
	b.closedMu.Lock()
	defer b.closedMu.Unlock()
	b.moving.epoch++
	b.moving.next = next
	b.moving.cutFile = math.MaxUint32
}

// finishMoving ends the pass, every stripe passed: moving.next becomes
// closed. It returns the oldest file a chunk cut during the pass went to.
func (b *Buffer) finishMoving() uint32 {
	b.closedMu.Lock()
	defer b.closedMu.Unlock()
	b.closed, b.moving.next = b.moving.next, nil
	return b.moving.cutFile
}

// truncateStripe passes the series of stripe i: it copies the closed
// chunks they keep into moving.next and frees their open chunks that end
// before mint. It returns empty with the series left without a chunk
// appended, scratch for the next call, and the oldest file of a chunk kept.
func (b *Buffer) truncateStripe(i int, mint int64, empty, scratch []uint32) ([]uint32, []uint32, uint32) {
	b.stripes[i].Lock()
	defer b.stripes[i].Unlock()
	b.closedMu.Lock()
	defer b.closedMu.Unlock()
	oldest := uint32(math.MaxUint32)
	for p, page := range *b.pages.Load() { // pages a record of stripe i is in cannot change meanwhile
		if page == nil {
			continue
		}
		s := &page[i]
		if s.lastClosed != 0 {
			from := len(b.moving.next)
			s.lastClosed, scratch = b.keepClosed(s.lastClosed, mint, scratch)
			for _, c := range b.moving.next[from:] {
				oldest = min(oldest, fileOf(c))
			}
		}
		if !s.has || s.gone {
			continue
		}
		if s.loc != 0 && s.t < mint {
			b.slabs.release(s.loc)
			s.loc, s.n, s.free = 0, 0, 0
		}
		if s.loc == 0 && s.lastClosed == 0 {
			empty = append(empty, uint32(p<<pageBits|i))
		}
	}
	b.moving.moved[i] = b.moving.epoch
	return empty, scratch, oldest
}

// keepClosed copies the chunks of the list in closed from newest that end
// at or after mint into moving.next, in their order, and returns the new
// list's newest (0 if none) and scratch, a buffer for the list's indices.
func (b *Buffer) keepClosed(newest uint32, mint int64, scratch []uint32) (uint32, []uint32) {
	list := scratch[:0]
	for i := newest; i != 0 && b.closed[i].maxt >= mint; i = b.closed[i].prev {
		list = append(list, i)
	}
	var prev uint32
	for j := len(list) - 1; j >= 0; j-- {
		c := b.closed[list[j]]
		c.prev = prev
		b.moving.next = append(b.moving.next, c)
		prev = uint32(len(b.moving.next) - 1)
	}
	return prev, list
}

// closedOf is the array series ref's closed-chunk indices are into. The
// caller holds ref's stripe lock and closedMu.
func (b *Buffer) closedOf(ref uint32) []closedChunk {
	if b.moving.next != nil && b.moving.moved[ref&stripeMask] == b.moving.epoch {
		return b.moving.next
	}
	return b.closed
}

// link adds c as series ref's newest closed chunk, in the array its list
// is in. The caller holds ref's stripe lock.
func (b *Buffer) link(ref uint32, s *series, c closedChunk) {
	b.closedMu.Lock()
	defer b.closedMu.Unlock()
	list := &b.closed
	if b.moving.next != nil {
		b.moving.cutFile = min(b.moving.cutFile, fileOf(c))
		if b.moving.moved[ref&stripeMask] == b.moving.epoch {
			list = &b.moving.next
		}
	}
	c.prev, c.series = s.lastClosed, ref
	*list = append(*list, c)
	s.lastClosed = uint32(len(*list) - 1)
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
	closed := (cap(b.closed) + cap(b.moving.next)) * 32
	b.closedMu.RUnlock()
	pages := 0
	for _, page := range *b.pages.Load() {
		if page != nil {
			pages++
		}
	}
	return pages*pageSize*40 + b.slabs.inUse() + closed
}
