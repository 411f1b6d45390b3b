package metrics

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// cacheGeneration bounds the series cache: when the current generation holds
// this many series (or as many as the head holds, if more) it becomes the old
// one and the one before is dropped, so series that stopped being written are
// forgotten after two generations.
const cacheGeneration = 1 << 18

// seriesEntry is one request's copy of what the cache knows of a series (or,
// for a series it does not know, what the request will add): its hashes, its
// head reference and, unless the head keeps them itself (lean), its labels
// (sorted, as the head wants them; usually the very copy the head keeps). The
// reference may go stale when the head garbage-collects the series; the head
// then falls back to the labels and hands back a new reference, which the
// request writes back (setRefs).
type seriesEntry struct {
	lset  labels.Labels
	ref   storage.SeriesRef
	hash  uint64
	check uint32
	id    uint32 // the cache's slot id; 0: not in the cache
	old   bool   // found in the old generation
	moved bool   // ref changed since the lookup
}

func (e *seriesEntry) found() bool { return e.id != 0 }

func (e *seriesEntry) seriesRef() storage.SeriesRef { return e.ref }

func (e *seriesEntry) update(ref storage.SeriesRef) {
	if ref != 0 && ref != e.ref {
		e.ref, e.moved = ref, true
	}
}

// cacheSlot is one cached series, 24 bytes and no pointers, so that a million
// of them cost 24 MB the collector never scans. meta packs the id of the
// series that followed this one in the last request that sent it (a sender
// sends its series in much the same order request after request, so the next
// key is checked against it before the index), whether the slot holds a
// series, and the parity of its generation: only two generations are ever
// held, the older one being swept out before the next begins.
type cacheSlot struct {
	hash  uint64
	ref   atomic.Uint64
	check uint32
	meta  atomic.Uint32
}

const (
	slotNext   = 1<<30 - 1 // next slot id (0: none); a free slot's: the next free one
	slotLive   = 1 << 30
	slotGenBit = 1 << 31
	maxSlots   = slotNext // ids are 1..maxSlots
	pageBits   = 12       // slots per page: 4,096 (96 KB)
	pageMask   = 1<<pageBits - 1
	indexLoad  = 5 // the index is rebuilt at 3/5 full and grown past 4/5
)

// seriesCache maps the wire form of a series' labels to its slot, so a known
// series costs one lookup instead of building, validating and hashing its
// labels. It keeps two independently seeded hashes of the wire bytes (64 and
// 32 bits), not the bytes (a hundred bytes per series): the index is keyed by
// the first, the second must match the slot's too. Two different series share
// both with probability 2^-96, so with a million series cached a lookup finds
// the wrong one with odds of about 10^-23; the seeds are random per process,
// so a client cannot choose colliding labels. Identical bytes always decode to
// identical labels.
//
// Slots live in pages that never move, in the order series were first cached,
// and a slot freed by a sweep is reused; the index is an open-addressing
// table (linear probing) of slot ids. About 24 + 6 bytes a series, against
// ~85 for a heap object per series in Go maps.
//
// Most lookups skip the index: the slot that followed the previous series
// last time is taken when both hashes match it (and it holds a series, i.e.
// is in a generation), exactly when the index would have found it, but
// without its random memory accesses.
//
// Lookups run concurrently under the read lock; so do a slot's next and ref
// updates (atomic). Everything else changes under the write lock.
type seriesCache struct {
	seed, checkSeed maphash.Seed
	mu              sync.RWMutex
	pages           [][]cacheSlot
	// lsets are the labels of the slots, in pages beside theirs, allocated
	// only once an entry with labels is added (never with the own head).
	lsets [][]labels.Labels
	index []uint32 // slot ids; 0: empty
	slots uint32   // ids ever handed out: 1..slots
	free  uint32   // a free slot's id (0: none), chained through their next
	gen   uint32   // the current generation; the old one is gen-1
	cur   int      // series in the current generation
	live  int      // series in both
	max   int      // series per generation
	// size, when set, is the number of series the head holds: a generation
	// grows to it, so that a client writing more series than cacheGeneration
	// round after round still finds them all instead of missing every one.
	size func() int
}

