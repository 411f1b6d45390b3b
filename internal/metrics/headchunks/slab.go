package headchunks

import (
	"sync"
	"sync/atomic"
)

// Open chunks live in fixed-size slots carved out of 64 KiB slabs, one set of
// slabs per slot size. A chunk starts in the smallest slot and moves up a
// size as it fills, so a series costs its chunk's bytes plus, on average,
// a fifth more, and the garbage collector sees a few slabs, not a slice per
// series. Sizes grow by about half; the largest holds chunkenc's 1 KiB.
var slotSizes = [...]int{24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024}

const (
	slabBytes = 64 << 10
	// A slot's location is its size class in the top bits and its number
	// in that class below; 0 is no slot (class 0's slot 0 is never used).
	classShift = 27
	slotMask   = 1<<classShift - 1
)

type slabClass struct {
	size    int
	perSlab uint32
	slabs   atomic.Pointer[[]*[slabBytes]byte] // replaced, never changed, when a slab is added

	mu         sync.Mutex
	free       []uint32   // slots given back, reused first
	next       uint32     // slots below it have been handed out
	compacting compaction // while Compact runs (compact.go)
}

type slabs struct {
	classes [len(slotSizes)]slabClass
}

func newSlabs() *slabs {
	s := &slabs{}
	for i, size := range slotSizes {
		c := &s.classes[i]
		c.size, c.perSlab = size, uint32(slabBytes/size)
		c.slabs.Store(&[]*[slabBytes]byte{})
		if i == 0 {
			c.next = 1
		}
	}
	return s
}

// classFor is the smallest class whose slots hold n bytes.
func classFor(n int) int {
	for i, size := range slotSizes {
		if size >= n {
			return i
		}
	}
	panic("headchunks: chunk larger than the largest slot")
}

// alloc hands out a zeroed slot of class c.
func (s *slabs) alloc(c int) uint32 {
	cl := &s.classes[c]
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if n := len(cl.free); n > 0 {
		slot := cl.free[n-1]
		cl.free = cl.free[:n-1]
		clear(s.bytes(uint32(c)<<classShift | slot))
		return uint32(c)<<classShift | slot
	}
	slot := cl.next
	cl.next++
	if slabs := *cl.slabs.Load(); int(slot/cl.perSlab) >= len(slabs) {
		grown := append(slabs[:len(slabs):len(slabs)], new([slabBytes]byte))
		cl.slabs.Store(&grown)
	}
	return uint32(c)<<classShift | slot
}

// release gives slot loc back to its class.
func (s *slabs) release(loc uint32) {
	cl := &s.classes[loc>>classShift]
	cl.mu.Lock()
	if slot := loc & slotMask; !cl.released(slot) {
		cl.free = append(cl.free, slot)
	}
	cl.mu.Unlock()
}

// bytes is slot loc's memory, with its capacity as its length.
func (s *slabs) bytes(loc uint32) []byte {
	cl := &s.classes[loc>>classShift]
	slot := loc & slotMask
	slab := (*cl.slabs.Load())[slot/cl.perSlab]
	off := int(slot%cl.perSlab) * cl.size
	return slab[off : off+cl.size : off+cl.size]
}

// size is the slot size of loc's class.
func slotSize(loc uint32) int { return slotSizes[loc>>classShift] }

// inUse is the bytes of slabs handed out, for the memory a head reports.
func (s *slabs) inUse() (slabBytesTotal int) {
	for i := range s.classes {
		slabBytesTotal += len(*s.classes[i].slabs.Load()) * slabBytes
	}
	return slabBytesTotal
}
