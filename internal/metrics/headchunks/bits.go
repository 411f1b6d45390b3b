package headchunks

import (
	"math"
	"math/bits"
)

// bitWriter writes one sample's bits, most significant bit first, the way
// Prometheus's XOR chunks are laid out, into buf, starting from the chunk's
// last, partly written byte (see Buffer.write). A fixed array, not a slice
// of the chunk, keeps it on the stack.
type bitWriter struct {
	buf  [maxSampleBytes + 1]byte
	n    int   // bytes of buf written
	free uint8 // bits not yet written in buf[n-1]
}

func (w *bitWriter) bit(one bool) {
	if w.free == 0 {
		w.buf[w.n] = 0
		w.n++
		w.free = 8
	}
	w.free--
	if one {
		w.buf[w.n-1] |= 1 << w.free
	}
}

func (w *bitWriter) byte(c byte) {
	if w.free == 0 {
		w.buf[w.n] = c
		w.n++
		return
	}
	w.buf[w.n-1] |= c >> (8 - w.free)
	w.buf[w.n] = c << w.free
	w.n++
}

// bits writes u's n lowest bits, as many at a time as the last byte has
// room for.
func (w *bitWriter) bits(u uint64, n int) {
	for n > 0 {
		if w.free == 0 {
			w.buf[w.n] = 0
			w.n++
			w.free = 8
		}
		k := min(int(w.free), n)
		n -= k
		w.free -= uint8(k)
		w.buf[w.n-1] |= byte(u>>uint(n)) & byte(1<<k-1) << w.free
	}
}

// maxSampleBytes is the most one sample can add to a chunk: a 64-bit
// delta of deltas with its 4-bit code, and a value with 77 bits of header
// and payload (as chunkenc.MaxBytesPerXORChunkBeforeAppend assumes).
const maxSampleBytes = 19

// appendSample writes sample (t, v) after the s's last one, as
// chunkenc's XOR appender would, and updates s's encoder state. num is the
// number of samples already in the chunk.
func (w *bitWriter) appendSample(s *series, num uint16, t int64, v float64) {
	var tDelta uint64
	switch num {
	case 0:
		w.varint(t)
		w.bits(math.Float64bits(v), 64)
		s.leading = 0xff
	case 1:
		tDelta = uint64(t - s.t)
		w.uvarint(tDelta)
		w.value(s, v)
	default:
		tDelta = uint64(t - s.t)
		w.dod(int64(tDelta - uint64(s.tDelta)))
		w.value(s, v)
	}
	s.t, s.v, s.tDelta = t, math.Float64bits(v), uint32(tDelta)
}

func (w *bitWriter) varint(x int64) {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	w.uvarint(ux)
}

func (w *bitWriter) uvarint(x uint64) {
	for x >= 0x80 {
		w.byte(byte(x) | 0x80)
		x >>= 7
	}
	w.byte(byte(x))
}

// dod writes a delta of timestamp deltas in the fewest of chunkenc's sizes.
func (w *bitWriter) dod(dod int64) {
	switch {
	case dod == 0:
		w.bit(false)
	case fits(dod, 14):
		w.bits(0b10, 2)
		w.bits(uint64(dod), 14)
	case fits(dod, 17):
		w.bits(0b110, 3)
		w.bits(uint64(dod), 17)
	case fits(dod, 20):
		w.bits(0b1110, 4)
		w.bits(uint64(dod), 20)
	default:
		w.bits(0b1111, 4)
		w.bits(uint64(dod), 64)
	}
}

// fits reports whether x is in the range chunkenc gives an n-bit field:
// one more at the top than two's complement holds, one less at the bottom.
func fits(x int64, n uint8) bool {
	return -((1<<(n-1))-1) <= x && x <= 1<<(n-1)
}

// value writes v XORed with the last value, reusing the last window of
// meaningful bits when the new one fits inside it.
func (w *bitWriter) value(s *series, v float64) {
	delta := math.Float64bits(v) ^ s.v
	if delta == 0 {
		w.bit(false)
		return
	}
	w.bit(true)
	leading := uint8(min(bits.LeadingZeros64(delta), 31)) // 5 bits hold it
	trailing := uint8(bits.TrailingZeros64(delta))
	if s.leading != 0xff && leading >= s.leading && trailing >= s.trailing {
		w.bit(false)
		w.bits(delta>>s.trailing, 64-int(s.leading)-int(s.trailing))
		return
	}
	s.leading, s.trailing = leading, trailing
	w.bit(true)
	w.bits(uint64(leading), 5)
	sig := 64 - leading - trailing // 64 is written as 0 in 6 bits
	w.bits(uint64(sig), 6)
	w.bits(delta>>trailing, int(sig))
}