func newSeriesCache(max int) *seriesCache {
	return &seriesCache{seed: maphash.MakeSeed(), checkSeed: maphash.MakeSeed(), max: max, gen: 1}
}

func (c *seriesCache) hashes(k []byte) (uint64, uint32) {
	return maphash.Bytes(c.seed, k), uint32(maphash.Bytes(c.checkSeed, k))
}

func (c *seriesCache) slot(id uint32) *cacheSlot {
	return &c.pages[(id-1)>>pageBits][(id-1)&pageMask]
}

// genBit is the meta bit of a slot in the current generation.
func (c *seriesCache) genBit() uint32 { return (c.gen & 1) * slotGenBit }

// holds reports whether slot id holds the series of both hashes.
func (c *seriesCache) holds(id uint32, h uint64, check uint32) bool {
	return c.follow(id, h, check) != nil
}

// lookup fills entries[i] for every key: its hashes, and what the cache holds
// of it if anything; keys[i] == nil never matches. It takes the lock once for
// the whole request. Entries found only in the old generation are returned
// too (old); the caller re-adds them with promote.
func (c *seriesCache) lookup(keys [][]byte, entries []seriesEntry) (fromOld int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cur := c.genBit()
	var prev *cacheSlot
	for i, k := range keys {
		e := &entries[i]
		*e = seriesEntry{}
		if k == nil {
			prev = nil
			continue
		}
		e.hash, e.check = c.hashes(k)
		var id uint32
		var s *cacheSlot
		if prev != nil {
			id = prev.meta.Load() & slotNext
			if s = c.follow(id, e.hash, e.check); s == nil {
				id = c.find(e.hash, e.check)
				setNext(prev, id)
			}
		} else {
			id = c.find(e.hash, e.check)
		}
		if id == 0 {
			prev = nil
			continue
		}
		if s == nil {
			s = c.slot(id)
		}
		e.id, e.ref = id, storage.SeriesRef(s.ref.Load())
		if c.lsets != nil {
			e.lset = c.lsets[(id-1)>>pageBits][(id-1)&pageMask]
		}
		if s.meta.Load()&slotGenBit != cur {
			e.old = true
			fromOld++
		}
		prev = s
	}
	return fromOld
}

// follow is slot id if it holds the series of both hashes, else nil.
func (c *seriesCache) follow(id uint32, h uint64, check uint32) *cacheSlot {
	if id == 0 || id > c.slots {
		return nil
	}
	if s := c.slot(id); s.hash == h && s.check == check && s.meta.Load()&slotLive != 0 {
		return s
	}
	return nil
}

// setNext makes id the series following s; lookups do it concurrently, the
// other bits of meta change only under the write lock.
func setNext(s *cacheSlot, id uint32) {
	for {
		m := s.meta.Load()
		if m&slotNext == id || s.meta.CompareAndSwap(m, m&^slotNext|id) {
			return
		}
	}
}

// find looks h up in the index; c.mu must be held. The index holds only
// slots with a series, and is never full.
func (c *seriesCache) find(h uint64, check uint32) uint32 {
	n := uint64(len(c.index))
	if n == 0 {
		return 0
	}
	for p, _ := bits.Mul64(h, n); ; p++ {
		if p == n {
			p = 0
		}
		id := c.index[p]
		if id == 0 {
			return 0
		}
		if s := c.slot(id); s.hash == h && s.check == check {
			return id
		}
	}
}

