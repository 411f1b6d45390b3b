package metrics

import (
	"hash/maphash"
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

// seriesEntry is a series already validated and appended once: its labels
// (sorted, as the head wants them; usually the very copy the head keeps) and
// its head reference. The reference may go stale when the head garbage-collects the
// series; the head then falls back to the labels and hands back a new
// reference, which replaces the old one.
type seriesEntry struct {
	lset labels.Labels
	ref  atomic.Uint64
	// hash and check are the two hashes of the series' wire bytes
	// (seriesCache); gen is the generation whose map it was last put in.
	// All three are written under the cache's write lock.
	hash  uint64
	check uint32
	gen   uint32
	// next is the series that followed this one in the last request that
	// sent it: a sender sends its series in much the same order request after
	// request, so the next key is checked against it before the maps.
	next atomic.Pointer[seriesEntry]
}

func (e *seriesEntry) seriesRef() storage.SeriesRef { return storage.SeriesRef(e.ref.Load()) }

func (e *seriesEntry) update(ref storage.SeriesRef) {
	if ref != 0 && ref != e.seriesRef() {
		e.ref.Store(uint64(ref))
	}
}

// seriesCache maps the wire form of a series' labels to its entry, so a known
// series costs one map lookup instead of building, validating and hashing its
// labels. It keeps two independently seeded hashes of the wire bytes (64 and
// 32 bits), not the bytes (a hundred bytes per series): the first is the map
// key, the second must match the entry's too. Two different series share both
// with probability 2^-96, so with a million series cached a lookup finds the
// wrong one with odds of about 10^-23; the seeds are random per process, so a
// client cannot choose colliding labels. Identical bytes always decode to
// identical labels.
//
// Most lookups skip the maps: the entry that followed the previous series
// last time (seriesEntry.next) is taken when both hashes match it and it is
// still in a generation, i.e. exactly when the maps would have found it, but
// without their random memory accesses.
type seriesCache struct {
	seed, checkSeed maphash.Seed
	mu              sync.RWMutex
	cur, old        map[uint64]*seriesEntry
	gen             uint32 // cur's; old's is gen-1
	max             int    // series per generation
	// size, when set, is the number of series the head holds: a generation
	// grows to it, so that a client writing more series than cacheGeneration
	// round after round still finds them all instead of missing every one.
	size func() int
}

func newSeriesCache(max int) *seriesCache {
	return &seriesCache{seed: maphash.MakeSeed(), checkSeed: maphash.MakeSeed(),
		cur: map[uint64]*seriesEntry{}, old: map[uint64]*seriesEntry{}, max: max, gen: 1}
}

func (c *seriesCache) hashes(k []byte) (uint64, uint32) {
	return maphash.Bytes(c.seed, k), uint32(maphash.Bytes(c.checkSeed, k))
}

// lookup fills entries[i] for every key found; keys[i] == nil never matches.
// It takes the lock once for the whole request. Entries found only in the old
// generation are returned too; the caller re-adds them with promote.
func (c *seriesCache) lookup(keys [][]byte, entries []*seriesEntry) (fromOld int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var prev *seriesEntry
	for i, k := range keys {
		entries[i] = nil
		if k == nil {
			prev = nil
			continue
		}
		h, check := c.hashes(k)
		var e *seriesEntry
		if prev != nil {
			e = prev.next.Load()
		}
		if e == nil || e.hash != h || e.check != check || c.gen-e.gen > 1 {
			e = c.find(h, check)
			if prev != nil && prev.next.Load() != e {
				prev.next.Store(e)
			}
		}
		if e != nil && e.gen != c.gen {
			fromOld++
		}
		entries[i], prev = e, e
	}
	return fromOld
}

// find looks h up in both generations; c.mu must be held.
func (c *seriesCache) find(h uint64, check uint32) *seriesEntry {
	if e := c.cur[h]; e != nil && e.check == check {
		return e
	}
	if e := c.old[h]; e != nil && e.check == check {
		return e
	}
	return nil
}

// add stores entries under keys; an entry under the same first hash is
// replaced.
func (c *seriesCache) add(keys [][]byte, entries []*seriesEntry) {
	if len(keys) == 0 {
		return // most requests: no write lock for the others' lookups to wait on
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		e := entries[i]
		e.hash, e.check = c.hashes(k)
		c.put(e)
	}
}

// promote moves old-generation entries found by lookup into the current one.
func (c *seriesCache) promote(keys [][]byte, entries []*seriesEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		if k == nil || entries[i] == nil {
			continue
		}
		if e := entries[i]; c.cur[e.hash] == nil {
			c.put(e)
		}
	}
}

// put stores e in the current generation, which becomes the old one when full.
func (c *seriesCache) put(e *seriesEntry) {
	if len(c.cur) >= c.max {
		if c.size != nil {
			c.max = max(c.max, c.size())
		}
		if len(c.cur) >= c.max {
			c.rotate()
		}
	}
	e.gen = c.gen
	c.cur[e.hash] = e
}

// rotate makes the current generation the old one and drops the old one.
// The dropped entries no longer point to a next one, so an entry forgotten
// keeps at most itself alive, not a chain of forgotten ones.
func (c *seriesCache) rotate() {
	for _, e := range c.old {
		if e.gen != c.gen { // not promoted: forgotten now
			e.next.Store(nil)
		}
	}
	c.old, c.cur = c.cur, make(map[uint64]*seriesEntry, len(c.cur))
	c.gen++
}

// len is the number of series in both generations (for tests and metrics).
func (c *seriesCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}
