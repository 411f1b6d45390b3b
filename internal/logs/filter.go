package logs

import (
	"math/bits"
	"sync"
)

// trigramFilter is a one-hash bitset of the byte trigrams of a chunk's lines. A
// line filter `|= "needle"` can match in the chunk only if every trigram of the
// needle is set, so most chunks without the needle are skipped unread. Sized at
// four bits per distinct trigram, a trigram falsely present has a ~22% chance, so
// a six-byte needle (four trigrams) reads a chunk without it about 0.2% of the time.
type trigramFilter []uint64

const (
	minFilterBits = 1 << 12
	maxFilterBits = 1 << 21
)

// filterBuilder sets trigram bits in a large bitset, then folds it down to four
// bits per set bit: with power-of-two sizes, position p of the large set is
// position p % m of the small one, so OR-ing its m-bit slices is exact.
type filterBuilder struct{ big trigramFilter }

var builders = sync.Pool{New: func() any { return &filterBuilder{big: make(trigramFilter, maxFilterBits/64)} }}

func newFilterBuilder() *filterBuilder { return builders.Get().(*filterBuilder) }

func (f *filterBuilder) add(line string) {
	if len(line) < 3 {
		return
	}
	t := uint32(line[0])<<8 | uint32(line[1])
	for i := 2; i < len(line); i++ {
		t = (t<<8 | uint32(line[i])) & 0xFFFFFF
		f.big.set(t)
	}
}

func (f *filterBuilder) build() trigramFilter {
	set := 0
	for _, w := range f.big {
		set += bits.OnesCount64(w)
	}
	m := minFilterBits
	for m < 4*set && m < maxFilterBits {
		m <<= 1
	}
	tf := make(trigramFilter, m/64)
	for i, w := range f.big {
		tf[i%len(tf)] |= w
	}
	clear(f.big)
	builders.Put(f)
	return tf
}

// hash spreads a trigram over the bitset (a multiplicative hash: the high bits mix
// all three bytes).
func (tf trigramFilter) pos(t uint32) uint64 {
	h := uint64(t) * 0x9E3779B97F4A7C15
	return h >> 32 % uint64(len(tf)*64)
}

func (tf trigramFilter) set(t uint32) {
	p := tf.pos(t)
	tf[p/64] |= 1 << (p % 64)
}

// mayContain reports whether some line of the chunk may contain s. Needles shorter
// than three bytes, and an empty filter (an old chunk), always may.
func (tf trigramFilter) mayContain(s string) bool {
	if len(tf) == 0 {
		return true
	}
	for i := 0; i+3 <= len(s); i++ {
		p := tf.pos(uint32(s[i])<<16 | uint32(s[i+1])<<8 | uint32(s[i+2]))
		if tf[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}
