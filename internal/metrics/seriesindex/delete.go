package seriesindex

import (
	"hash/maphash"
	"math"
	"slices"
)

// deadOff marks a removed series in Index.offs; no arena offset reaches it
// (an arena stops a page short of 4 GiB).
const deadOff = math.MaxUint32

// Delete removes the series for which drop returns true and returns how
// many it removed. The refs of the others do not change, and a removed ref
// is never given again (a head's samples are indexed by ref): adding a
// removed series again creates it under a new ref.
//
// drop runs with every lock of the index held, so no Add returns a ref
// between drop choosing it and its removal; drop must not call the Index.
// Queries and Adds wait for Delete, whose work is the removed series'
// labels and the postings lists of their values, plus a copy of the
// series offsets (4 B a ref); and, now and then, resizing hash tables and
// renumbering the symbols, which reads and rewrites every series.
//
// A removed series still costs its 4 B in the offsets, for good. The
// symbols of its names and values that no other series has (the string, a
// 4-byte offset and 5 bytes of table a symbol) stay until such symbols are
// half of all; then the others are renumbered and every series encoded
// again. Its encoded labels stay in the series arena until removed series
// hold a quarter of it; then the live series are copied to new pages. Old
// pages are freed once no snapshot (Reader call) and no string handed out
// uses them.
func (ix *Index) Delete(drop func(ref uint32) bool) int {
	for i := range ix.shards {
		ix.shards[i].mu.Lock()
		defer ix.shards[i].mu.Unlock()
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var gone []uint32
	isGone := make(bitset, len(ix.offs)/64+1)
	for i, off := range ix.offs {
		if off != deadOff && drop(uint32(i+1)) {
			gone = append(gone, uint32(i+1))
			isGone.set(uint32(i + 1))
		}
	}
	if len(gone) == 0 {
		return 0
	}
	// Both read the removed series' labels, and the value tables read
	// values through their postings' first series, so the offsets and
	// arena change last.
	ix.deletes++
	ix.removeFromShards(gone)
	ix.removePostings(gone, isGone)
	ix.shrinkTables()
	ix.removeSeries(gone)
	ix.collectSymbols()
	return len(gone)
}

// shrinkTables halves (or more) the hash tables of series and of values
// that removals left at most a quarter full, so that a head's memory
// follows its active series down as it does up. A table grows when three
// quarters full, to three eighths, so only removing a third of its entries
// or more shrinks it, and it is then at most half full. The caller holds
// every shard's mu and ix.mu.
func (ix *Index) shrinkTables() {
	for i := range ix.shards {
		sh := &ix.shards[i]
		if size := shrunk(sh.n, len(sh.table), 64); size > 0 {
			ix.resize(sh, size)
		}
	}
	for _, t := range ix.names {
		if size := shrunk(t.n, len(t.slots), 8); size > 0 {
			ix.resizeValues(t, size)
		}
	}
}

// shrunk returns the size, at least least, to which a table of size slots
// holding n entries shrinks, 0 if it stays.
func shrunk(n, size, least int) int {
	if n*4 > size || size <= least {
		return 0
	}
	to := least
	for to < n*2 {
		to *= 2
	}
	if to >= size {
		return 0
	}
	return to
}

// bitset is a set of refs, a bit each.
type bitset []uint64

func (b bitset) set(r uint32)      { b[r/64] |= 1 << (r % 64) }
func (b bitset) has(r uint32) bool { return b[r/64]&(1<<(r%64)) != 0 }

// removeFromShards forgets the gone series in the series hash tables. The
// caller holds every shard's mu and ix.mu.
func (ix *Index) removeFromShards(gone []uint32) {
	for _, ref := range gone {
		enc := ix.series.bytes(ix.offs[ref-1])
		h := maphash.Bytes(ix.seed, enc)
		sh := &ix.shards[h>>(64-shardBits)]
		slot, r := ix.find(sh, enc, h)
		if r != ref {
			panic("seriesindex: a series is missing from its shard")
		}
		ix.unslotSeries(sh, slot)
	}
}

// unslotSeries empties slot i of sh and moves back the entries after it
// that their hash lets move, so that linear probing still finds every
// series without tombstones.
func (ix *Index) unslotSeries(sh *shard, i int) {
	mask := len(sh.table) - 1
	for j := (i + 1) & mask; sh.table[j] != 0; j = (j + 1) & mask {
		h := maphash.Bytes(ix.seed, ix.series.bytes(ix.offs[sh.table[j]-1]))
		if canMove(int(h)&mask, i, j) {
			sh.table[i], sh.tags[i] = sh.table[j], sh.tags[j]
			i = j
		}
	}
	sh.table[i], sh.tags[i] = 0, 0
	sh.n--
}

// canMove reports whether the entry at slot j, whose home slot is h, may
// move to the hole at i: unless h lies cyclically in (i, j], the probe for
// the entry passes i before j.
func canMove(h, i, j int) bool {
	if i <= j {
		return h <= i || h > j
	}
	return h <= i && h > j
}

// removePostings takes the gone series out of the postings of each value
// they have, and values no series has any more out of their tables. The
// caller holds ix.mu.
func (ix *Index) removePostings(gone []uint32, isGone bitset) {
	pairs := map[[2]uint32]uint32{} // name and value → a gone series with them
	for _, ref := range gone {
		ix.eachLabel(ref, func(n, v uint32) { pairs[[2]uint32{n, v}] = ref })
	}
	for nv, ref := range pairs {
		t := ix.names[nv[0]]
		i := ix.slotHeld(t, nv[1], ref)
		if p := ix.without(t.slots[i], isGone); p != 0 {
			t.slots[i] = p
		} else {
			ix.unslotValue(t, i)
		}
		if t.n == 0 {
			delete(ix.names, nv[0])
		}
	}
}

// slotHeld is slot(t, v) for a value v that series ref has: a slot holding
// another single series cannot be v's (whose posting is ref or a list), so
// only lists' values are read, which spares a read of a series (a cache
// miss) per slot probed in tables of values unique per series.
func (ix *Index) slotHeld(t *values, v, ref uint32) int {
	mask := len(t.slots) - 1
	for i := home(v, mask); ; i = (i + 1) & mask {
		p := t.slots[i]
		if p == ref || p&listBit != 0 && ix.valueOf(t, p) == v {
			return i
		}
		if p == 0 {
			panic("seriesindex: a series' value is missing from its table")
		}
	}
}

// without returns posting p, of a value a gone series has, without the
// gone series: 0 if none is left, a single series inline, else a list,
// rewritten into new memory so that walks of the old one (gapPostings) are
// not disturbed.
func (ix *Index) without(p uint32, isGone bitset) uint32 {
	if p&listBit == 0 { // the gone series alone had the value
		return 0
	}
	l := &ix.lists[p&^listBit]
	kept := l.appendTo(make([]uint32, 0, l.n))
	kept = slices.DeleteFunc(kept, isGone.has)
	if len(kept) > 1 {
		*l = list{}
		for _, r := range kept {
			l.add(r)
		}
		return p
	}
	*l = list{}
	ix.freeLists = append(ix.freeLists, p&^listBit)
	if len(kept) == 1 {
		return kept[0]
	}
	return 0
}

// unslotValue empties slot i of t as unslotSeries does for a shard.
func (ix *Index) unslotValue(t *values, i int) {
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j] != 0; j = (j + 1) & mask {
		if canMove(home(ix.valueOf(t, t.slots[j]), mask), i, j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = 0
	t.n--
}

// removeSeries marks the gone series removed in a new copy of the offsets
// (a snapshot may be reading the old one) and, once removed series hold a
// quarter of the series arena, copies the live ones to a new arena. The
// caller holds ix.mu.
func (ix *Index) removeSeries(gone []uint32) {
	offs := slices.Clone(ix.offs)
	for _, ref := range gone {
		ix.garbage += entrySize(len(ix.series.bytes(offs[ref-1])))
		offs[ref-1] = deadOff
	}
	ix.offs = offs
	ix.removed += len(gone)
	if ix.garbage*4 < ix.series.total {
		return
	}
	var a arena
	for i, off := range offs {
		if off != deadOff {
			offs[i] = a.add(ix.series.bytes(off))
		}
	}
	ix.series, ix.garbage = a, 0
}
