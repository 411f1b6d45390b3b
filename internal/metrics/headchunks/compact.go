package headchunks

// Series that start together grow together: a million chunks move from
// 24-byte slots to 32-byte ones within one scrape, leaving the 24-byte
// slabs empty but held. Compact gives such memory back: in each class with
// at least a slab's worth of free slots, it moves the chunks in the top
// slots down into free ones and drops the slabs left empty, to the garbage
// collector. It costs one pass over the series records; a head runs it now
// and then, and after Truncate.
//
// The pass runs beside appends and reads, passStripes stripes at a time as
// Truncate's. For each class it compacts, the slots from limit to top (the
// class's next slot when the pass starts) are to go: the free ones among
// them are taken out of the free list at the start, so no alloc hands them
// out again, and a chunk in one that is released meanwhile (cut, grown,
// truncated) is not put back (release); the pass moves the others into free
// slots below limit. Allocs meanwhile take free slots below limit, or, when
// none is left, slots from top up. At the end the slabs from limit up are
// dropped if no chunk is left from limit up: every chunk there was moved or
// released, and no slot was handed out from top up; else the class keeps
// its slabs and gets the slots taken back.

// compaction is a class's state while Compact runs (the class's mu).
type compaction struct {
	on         bool
	limit, top uint32
	live       int      // chunks still in slots from limit to top
	gone       []uint32 // slots from limit to top no chunk is in
}

// Compact frees the slabs that moving chunks down can empty and returns how
// many bytes of slabs it freed. Appends and reads wait at most for the pass
// over their stripe and the few beside it; Truncate and Count wait for it.
func (b *Buffer) Compact() (freed int) {
	b.truncMu.Lock()
	defer b.truncMu.Unlock()
	any := false
	for c := range b.slabs.classes {
		any = b.slabs.plan(c) || any
	}
	if !any {
		return 0
	}
	for lo := 0; lo < len(b.stripes); lo += passStripes {
		b.compactStripes(lo, lo+passStripes)
		compactHook(lo + passStripes)
	}
	for c := range b.slabs.classes {
		freed += b.slabs.shrink(c)
	}
	return freed
}

// compactHook runs after the pass over each group of stripes, given how
// many are passed, with no lock held (tests append there).
var compactHook = func(passed int) {}

// compactStripes moves the chunks of the series of stripes lo to hi-1 that
// are in slots to go into free slots below their class's limit.
func (b *Buffer) compactStripes(lo, hi int) {
	for i := lo; i < hi; i++ {
		b.stripes[i].Lock()
	}
	defer func() {
		for i := lo; i < hi; i++ {
			b.stripes[i].Unlock()
		}
	}()
	for _, page := range *b.pages.Load() {
		if page == nil {
			continue
		}
		for i := lo; i < hi; i++ {
			s := &page[i]
			if s.loc == 0 {
				continue
			}
			if dst, ok := b.slabs.moveTo(s.loc); ok {
				copy(b.slabs.bytes(dst), b.slabs.bytes(s.loc)[:s.n])
				s.loc = dst
			}
		}
	}
}

// plan starts compacting class c if it has at least a slab's worth of free
// slots, and reports whether it did.
func (s *slabs) plan(c int) bool {
	cl := &s.classes[c]
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if uint32(len(cl.free)) < cl.perSlab {
		return false
	}
	live := cl.next - uint32(len(cl.free)) // class 0's slot 0 counts as live
	keep := (live + cl.perSlab - 1) / cl.perSlab
	cp := compaction{on: true, limit: keep * cl.perSlab, top: cl.next}
	cp.gone = make([]uint32, 0, cp.top-cp.limit)
	below := cl.free[:0]
	for _, slot := range cl.free {
		if slot < cp.limit {
			below = append(below, slot)
		} else {
			cp.gone = append(cp.gone, slot)
		}
	}
	cl.free = below
	cp.live = int(cp.top-cp.limit) - len(cp.gone)
	cl.compacting = cp
	return true
}

// moveTo returns the slot the chunk in loc is to move to, if loc is a slot
// to go and a free slot below its class's limit is left; loc then counts
// as gone.
func (s *slabs) moveTo(loc uint32) (uint32, bool) {
	c := loc >> classShift
	cl := &s.classes[c]
	cp := &cl.compacting
	// Read without the class's lock: only Compact's goroutine, this one,
	// changes them. Most chunks stay, and are passed by without it.
	slot := loc & slotMask
	if !cp.on || slot < cp.limit || slot >= cp.top {
		return 0, false
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	n := len(cl.free)
	if n == 0 {
		return 0, false // allocs took them all: the class keeps its slabs
	}
	dst := cl.free[n-1]
	cl.free = cl.free[:n-1]
	cp.live--
	cp.gone = append(cp.gone, slot)
	return c<<classShift | dst, true
}

// released reports whether slot, just given back, is one a compaction of
// cl is to drop, and counts it so. The caller holds cl.mu.
func (cl *slabClass) released(slot uint32) bool {
	cp := &cl.compacting
	if !cp.on || slot < cp.limit || slot >= cp.top {
		return false
	}
	cp.live--
	cp.gone = append(cp.gone, slot)
	return true
}

// shrink ends class c's compaction: it drops the class's slots from limit
// up, with their slabs, if no chunk is left in them and no slot was handed
// out from top up, and returns the bytes of slabs dropped; else it puts the
// slots from limit to top that no chunk is in back in the free list.
func (s *slabs) shrink(c int) int {
	cl := &s.classes[c]
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cp := cl.compacting
	cl.compacting = compaction{}
	if !cp.on {
		return 0
	}
	if cp.live != 0 || cl.next != cp.top {
		cl.free = append(cl.free, cp.gone...)
		return 0
	}
	cl.free = append([]uint32(nil), cl.free...) // let go of the old, longer list
	cl.next = cp.limit
	slabs := *cl.slabs.Load()
	keep := int(cp.limit / cl.perSlab)
	kept := append([]*[slabBytes]byte(nil), slabs[:keep]...)
	cl.slabs.Store(&kept)
	return (len(slabs) - keep) * slabBytes
}