// add caches the new series entries[i] for i in which, with the refs the
// head handed back; a series already cached (another request added it
// meanwhile) gets the new ref.
func (c *seriesCache) add(entries []seriesEntry, which []int) {
	if len(which) == 0 {
		return // most requests: no write lock for the others' lookups to wait on
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, i := range which {
		c.put(&entries[i], true)
	}
}

// promote moves old-generation entries found by lookup into the current
// one, and with them those that a rotation meanwhile made old: all of a
// request's series end up in the current generation.
func (c *seriesCache) promote(entries []seriesEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range entries {
		if entries[i].found() {
			c.put(&entries[i], false)
		}
	}
}

// setRefs writes back the refs the head changed for found entries.
func (c *seriesCache) setRefs(entries []seriesEntry) {
	i := 0
	for i < len(entries) && !(entries[i].moved && entries[i].found()) {
		i++
	}
	if i == len(entries) {
		return
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range entries[i:] {
		// The slot may have been swept and reused since the lookup.
		if e.moved && e.found() && c.holds(e.id, e.hash, e.check) {
			c.slot(e.id).ref.Store(uint64(e.ref))
		}
	}
}

// put makes sure e's series is in the current generation, with e's ref if
// newRef; c.mu must be held for writing. The current generation becomes the
// old one when full.
func (c *seriesCache) put(e *seriesEntry, newRef bool) {
	id := e.id
	if !c.holds(id, e.hash, e.check) {
		id = c.find(e.hash, e.check)
	}
	if id != 0 {
		s := c.slot(id)
		if newRef && e.ref != 0 {
			s.ref.Store(uint64(e.ref))
		}
		if m := s.meta.Load(); m&slotGenBit == c.genBit() {
			return
		}
	}
	if c.cur >= c.max {
		if c.size != nil {
			c.max = max(c.max, c.size())
		}
		if c.cur >= c.max {
			c.rotate()
			id = c.find(e.hash, e.check) // the sweep may have freed it
		}
	}
	if id == 0 {
		if id = c.newSlot(e); id == 0 {
			return // maxSlots series cached: this one is not
		}
	} else {
		s := c.slot(id)
		s.meta.Store(s.meta.Load()&^slotGenBit | c.genBit())
	}
	c.cur++
}

// newSlot stores e in a free slot and indexes it.
func (c *seriesCache) newSlot(e *seriesEntry) uint32 {
	id := c.free
	if id != 0 {
		c.free = c.slot(id).meta.Load() & slotNext
	} else {
		if c.slots == maxSlots {
			return 0
		}
		c.slots++
		id = c.slots
		if int(id-1)>>pageBits == len(c.pages) {
			c.pages = append(c.pages, make([]cacheSlot, 1<<pageBits))
		}
	}
	s := c.slot(id)
	s.hash, s.check = e.hash, e.check
	s.ref.Store(uint64(e.ref))
	s.meta.Store(slotLive | c.genBit())
	if !e.lset.IsEmpty() || c.lsets != nil {
		c.setLabels(id, e.lset)
	}
	c.live++
	if (c.live+1)*indexLoad > 4*len(c.index) {
		c.reindex()
	} else {
		c.insert(id)
	}
	return id
}

func (c *seriesCache) setLabels(id uint32, ls labels.Labels) {
	for len(c.lsets) < len(c.pages) {
		c.lsets = append(c.lsets, make([]labels.Labels, 1<<pageBits))
	}
	c.lsets[(id-1)>>pageBits][(id-1)&pageMask] = ls
}

// insert puts slot id in the index, which has room.
func (c *seriesCache) insert(id uint32) {
	n := uint64(len(c.index))
	p, _ := bits.Mul64(c.slot(id).hash, n)
	for c.index[p] != 0 {
		if p++; p == n {
			p = 0
		}
	}
	c.index[p] = id
}

// reindex builds the index anew for the live slots, 3/5 full.
func (c *seriesCache) reindex() {
	c.index = make([]uint32, max(16, (c.live+1)*indexLoad/3))
	for id := uint32(1); id <= c.slots; id++ {
		if c.slot(id).meta.Load()&slotLive != 0 {
			c.insert(id)
		}
	}
}

// rotate frees the old generation's slots (those not promoted since), and
// makes the current generation the old one. Once a generation, so freeing
// and reindexing everything costs a constant per series put.
func (c *seriesCache) rotate() {
	cur := c.genBit()
	for id := uint32(1); id <= c.slots; id++ {
		s := c.slot(id)
		if m := s.meta.Load(); m&slotLive != 0 && m&slotGenBit != cur {
			s.hash, s.check = 0, 0
			s.ref.Store(0)
			s.meta.Store(c.free)
			c.free = id
			if c.lsets != nil {
				c.lsets[(id-1)>>pageBits][(id-1)&pageMask] = labels.EmptyLabels()
			}
			c.live--
		}
	}
	c.gen++
	c.cur = 0
	c.reindex()
}

// len is the number of series in both generations (for tests and metrics).
func (c *seriesCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.live
}
