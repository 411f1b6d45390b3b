// Package seriesindex is an in-memory index of a TSDB head's series, built
// for bytes per series and for the garbage collector: label names and values
// are interned once in a symbol table, each series' labels are varint symbol
// IDs in a byte arena, and the tables from labels to series and from label
// values to series are flat integer slices, so the index holds no Go object
// and no pointer per series.
//
// It is step 1 of Vispyr's own head (issue 16: RSS per active series) and is
// not wired into the store yet; the store still uses Prometheus's tsdb.Head.
// Reader answers as a tsdb.IndexReader (all but Series) over it.
// Delete removes series, for a head's garbage collection of inactive ones.
package seriesindex

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

const shardBits = 4

// Index maps label sets to series refs (from 1, in order of creation, never
// given twice, so dense until Delete) and back, and answers postings
// queries. All methods are safe for concurrent use: Adds of existing series
// (every sample after a series' first) run in parallel under a shard's lock
// and read locks; creating a series takes Index.mu for writing, so
// creations are serialized (postings lists stay sorted by appending).
//
// Locks, taken in this order: Index.delMu (Delete), a shard's mu (Add,
// Lookup; renumbering the symbols takes every shard's, in order),
// Index.mu, then symbols.mu; Add takes symbols.mu on its own before the
// others. None is held while another method of the Index runs (a waiting
// writer would deadlock a second read lock). Reader's walks over many
// series run on a view, a snapshot of the offsets and arenas read without
// locks; only the value tables and postings lists need Index.mu. Symbol
// IDs are valid while Index.mu or a shard's mu is held, or within a view:
// Delete renumbers the symbols holding every lock, and an Add that encoded
// before encodes again.
type Index struct {
	syms   *symbols
	seed   maphash.Seed
	shards [1 << shardBits]shard

	mu     sync.RWMutex
	series arena
	offs   []uint32 // offs[ref-1]: the series' encoded labels in series, or deadOff
	// liveOffs and liveLen publish offs for Has, which reads them without
	// ix.mu (see publish).
	liveOffs  atomic.Pointer[[]uint32]
	liveLen   atomic.Uint32
	names     map[uint32]*values // label name symbol → its values' postings
	lists     []list             // postings of values held by more than one series
	freeLists []uint32           // indexes in lists that Delete emptied
	removed   int                // series removed
	deletes   int                // batches of Delete that moved values in their tables
	garbage   int                // bytes of removed series in series

	delMu      sync.Mutex // one Delete at a time
	pending    *removal   // while a Delete takes its series out of the tables
	unused     int        // symbols removals may have left unused, at most (Delete's)
	deleteHook func()     // tests: run between Delete's steps
}

// shard holds the refs of the series whose label hash falls in it, in an
// open-addressing table (0 for an empty slot) keyed by that hash, with a
// byte of the hash beside each slot (see symbols); a hit is confirmed by
// comparing encoded labels.
type shard struct {
	mu    sync.Mutex
	table []uint32
	tags  []uint8
	n     int
}

// New returns an empty index.
func New() *Index {
	ix := &Index{syms: newSymbols(), seed: maphash.MakeSeed(), names: map[uint32]*values{}}
	for i := range ix.shards {
		ix.shards[i].table = make([]uint32, 64)
		ix.shards[i].tags = make([]uint8, 64)
	}
	return ix
}

// Len is the number of series (not counting removed ones).
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.offs) - ix.removed
}

