// Package series holds the in-memory state shared by the span-metrics and
// service-graph processors: a table of label-value tuples, classic histograms
// with exemplars, and the batch that writes a snapshot of them to a
// Prometheus storage.Appender.
package series

import (
	"hash/maphash"
	"slices"
	"strings"
)

// Table maps a tuple of label values to an entry of type T. Lookups hash the
// tuple without allocating and compare the stored values, so a hash collision
// never merges two series. Table is not safe for concurrent use: the
// processors guard it with their own mutex.
type Table[T any] struct {
	seed maphash.Seed
	m    map[uint64]*node[T]
	n    int
}

type node[T any] struct {
	values []string
	next   *node[T] // entries whose tuples share a hash
	entry  T
}

// NewTable returns an empty table.
func NewTable[T any]() *Table[T] {
	return &Table[T]{seed: maphash.MakeSeed(), m: make(map[uint64]*node[T])}
}

// Hash returns the key of values; pass it to Get and Insert.
func (t *Table[T]) Hash(values []string) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	for _, v := range values {
		h.WriteString(v)
		// A separator keeps ("ab","c") and ("a","bc") apart.
		h.WriteByte(0xff)
	}
	return h.Sum64()
}

// Get returns the entry stored for values, or nil.
func (t *Table[T]) Get(hash uint64, values []string) *T {
	for n := t.m[hash]; n != nil; n = n.next {
		if slices.Equal(n.values, values) {
			return &n.entry
		}
	}
	return nil
}

// Insert stores a zero entry for values, which must not be present yet, and
// returns it. The values are copied: callers may pass strings that alias
// rows (a trace head's arenas, or a request's buffer).
func (t *Table[T]) Insert(hash uint64, values []string) *T { return &t.insert(hash, values).entry }

func (t *Table[T]) insert(hash uint64, values []string) *node[T] {
	owned := make([]string, len(values))
	for i, v := range values {
		owned[i] = strings.Clone(v)
	}
	n := &node[T]{values: owned, next: t.m[hash]}
	t.m[hash] = n
	t.n++
	return n
}

// GetOrInsert returns the entry for values, inserting it when the limit admits
// cost more series (init then fills it in, given the table's own copy of the
// values, so labels it builds never alias the caller's). It returns nil when
// the limit refuses: the caller drops the observation, which the limit has counted.
func (t *Table[T]) GetOrInsert(values []string, limit *Limit, cost int, nowMs int64, init func(e *T, values []string)) *T {
	h := t.Hash(values)
	if e := t.Get(h, values); e != nil {
		return e
	}
	if !limit.TryAdd(cost, nowMs) {
		return nil
	}
	n := t.insert(h, values)
	init(&n.entry, n.values)
	return &n.entry
}

// Len returns the number of entries.
func (t *Table[T]) Len() int { return t.n }

// Range calls f for every entry and deletes the entries for which f returns
// false.
func (t *Table[T]) Range(f func(values []string, e *T) (keep bool)) {
	for h, head := range t.m {
		var kept *node[T]
		for n := head; n != nil; {
			next := n.next
			if f(n.values, &n.entry) {
				n.next = kept
				kept = n
			} else {
				t.n--
			}
			n = next
		}
		if kept == nil {
			delete(t.m, h)
		} else {
			t.m[h] = kept
		}
	}
}
