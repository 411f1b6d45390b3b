package block

import (
	"container/list"
	"sync"
)

// IndexCache bounds the memory that blocks' trace indexes and tag postings hold once
// read: about 40 bytes per trace plus the postings, which over weeks of retention
// would outgrow any machine. The least recently used are dropped, and read again
// from the backend when a lookup or search needs them.
type IndexCache struct {
	mu   sync.Mutex
	max  int64
	used int64
	lru  *list.List // of *cacheEntry, most recent first
}

type cacheEntry struct {
	r    *Reader
	size int64
}

// NewIndexCache returns a cache holding at most maxBytes (at least one block's
// indexes are always kept, however large).
func NewIndexCache(maxBytes int64) *IndexCache {
	return &IndexCache{max: maxBytes, lru: list.New()}
}

// Used is the bytes held.
func (c *IndexCache) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// touch records a use of r's indexes (size bytes) and drops the least recently used
// others over the budget.
func (c *IndexCache) touch(r *Reader, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.elem != nil {
		c.lru.MoveToFront(r.elem)
		e := r.elem.Value.(*cacheEntry)
		c.used += size - e.size // the tags may have been added
		e.size = size
	} else {
		r.elem = c.lru.PushFront(&cacheEntry{r: r, size: size})
		c.used += size
	}
	for c.used > c.max && c.lru.Len() > 1 {
		back := c.lru.Back()
		e := back.Value.(*cacheEntry)
		c.lru.Remove(back)
		e.r.elem = nil
		c.used -= e.size
		e.r.dropIndexes()
	}
}

// forget removes r (closed or deleted).
func (c *IndexCache) forget(r *Reader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.elem != nil {
		c.used -= r.elem.Value.(*cacheEntry).size
		c.lru.Remove(r.elem)
		r.elem = nil
	}
}