// Add returns the ref of the series lset, creating it if new (created is
// then true). Labels with an empty value are dropped, as Prometheus treats
// them as absent. Validating label sets (names, an empty set, which
// Prometheus's head refuses) is the caller's part.
func (ix *Index) Add(lset labels.Labels) (ref uint32, created bool) {
	var buf [256]byte
	enc, h, sh := ix.encodeLocked(buf[:0], lset)
	defer sh.mu.Unlock()
	ix.mu.RLock()
	slot, ref := ix.find(sh, enc, h)
	ix.mu.RUnlock()
	if ref != 0 {
		return ref, false
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ref = ix.create(enc)
	ix.insert(sh, slot, h, ref)
	return ref, true
}

// insert puts a new series' ref in its shard's empty slot. The caller holds
// sh.mu and ix.mu.
func (ix *Index) insert(sh *shard, slot int, h uint64, ref uint32) {
	sh.table[slot] = ref
	sh.tags[slot] = tag(h)
	sh.n++
	if sh.n*4 > len(sh.table)*3 {
		ix.grow(sh)
	}
}

// AddAt creates series lset under ref, for a head replaying its WAL, where
// series come with the refs an earlier run gave them, in ascending order:
// ref must exceed every ref the index has given, and the refs skipped
// (series that run removed) count as removed. If lset exists already (a
// series removed and added again, whose old record the WAL still holds),
// AddAt returns its ref and created false, and the caller maps ref to it.
func (ix *Index) AddAt(lset labels.Labels, ref uint32) (got uint32, created bool, err error) {
	var buf [256]byte
	enc, h, sh := ix.encodeLocked(buf[:0], lset)
	defer sh.mu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	slot, got := ix.find(sh, enc, h)
	if got != 0 {
		return got, false, nil
	}
	if int(ref) <= len(ix.offs) || ref >= listBit {
		return 0, false, fmt.Errorf("seriesindex: series ref %d at or below the last given, %d", ref, len(ix.offs))
	}
	for len(ix.offs) < int(ref)-1 {
		ix.offs = append(ix.offs, deadOff)
		ix.removed++
	}
	ix.insert(sh, slot, h, ix.create(enc))
	return ref, true, nil
}

// Lookup returns the ref of the series lset if it exists.
func (ix *Index) Lookup(lset labels.Labels) (uint32, bool) {
	var buf [256]byte
	for {
		ix.syms.mu.RLock()
		enc, ok := ix.encodeExisting(buf[:0], lset)
		gen := ix.syms.gen
		ix.syms.mu.RUnlock()
		if !ok {
			return 0, false
		}
		if ref, ok := ix.lookupAs(enc, gen); ok {
			return ref, ref != 0
		}
	}
}

// lookupAs finds the series encoded as enc in symbols of generation gen;
// ok is false if Delete renumbered the symbols since.
func (ix *Index) lookupAs(enc []byte, gen uint64) (ref uint32, ok bool) {
	h := maphash.Bytes(ix.seed, enc)
	sh := &ix.shards[h>>(64-shardBits)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ix.syms.gen != gen {
		return 0, false
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	_, ref = ix.find(sh, enc, h)
	return ref, true
}

// encodeLocked encodes lset and locks the shard of its hash, encoding again
// if Delete renumbered the symbols in between; holding a shard's mu keeps
// them as they are.
func (ix *Index) encodeLocked(buf []byte, lset labels.Labels) (enc []byte, h uint64, sh *shard) {
	for {
		enc, gen := ix.encode(buf, lset)
		h = maphash.Bytes(ix.seed, enc)
		sh = &ix.shards[h>>(64-shardBits)]
		sh.mu.Lock()
		if ix.syms.gen == gen {
			return enc, h, sh
		}
		sh.mu.Unlock()
	}
}

// MaxRef is the highest ref given so far; the live refs are those up to
// it that Has.
func (ix *Index) MaxRef() uint32 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return uint32(len(ix.offs))
}

// Has reports whether series ref exists (was given and not removed). A
// head asks it for every sample appended by ref, from every request at
// once, so it takes no lock: a read lock's shared counter, written by
// each call, would move between the cores' caches on every sample.
func (ix *Index) Has(ref uint32) bool {
	n := ix.liveLen.Load()
	if ref == 0 || ref > n {
		return false
	}
	return (*ix.liveOffs.Load())[ref-1] != deadOff
}

// publish makes offs, as now set, what Has reads; the caller holds ix.mu
// for writing and calls it after every change of offs. An element of offs
// below its length is never written again (Add appends; Delete, its
// compaction and the renumbering of symbols build a new slice), so Has may
// read any array published since it loaded the length: lengths only grow.
// The whole backing array is published once, when it changes, so that an
// Add stores only the new length.
func (ix *Index) publish() {
	if p := ix.liveOffs.Load(); p == nil || unsafe.SliceData(*p) != unsafe.SliceData(ix.offs) || cap(*p) != cap(ix.offs) {
		all := ix.offs[:cap(ix.offs)]
		ix.liveOffs.Store(&all)
	}
	ix.liveLen.Store(uint32(len(ix.offs)))
}

// Labels returns series ref's labels, empty if there is no such series.
func (ix *Index) Labels(ref uint32) labels.Labels {
	var b labels.ScratchBuilder
	ix.AppendLabels(&b, ref)
	return b.Labels()
}

// AppendLabels resets b and fills it with series ref's labels; it reports
// whether there is such a series (a removed one is not).
func (ix *Index) AppendLabels(b *labels.ScratchBuilder, ref uint32) bool {
	b.Reset()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ref == 0 || int(ref) > len(ix.offs) || ix.offs[ref-1] == deadOff {
		return false
	}
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	ix.eachLabel(ref, func(n, v uint32) { b.Add(ix.syms.str(n), ix.syms.str(v)) })
	return true
}

// encode appends lset as uvarint pairs of name and value symbols, interning
// those not seen yet, and returns the symbols' generation it used.
func (ix *Index) encode(buf []byte, lset labels.Labels) ([]byte, uint64) {
	ix.syms.mu.RLock()
	enc, ok := ix.encodeExisting(buf, lset)
	gen := ix.syms.gen
	ix.syms.mu.RUnlock()
	if ok {
		return enc, gen
	}
	ix.syms.mu.Lock()
	defer ix.syms.mu.Unlock()
	enc = buf[:0]
	lset.Range(func(l labels.Label) {
		if l.Value != "" {
			enc = binary.AppendUvarint(enc, uint64(ix.syms.intern(l.Name)))
			enc = binary.AppendUvarint(enc, uint64(ix.syms.intern(l.Value)))
		}
	})
	return enc, ix.syms.gen
}

// encodeExisting is encode without interning: ok is false if a symbol is
// missing. The caller holds syms.mu.
func (ix *Index) encodeExisting(buf []byte, lset labels.Labels) (enc []byte, ok bool) {
	enc, ok = buf, true
	lset.Range(func(l labels.Label) {
		if !ok || l.Value == "" {
			return
		}
		n, okn := ix.syms.get(l.Name)
		v, okv := ix.syms.get(l.Value)
		ok = okn && okv
		enc = binary.AppendUvarint(enc, uint64(n))
		enc = binary.AppendUvarint(enc, uint64(v))
	})
	return enc, ok
}

// find returns the ref of the series encoded as enc in sh, or 0 and the
// empty slot where it belongs; a series Delete marked removed is not
// found. The caller holds sh.mu and ix.mu.
func (ix *Index) find(sh *shard, enc []byte, h uint64) (slot int, ref uint32) {
	mask := len(sh.table) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		r := sh.table[i]
		if r == 0 {
			return i, 0
		}
		if sh.tags[i] == tag(h) {
			if off := ix.offs[r-1]; off != deadOff && bytes.Equal(ix.series.bytes(off), enc) {
				return i, r
			}
		}
	}
}

// grow doubles sh's table, hashing each series' encoded labels again. The
// caller holds sh.mu and ix.mu.
func (ix *Index) grow(sh *shard) { ix.resize(sh, 2*len(sh.table)) }

// resize moves sh's series (those a Delete is removing too) to a table of
// size slots, a power of two. The caller holds sh.mu and ix.mu.
func (ix *Index) resize(sh *shard, size int) {
	old := sh.table
	sh.table, sh.tags = make([]uint32, size), make([]uint8, size)
	for _, r := range old {
		if r != 0 {
			putSeries(sh.table, sh.tags, maphash.Bytes(ix.seed, ix.labelsAt(r)), r)
		}
	}
}

// create stores a new series and its postings. The caller holds ix.mu.
func (ix *Index) create(enc []byte) uint32 {
	if len(ix.offs) >= listBit-1 {
		panic("seriesindex: more than 2^31-1 series")
	}
	ix.offs = append(ix.offs, ix.series.add(enc))
	ix.publish()
	ref := uint32(len(ix.offs))
	ix.eachLabel(ref, func(n, v uint32) {
		t := ix.names[n]
		if t == nil {
			t = newValues(n)
			ix.names[n] = t
		}
		ix.addPosting(t, v, ref)
	})
	return ref
}

// eachLabel calls f with the name and value symbols of series ref's labels,
// in label order. The caller holds ix.mu.
func (ix *Index) eachLabel(ref uint32, f func(n, v uint32)) { eachPair(ix.labelsAt(ref), f) }
