package seriesindex

import (
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/storage"
)

// view is a snapshot of the series' encoded labels and of the symbols'
// strings that is read without locks. Series creation only appends to the
// offsets and arenas it copies, which never writes memory a snapshot can
// reach, and Delete writes new offsets and a new arena instead of changing
// them, so a long walk over many series (sorting, sharding, collecting
// symbols) need not hold Index.mu and stall the creation of series.
type view struct {
	offs    []uint32
	series  arena
	symOffs []uint32
	symData arena
}

func (ix *Index) view() view {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	return ix.viewLocked()
}

// viewLocked is view for a caller that holds ix.mu and syms.mu, to take
// symbol IDs that match the view's (Delete renumbers them) in the same
// hold.
func (ix *Index) viewLocked() view {
	return view{offs: ix.offs, series: ix.series, symOffs: ix.syms.offs, symData: ix.syms.data}
}

// viewWith is view and the symbol of label name, if there is one.
func (ix *Index) viewWith(name string) (v view, nid uint32, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	nid, ok = ix.syms.get(name)
	return ix.viewLocked(), nid, ok
}

// labelsOf returns series ref's encoded labels; ok is false if there is no
// such series.
func (v *view) labelsOf(ref storage.SeriesRef) (enc []byte, ok bool) {
	if ref == 0 || ref > storage.SeriesRef(len(v.offs)) || v.offs[ref-1] == deadOff {
		return nil, false
	}
	return v.series.bytes(v.offs[ref-1]), true
}

func (v *view) str(id uint32) string { return v.symData.str(v.symOffs[id]) }

// eachPair calls f with the name and value symbols of encoded labels.
func eachPair(enc []byte, f func(n, v uint32)) {
	for len(enc) > 0 {
		n, k := uvarint(enc)
		val, k2 := uvarint(enc[k:])
		enc = enc[k+k2:]
		f(n, val)
	}
}

// valueIn is the value symbol of name n in encoded labels, if there is one.
func valueIn(enc []byte, n uint32) (uint32, bool) {
	for len(enc) > 0 {
		name, k := uvarint(enc)
		val, k2 := uvarint(enc[k:])
		enc = enc[k+k2:]
		if name == n {
			return val, true
		}
	}
	return 0, false
}

// compare orders encoded label sets as labels.Compare orders the label sets:
// by each label's name, then value, and a set before the longer sets it
// begins. Equal symbols are equal strings, which spares reading them.
func (v *view) compare(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		for range 2 { // a name, then its value
			x, k := uvarint(a)
			y, k2 := uvarint(b)
			a, b = a[k:], b[k2:]
			if x != y {
				return strings.Compare(v.str(x), v.str(y))
			}
		}
	}
	return len(a) - len(b)
}

// stableHash is labels.StableHash of encoded labels, whose bytes that
// function promises never to change: xxhash of each name and value followed
// by a 0xff byte. They are gathered in buf, reused from series to series.
func (v *view) stableHash(buf *[]byte, enc []byte) uint64 {
	b := (*buf)[:0]
	eachPair(enc, func(n, val uint32) {
		b = append(append(b, v.str(n)...), 0xff)
		b = append(append(b, v.str(val)...), 0xff)
	})
	*buf = b
	return xxhash.Sum64(b)
}
