package seriesindex

import (
	"encoding/binary"
	"slices"
)

// listBit marks a posting that indexes a list; without it the posting is the
// single series that has the value, kept inline: most values of a label
// unique per series (an ID, a path) need no list.
const listBit = 1 << 31

// list is the postings of a value more than one series has: the gaps
// between sorted refs as varints, a byte or two each where a ref in four or
// in a hundred has the value (4 bytes as []uint32).
type list struct {
	data []byte
	last uint32
	n    uint32
}

func (l *list) add(ref uint32) {
	l.data = binary.AppendUvarint(l.data, uint64(ref-l.last))
	l.last = ref
	l.n++
}

// filter keeps in a, sorted, the refs also in the list (in) or the refs
// not in it (!in), decoding the list once and copying none of it.
func (l *list) filter(a []uint32, in bool) []uint32 {
	out := a[:0]
	b, r := l.data, uint32(0)
	for i, x := range a {
		for r < x && len(b) > 0 {
			d, k := uvarint(b)
			r, b = r+d, b[k:]
		}
		if r < x { // the list ended: the rest of a is not in it
			return keepRest(out, a[i:], in)
		}
		if (r == x) == in {
			out = append(out, x)
		}
	}
	return out
}

// keepRest ends a filter whose other side ended before rest: none of rest
// is in it.
func keepRest(out, rest []uint32, in bool) []uint32 {
	if in {
		return out
	}
	return append(out, rest...)
}

// first is the list's first ref.
func (l *list) first() uint32 {
	r, _ := uvarint(l.data)
	return r
}

// appendTo appends the list's refs to out.
func (l *list) appendTo(out []uint32) []uint32 {
	out = slices.Grow(out, int(l.n))
	var r uint32
	for b := l.data; len(b) > 0; {
		d, k := uvarint(b)
		r += d
		out = append(out, r)
		b = b[k:]
	}
	return out
}

// values maps one label name's values to their postings: open addressing
// over 4-byte slots that hold only the posting (0 for an empty slot),
// hashed by value symbol. A slot's value is not stored: it is read from the
// labels of the posting's first series, which saves half the table for a
// label with a value per series at the price of decoding a series per probe.
type values struct {
	name  uint32
	slots []uint32
	n     int
}

func newValues(name uint32) *values { return &values{name: name, slots: make([]uint32, 8)} }

// first is the first series of posting p.
func (ix *Index) first(p uint32) uint32 {
	if p&listBit != 0 {
		return ix.lists[p&^listBit].first()
	}
	return p
}

// valueOf is the value symbol that t's posting p stands for. The caller
// holds ix.mu.
func (ix *Index) valueOf(t *values, p uint32) uint32 {
	b := ix.labelsAt(ix.first(p))
	for {
		n, k := uvarint(b)
		v, k2 := uvarint(b[k:])
		if n == t.name {
			return v
		}
		b = b[k+k2:]
	}
}

// home is value v's first slot in a table of len(slots) = mask+1.
func home(v uint32, mask int) int {
	// Fibonacci hashing spreads dense IDs over the table's high bits.
	return int((uint64(v)*0x9E3779B97F4A7C15)>>32) & mask
}

// slot returns the slot holding value v's posting, or the empty slot where
// it belongs. The caller holds ix.mu.
func (ix *Index) slot(t *values, v uint32) int {
	mask := len(t.slots) - 1
	for i := home(v, mask); ; i = (i + 1) & mask {
		if p := t.slots[i]; p == 0 || ix.valueOf(t, p) == v {
			return i
		}
	}
}

// get returns value v's posting. The caller holds ix.mu.
func (ix *Index) get(t *values, v uint32) (uint32, bool) {
	p := t.slots[ix.slot(t, v)]
	return p, p != 0
}

// addPosting records that series ref, newer than every series recorded so
// far, has value v, so lists stay sorted by appending. The caller holds
// ix.mu (write).
func (ix *Index) addPosting(t *values, v, ref uint32) {
	i := ix.slot(t, v)
	p := t.slots[i]
	switch {
	case p == 0:
		t.slots[i] = ref
		t.n++
		if t.n*4 > len(t.slots)*3 {
			ix.growValues(t)
		}
	case p&listBit != 0:
		ix.lists[p&^listBit].add(ref)
	default:
		var l list
		l.add(p)
		l.add(ref)
		t.slots[i] = ix.newList(l) | listBit
	}
}

// newList stores l, in a place Delete freed if there is one, and returns
// its index. The caller holds ix.mu (write).
func (ix *Index) newList(l list) uint32 {
	if n := len(ix.freeLists); n > 0 {
		i := ix.freeLists[n-1]
		ix.freeLists = ix.freeLists[:n-1]
		ix.lists[i] = l
		return i
	}
	ix.lists = append(ix.lists, l)
	return uint32(len(ix.lists) - 1)
}

func (ix *Index) growValues(t *values) { ix.resizeValues(t, 2*len(t.slots)) }

// resizeValues moves t's postings to a table of size slots, a power of
// two. The caller holds ix.mu (write).
func (ix *Index) resizeValues(t *values, size int) {
	old := t.slots
	t.slots = make([]uint32, size)
	mask := len(t.slots) - 1
	for _, p := range old {
		if p == 0 {
			continue
		}
		i := home(ix.valueOf(t, p), mask)
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = p
	}
}

// eachValue calls f with every value symbol of t and its posting. The
// caller holds ix.mu.
func (ix *Index) eachValue(t *values, f func(v, posting uint32)) {
	for _, p := range t.slots {
		if p != 0 {
			f(ix.valueOf(t, p), p)
		}
	}
}

// uvarint decodes a symbol ID, with a fast path for the one-byte IDs most
// labels have.
func uvarint(b []byte) (uint32, int) {
	if b[0] < 0x80 {
		return uint32(b[0]), 1
	}
	var x uint32
	var s uint
	for i, c := range b {
		if c < 0x80 {
			return x | uint32(c)<<s, i + 1
		}
		x |= uint32(c&0x7f) << s
		s += 7
	}
	panic("seriesindex: truncated varint")
}

// appendPosting appends the series of posting p to out.
func appendPosting(out []uint32, p uint32, lists []list) []uint32 {
	if p&listBit != 0 {
		return lists[p&^listBit].appendTo(out)
	}
	return append(out, p)
}

// filter keeps in a the refs also in b (in) or the refs not in b (!in);
// both sorted.
func filter(a, b []uint32, in bool) []uint32 {
	out := a[:0]
	j := 0
	for i, r := range a {
		for j < len(b) && b[j] < r {
			j++
		}
		if j == len(b) {
			return keepRest(out, a[i:], in)
		}
		if (b[j] == r) == in {
			out = append(out, r)
		}
	}
	return out
}
