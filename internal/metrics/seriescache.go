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
	lset  labels.Labels
	ref   atomic.Uint64
	check uint64 // the second hash of the series' wire bytes (seriesCache)
}

func (e *seriesEntry) seriesRef() storage.SeriesRef { return storage.SeriesRef(e.ref.Load()) }

func (e *seriesEntry) update(ref storage.SeriesRef) {
	if ref != 0 && ref != e.seriesRef() {
		e.ref.Store(uint64(ref))
	}
}

// seriesCache maps the wire form of a series' labels to its entry, so a known
// series costs one map lookup instead of building, validating and hashing its
// labels. It keeps two independently seeded 64-bit hashes of the wire bytes,
// not the bytes (a hundred bytes per series): the first is the map key, the
// second must match the entry's too. Two different series share both with
// probability 2^-128, so with a million series cached a lookup finds the wrong
// one with odds of about 10^-32; the seeds are random per process, so a client
// cannot choose colliding labels. Identical bytes always decode to identical
// labels.
type seriesCache struct {
	seed, checkSeed maphash.Seed
	mu              sync.RWMutex
	cur, old        map[uint64]*seriesEntry
	max             int // series per generation
	// size, when set, is the number of series the head holds: a generation
	// grows to it, so that a client writing more series than cacheGeneration
	// round after round still finds them all instead of missing every one.
	size func() int
}

func newSeriesCache(max int) *seriesCache {
	return &seriesCache{seed: maphash.MakeSeed(), checkSeed: maphash.MakeSeed(),
		cur: map[uint64]*seriesEntry{}, old: map[uint64]*seriesEntry{}, max: max}
}

// lookup fills entries[i] for every key found; keys[i] == nil never matches.
// It takes the lock once for the whole request. Entries found only in the old
// generation are returned too; the caller re-adds them with promote.
func (c *seriesCache) lookup(keys [][]byte, entries []*seriesEntry) (fromOld int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, k := range keys {
		entries[i] = nil
		if k == nil {
			continue
		}
		h, check := maphash.Bytes(c.seed, k), maphash.Bytes(c.checkSeed, k)
		if e := c.cur[h]; e != nil && e.check == check {
			entries[i] = e
		} else if e := c.old[h]; e != nil && e.check == check {
			entries[i] = e
			fromOld++
		}
	}
	return fromOld
}

// add stores entries under keys; an entry under the same first hash is
// replaced.
func (c *seriesCache) add(keys [][]byte, entries []*seriesEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		entries[i].check = maphash.Bytes(c.checkSeed, k)
		c.put(maphash.Bytes(c.seed, k), entries[i])
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
		if h := maphash.Bytes(c.seed, k); c.cur[h] == nil {
			c.put(h, entries[i])
		}
	}
}

// put stores e in the current generation, which becomes the old one when full.
func (c *seriesCache) put(h uint64, e *seriesEntry) {
	if len(c.cur) >= c.max {
		if c.size != nil {
			c.max = max(c.max, c.size())
		}
		if len(c.cur) >= c.max {
			c.old, c.cur = c.cur, make(map[uint64]*seriesEntry, len(c.cur))
		}
	}
	c.cur[h] = e
}

// len is the number of series in both generations (for tests and metrics).
func (c *seriesCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}
