package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// cacheGeneration bounds the series cache: when the current generation holds
// this many series it becomes the old one and the one before is dropped, so
// series that stopped being written are forgotten after two generations.
const cacheGeneration = 1 << 18

// seriesEntry is a series already validated and appended once: its labels
// (sorted, as the head wants them) and its head reference. The reference may go
// stale when the head garbage-collects the series; the head then falls back to
// the labels and hands back a new reference, which replaces the old one.
type seriesEntry struct {
	lset labels.Labels
	ref  atomic.Uint64
}

func (e *seriesEntry) seriesRef() storage.SeriesRef { return storage.SeriesRef(e.ref.Load()) }

func (e *seriesEntry) update(ref storage.SeriesRef) {
	if ref != 0 && ref != e.seriesRef() {
		e.ref.Store(uint64(ref))
	}
}

// seriesCache maps the wire form of a series' labels to its entry, so a known
// series costs one map lookup instead of building, validating and hashing its
// labels. Keys are exact bytes (no hash collisions): identical bytes always
// decode to identical labels.
type seriesCache struct {
	mu       sync.RWMutex
	cur, old map[string]*seriesEntry
	max      int // series per generation
}

func newSeriesCache(max int) *seriesCache {
	return &seriesCache{cur: map[string]*seriesEntry{}, old: map[string]*seriesEntry{}, max: max}
}

// lookup fills entries[i] for every key found; keys[i] == nil never matches.
// It takes the lock once for the whole request. Entries found only in the old
// generation are returned too; the caller re-adds them with add.
func (c *seriesCache) lookup(keys [][]byte, entries []*seriesEntry) (fromOld int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, k := range keys {
		if k == nil {
			entries[i] = nil
			continue
		}
		e := c.cur[string(k)]
		if e == nil {
			if e = c.old[string(k)]; e != nil {
				fromOld++
			}
		}
		entries[i] = e
	}
	return fromOld
}

// add stores entries under keys (copied).
func (c *seriesCache) add(keys [][]byte, entries []*seriesEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		if len(c.cur) >= c.max {
			c.old, c.cur = c.cur, make(map[string]*seriesEntry, len(c.cur))
		}
		c.cur[string(k)] = entries[i]
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
		if _, ok := c.cur[string(k)]; ok {
			continue
		}
		if len(c.cur) >= c.max {
			c.old, c.cur = c.cur, make(map[string]*seriesEntry, len(c.cur))
		}
		c.cur[string(k)] = entries[i]
	}
}

// len is the number of series in both generations (for tests and metrics).
func (c *seriesCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}
