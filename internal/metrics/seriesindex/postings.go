package seriesindex

import "math/bits"

// listBit marks a posting that indexes a list; without it the posting is the
// single series that has the value, kept inline: most values of a label
// unique per series (an ID, a path) need no list.
const listBit = 1 << 31

// values maps one label name's value symbols to their postings: open
// addressing over 8-byte slots, value ID+1 in the high half and the posting
// in the low half, 0 for an empty slot.
type values struct {
	slots []uint64
	n     int
}

func newValues() *values { return &values{slots: make([]uint64, 8)} }

func (t *values) slot(v uint32) int {
	mask := len(t.slots) - 1
	key := uint64(v) + 1
	// Fibonacci hashing spreads dense IDs over the table.
	i := int((key*0x9E3779B97F4A7C15)>>(64-bits.Len(uint(mask)))) & mask
	for ; ; i = (i + 1) & mask {
		if e := t.slots[i]; e == 0 || e>>32 == key {
			return i
		}
	}
}

// get returns the posting of value v.
func (t *values) get(v uint32) (uint32, bool) {
	e := t.slots[t.slot(v)]
	return uint32(e), e != 0
}

// add records that series ref, newer than every series recorded so far, has
// value v, so lists stay sorted by appending.
func (t *values) add(v, ref uint32, lists *[][]uint32) {
	i := t.slot(v)
	e := t.slots[i]
	switch {
	case e == 0:
		t.slots[i] = (uint64(v)+1)<<32 | uint64(ref)
		t.n++
		if t.n*4 > len(t.slots)*3 {
			t.grow()
		}
	case uint32(e)&listBit != 0:
		l := uint32(e) &^ listBit
		(*lists)[l] = append((*lists)[l], ref)
	default:
		*lists = append(*lists, []uint32{uint32(e), ref})
		t.slots[i] = e>>32<<32 | uint64(len(*lists)-1) | listBit
	}
}

func (t *values) grow() {
	old := t.slots
	t.slots = make([]uint64, 2*len(old))
	for _, e := range old {
		if e != 0 {
			t.slots[t.slot(uint32(e>>32)-1)] = e
		}
	}
}

// each calls f with every value ID and its posting.
func (t *values) each(f func(v, posting uint32)) {
	for _, e := range t.slots {
		if e != 0 {
			f(uint32(e>>32)-1, uint32(e))
		}
	}
}

// appendPosting appends the series of posting p to out.
func appendPosting(out []uint32, p uint32, lists [][]uint32) []uint32 {
	if p&listBit != 0 {
		return append(out, lists[p&^listBit]...)
	}
	return append(out, p)
}

// intersect keeps in a the refs also in b; both sorted.
func intersect(a, b []uint32) []uint32 {
	out := a[:0]
	j := 0
	for _, r := range a {
		for j < len(b) && b[j] < r {
			j++
		}
		if j == len(b) {
			break
		}
		if b[j] == r {
			out = append(out, r)
		}
	}
	return out
}

// subtract keeps in a the refs not in b; both sorted.
func subtract(a, b []uint32) []uint32 {
	out := a[:0]
	j := 0
	for _, r := range a {
		for j < len(b) && b[j] < r {
			j++
		}
		if j == len(b) || b[j] != r {
			out = append(out, r)
		}
	}
	return out
}
