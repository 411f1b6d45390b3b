package seriesindex

import (
	"hash/maphash"
	"sync"
)

// symbols interns strings (label names and values): each is stored once in
// an arena and named by a dense ID, in order of first use, so the strings
// most series share get the shortest varints. The lookup table is open
// addressing over IDs (ID+1, 0 for an empty slot), 4 bytes a slot, with a
// byte of each symbol's hash beside it so that a probe reads another
// symbol's string (a cache miss, as strings sit in the arena) only once in
// 256 collisions.
type symbols struct {
	mu sync.RWMutex
	// gen counts the renumberings of Delete, which holds every lock of the
	// index to change it, so that any one of them keeps it.
	gen   uint64
	seed  maphash.Seed
	data  arena
	offs  []uint32 // by ID
	table []uint32
	tags  []uint8
}

func newSymbols() *symbols {
	return &symbols{seed: maphash.MakeSeed(), table: make([]uint32, 1024), tags: make([]uint8, 1024)}
}

// str is symbol id's string; the caller holds mu (read).
func (s *symbols) str(id uint32) string { return s.data.str(s.offs[id]) }

// find returns the slot that holds str or the empty slot where it belongs;
// the caller holds mu.
func (s *symbols) find(str string, h uint64) (slot int, id uint32, ok bool) {
	mask := len(s.table) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		e := s.table[i]
		if e == 0 {
			return i, 0, false
		}
		if s.tags[i] == tag(h) && s.str(e-1) == str {
			return i, e - 1, true
		}
	}
}

// get returns str's ID if it is interned; the caller holds mu.
func (s *symbols) get(str string) (uint32, bool) {
	_, id, ok := s.find(str, maphash.String(s.seed, str))
	return id, ok
}

// intern returns str's ID, adding it if new; the caller holds mu (write).
func (s *symbols) intern(str string) uint32 {
	h := maphash.String(s.seed, str)
	slot, id, ok := s.find(str, h)
	if ok {
		return id
	}
	id = uint32(len(s.offs))
	s.offs = append(s.offs, s.data.addString(str))
	s.table[slot] = id + 1
	s.tags[slot] = tag(h)
	if len(s.offs)*4 > len(s.table)*3 {
		s.grow()
	}
	return id
}

func (s *symbols) grow() {
	s.table = make([]uint32, 2*len(s.table))
	s.tags = make([]uint8, len(s.table))
	mask := len(s.table) - 1
	for id := range s.offs {
		h := maphash.String(s.seed, s.str(uint32(id)))
		i := int(h) & mask
		for s.table[i] != 0 {
			i = (i + 1) & mask
		}
		s.table[i] = uint32(id) + 1
		s.tags[i] = tag(h)
	}
}

// tag is the byte of hash h kept beside a table slot: bits that neither the
// slot (the low bits) nor the series shard (the top bits) depend on.
func tag(h uint64) uint8 { return uint8(h >> 48) }
