package seriesindex

import (
	"encoding/binary"
	"hash/maphash"
)

// collectSymbols drops the symbols no series uses (removed series' names
// and values) once they are half of all: the others get new IDs, dense in
// their old order, and every series is encoded again with them. Strings
// handed out keep the old symbols' pages alive, unchanged, until dropped.
// Whether they are half is known not to be when the names and values of
// the series removed since the last renumbering (ix.unused) are fewer;
// else it is counted on a view, without lock (symbols interned since count
// as used). The renumbering holds every lock: Adds encoding meanwhile
// intern symbols under syms.mu alone, which it takes too. Delete calls it.
func (ix *Index) collectSymbols() {
	ix.syms.mu.RLock()
	all := len(ix.syms.offs)
	ix.syms.mu.RUnlock()
	if ix.unused*2 < all {
		return
	}
	v := ix.view()
	used, _ := v.usedSymbols()
	if used.count()*2 > len(v.symOffs) {
		return
	}
	for i := range ix.shards {
		ix.shards[i].mu.Lock()
		defer ix.shards[i].mu.Unlock()
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.syms.mu.Lock()
	defer ix.syms.mu.Unlock()
	ix.renumber()
}

// renumber is collectSymbols under every lock.
func (ix *Index) renumber() {
	used, n := ix.usedSymbols()
	if n*2 > len(ix.syms.offs) {
		return
	}
	ix.unused = 0
	vals := ix.tableValues() // read before the series change encoding
	remap := ix.syms.keep(used, n)
	ix.reencode(remap)
	ix.renumberTables(vals, remap)
	ix.rehashShards()
}

// usedSymbols marks the symbols live series use and counts them.
func (ix *Index) usedSymbols() (bitset, int) {
	used := make(bitset, len(ix.syms.offs)/64+1)
	n := 0
	mark := func(id uint32) {
		if !used.has(id) {
			used.set(id)
			n++
		}
	}
	for i, off := range ix.offs {
		if off != deadOff {
			ix.eachLabel(uint32(i+1), func(name, value uint32) { mark(name); mark(value) })
		}
	}
	return used, n
}

// keep rebuilds s with the symbols in used, n of them, and returns each old
// ID's new one. The caller holds s.mu (write).
func (s *symbols) keep(used bitset, n int) []uint32 {
	oldData, oldOffs := s.data, s.offs
	size := 1024
	for size < 2*n {
		size *= 2
	}
	s.data, s.offs = arena{}, make([]uint32, 0, n)
	s.table, s.tags = make([]uint32, size), make([]uint8, size)
	remap := make([]uint32, len(oldOffs))
	for id, off := range oldOffs {
		if used.has(uint32(id)) {
			remap[id] = s.intern(oldData.str(off))
		}
	}
	s.gen++
	return remap
}

// tableValues lists, for each values table, the value symbol of each slot.
func (ix *Index) tableValues() map[*values][]uint32 {
	out := make(map[*values][]uint32, len(ix.names))
	for _, t := range ix.names {
		vs := make([]uint32, len(t.slots))
		for i, p := range t.slots {
			if p != 0 {
				vs[i] = ix.valueOf(t, p)
			}
		}
		out[t] = vs
	}
	return out
}

// reencode writes the live series' labels with new symbol IDs into a new
// arena and offsets (snapshots may read the old ones).
func (ix *Index) reencode(remap []uint32) {
	var a arena
	offs := make([]uint32, len(ix.offs))
	var buf []byte
	for i, off := range ix.offs {
		if off == deadOff {
			offs[i] = deadOff
			continue
		}
		buf = buf[:0]
		eachPair(ix.series.bytes(off), func(n, v uint32) {
			buf = binary.AppendUvarint(buf, uint64(remap[n]))
			buf = binary.AppendUvarint(buf, uint64(remap[v]))
		})
		offs[i] = a.add(buf)
	}
	ix.series, ix.offs, ix.garbage = a, offs, 0
	ix.publish()
}

// renumberTables gives the values tables their new name and value IDs,
// in new slots (a value's slot follows from its ID).
func (ix *Index) renumberTables(vals map[*values][]uint32, remap []uint32) {
	names := make(map[uint32]*values, len(ix.names))
	for _, t := range ix.names {
		old, vs := t.slots, vals[t]
		t.name = remap[t.name]
		t.slots = make([]uint32, len(old))
		mask := len(old) - 1
		for i, p := range old {
			if p == 0 {
				continue
			}
			j := home(remap[vs[i]], mask)
			for t.slots[j] != 0 {
				j = (j + 1) & mask
			}
			t.slots[j] = p
		}
		names[t.name] = t
	}
	ix.names = names
}

// rehashShards moves every series to the shard and slot its new encoding
// hashes to.
func (ix *Index) rehashShards() {
	for i := range ix.shards {
		sh := &ix.shards[i]
		sh.table, sh.tags, sh.n = make([]uint32, len(sh.table)), make([]uint8, len(sh.table)), 0
	}
	for i, off := range ix.offs {
		if off == deadOff {
			continue
		}
		enc := ix.series.bytes(off)
		h := maphash.Bytes(ix.seed, enc)
		sh := &ix.shards[h>>(64-shardBits)]
		slot, _ := ix.find(sh, enc, h)
		ix.insert(sh, slot, h, uint32(i+1))
	}
}
