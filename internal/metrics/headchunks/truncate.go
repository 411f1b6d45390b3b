package headchunks

import (
	"fmt"
	"math"
)

// Truncation runs beside appends and reads. It goes over the series a few
// stripes at a time (passStripes), holding those stripes' locks and, for
// their lists, closedMu, and copies the closed chunks each series keeps
// into a new array, moving.next. Until every stripe is passed, a series' closed-chunk
// indices (lastClosed, prev) are into moving.next if its stripe has been
// passed and into closed if not; closedOf says which, for cut (link) and for
// every reader, all of which hold the series' stripe lock. A chunk cut
// meanwhile goes into its series' array: into closed before the pass
// reaches its stripe, so that the pass copies it with the rest of the list,
// and into moving.next after. Once every stripe is passed, moving.next
// replaces closed. An append or a read waits at most for the pass over a
// few stripes' series (64 of the 4,096).

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

// The passes (Truncate's, Oldest's, Compact's) find stripe i's series at
// index i of each page: a page holds one series of each stripe.
var _ [pageBits - stripeBits]struct{} = [stripeBits - pageBits]struct{}{}

// Truncate drops every chunk that ends before mint, as Prometheus's head
// does once those samples are in a block, deletes the head chunk files no
// kept chunk is in, and returns, in order, the refs of the series left
// without a chunk (the head then forgets them); a series is judged when
// the pass reaches it, so one may have been given a sample since. Appends
// and reads go on meanwhile, each waiting at most for the pass over its
// stripe and the few beside it. The slabs the chunks it frees leave empty
// are Compact's to give back.
func (b *Buffer) Truncate(mint int64) (empty []uint32, err error) {
	b.truncMu.Lock()
	defer b.truncMu.Unlock()
	b.startMoving()
	oldestFile := uint32(math.MaxUint32)
	var p pass
	for lo := 0; lo < len(b.stripes); lo += passStripes {
		oldestFile = min(oldestFile, b.truncateStripes(lo, lo+passStripes, mint, &p))
		passHook(lo + passStripes)
	}
	oldestFile = min(oldestFile, b.finishMoving())
	for _, refs := range p.empty {
		empty = append(empty, refs...)
	}
	// The mapper keeps the file it writes to, and starts a new one. A chunk
	// cut from here on goes to that file or a later one, as in Prometheus's
	// head, which also truncates its files beside appends.
	if err := b.disk.Truncate(oldestFile); err != nil {
		return empty, fmt.Errorf("headchunks: truncate head chunk files before %d: %w", oldestFile, err)
	}
	return empty, nil
}

// pass is what a truncation's pass gathers as it goes.
type pass struct {
	empty   [][]uint32 // by page, the series left without a chunk, in order
	scratch []uint32   // keepClosed's
}

// passStripes is how many stripes the pass takes at a time: their series'
// records lie side by side in each page, so the pass reads lines, not
// scattered records. At 1M series (BenchmarkTruncateAppendWait/quiet),
// beside the pass under every lock as it was: one stripe at a time took
// several times as long, 16 at a time 1.3–1.6 times the CPU, 64 at a time
// about as much; a group's share of the pass is then half a millisecond.
const passStripes = 64

// passHook runs after the pass over each group of stripes, given how many
// are passed, with no lock held (tests append and read there).
var passHook = func(passed int) {}

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

// truncateStripes passes the series of stripes lo to hi-1: it copies the
// closed chunks they keep into moving.next, frees their open chunks that
// end before mint, and adds those left without a chunk to ps.empty. It
// returns the oldest file of a chunk kept.
func (b *Buffer) truncateStripes(lo, hi int, mint int64, ps *pass) uint32 {
	for i := lo; i < hi; i++ {
		b.stripes[i].Lock()
	}
	defer func() {
		for i := lo; i < hi; i++ {
			b.stripes[i].Unlock()
		}
	}()
	b.closedMu.Lock()
	defer b.closedMu.Unlock()
	oldest := uint32(math.MaxUint32)
	pages := *b.pages.Load() // the pages a record of these stripes is in cannot change meanwhile
	if len(ps.empty) < len(pages) {
		ps.empty = append(ps.empty, make([][]uint32, len(pages)-len(ps.empty))...)
	}
	for p, page := range pages {
		if page == nil {
			continue
		}
		for i := lo; i < hi; i++ {
			s := &page[i]
			if s.lastClosed != 0 {
				from := len(b.moving.next)
				s.lastClosed, ps.scratch = b.keepClosed(s.lastClosed, mint, ps.scratch)
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
				ps.empty[p] = append(ps.empty[p], uint32(p<<pageBits|i))
			}
		}
	}
	for i := lo; i < hi; i++ {
		b.moving.moved[i] = b.moving.epoch
	}
	return oldest
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
