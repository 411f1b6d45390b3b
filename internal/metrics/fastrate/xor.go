package fastrate

import (
	"encoding/binary"
	"math"
	"reflect"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// xorIteratorType is the type of an XOR chunk's own iterator, which
// yields every sample its bytes hold. A head chunk's iterator is another
// type when isolation hides some of its samples.
var xorIteratorType = reflect.TypeOf(chunkenc.NewXORChunk().Iterator(nil))

// addChunk adds the float samples of chk to r as its iterator yields
// them: an XOR chunk whose iterator yields all its samples is decoded in
// one loop, any other through the iterator. ok is false on a histogram
// or an error.
func (r *reader) addChunk(chk chunkenc.Chunk) (ok bool) {
	r.cit = chk.Iterator(r.cit)
	if chk.Encoding() == chunkenc.EncXOR && reflect.TypeOf(r.cit) == xorIteratorType && r.addXOR(chk.Bytes()) {
		return true
	}
	for vt := r.cit.Next(); vt != chunkenc.ValNone; vt = r.cit.Next() {
		if vt != chunkenc.ValFloat {
			return false
		}
		r.add(r.cit.At())
	}
	return r.cit.Err() == nil
}

// addXOR decodes the XOR chunk b (chunkenc.EncXOR's layout: a 2-byte
// sample count, then the first timestamp as a varint and value as 64
// bits, the second timestamp's delta as a uvarint, then delta-of-delta
// timestamps and XOR-compressed values) and adds its samples to r. It
// returns false, leaving r as it was, where the bytes are not a
// well-formed chunk: too short, a varint overflowing, a value's bits
// reaching past 64. On a well-formed chunk it yields exactly what
// chunkenc's iterator yields.
func (r *reader) addXOR(b []byte) bool {
	pts, resets := len(r.pts), len(r.resets)
	if !r.decodeXOR(b) {
		r.pts, r.resets = r.pts[:pts], r.resets[:resets]
		return false
	}
	return true
}

func (r *reader) decodeXOR(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	total := int(binary.BigEndian.Uint16(b))
	br := bitReader{b: b[2:]}
	if total == 0 {
		return true
	}
	t, ok := br.varint()
	if !ok {
		return false
	}
	vb, ok := br.readN(64)
	if !ok {
		return false
	}
	r.add(t, math.Float64frombits(vb))
	if total == 1 {
		return true
	}
	delta, ok := br.uvarint()
	if !ok {
		return false
	}
	t += int64(delta)
	var leading, trailing uint8
	if vb, ok = br.xorValue(vb, &leading, &trailing); !ok {
		return false
	}
	r.add(t, math.Float64frombits(vb))
	for range total - 2 {
		if br.n < 56 {
			br.refill()
		}
		// The common cases inline: a regular interval ('0'), and a value
		// changed within the last change's meaningful bits ('10' and
		// those bits); the others as dod and xorValue read them.
		if br.n > 0 && br.buf>>63 == 0 {
			br.buf <<= 1
			br.n--
		} else {
			dod, ok := br.dod()
			if !ok {
				return false
			}
			delta = uint64(int64(delta) + dod)
		}
		t += int64(delta)
		mbits := uint(64 - leading - trailing)
		switch {
		case br.n > 0 && br.buf>>63 == 0:
			br.buf <<= 1
			br.n--
		case br.n >= 2+mbits && br.buf>>62 == 0b10:
			vb ^= (br.buf << 2 >> (64 - mbits)) << trailing
			br.buf <<= 2 + mbits
			br.n -= 2 + mbits
		case br.n >= 13 && br.buf>>62 == 0b11:
			// New leading zeros and meaningful bits ('11', 5 bits, 6
			// bits; counters that grow by varying amounts take this
			// often), read at once when the buffer holds the bits too.
			l, m := uint(br.buf>>57&0x1f), uint(br.buf>>51&0x3f)
			if m == 0 {
				m = 64
			}
			if l+m > 64 || br.n < 13+m || m > 51 {
				if vb, ok = br.xorValue(vb, &leading, &trailing); !ok {
					return false
				}
				break
			}
			leading, trailing = uint8(l), uint8(64-l-m)
			vb ^= (br.buf << 13 >> (64 - m)) << trailing
			br.buf <<= 13 + m
			br.n -= 13 + m
		default:
			if vb, ok = br.xorValue(vb, &leading, &trailing); !ok {
				return false
			}
		}
		r.add(t, math.Float64frombits(vb))
	}
	return true
}

// bitReader reads a byte stream bit by bit, most significant first: buf
// holds the next n ≤ 64 bits at its top, and possibly bits after them.
type bitReader struct {
	b   []byte // the bytes not yet in buf
	buf uint64
	n   uint
}

// refill tops buf up to at least 56 bits, or to the stream's end.
func (br *bitReader) refill() {
	if len(br.b) >= 8 {
		br.buf |= binary.BigEndian.Uint64(br.b) >> br.n
		k := (63 - br.n) >> 3
		br.b = br.b[k:]
		br.n |= 56
		return
	}
	for br.n <= 56 && len(br.b) > 0 {
		br.buf |= uint64(br.b[0]) << (56 - br.n)
		br.b = br.b[1:]
		br.n += 8
	}
}

// read returns the next k ≤ 56 bits.
func (br *bitReader) read(k uint) (uint64, bool) {
	if br.n < k {
		br.refill()
		if br.n < k {
			return 0, false
		}
	}
	v := br.buf >> (64 - k)
	br.buf <<= k
	br.n -= k
	return v, true
}

func (br *bitReader) bit() (bool, bool) {
	v, ok := br.read(1)
	return v == 1, ok
}

// readN returns the next k ≤ 64 bits.
func (br *bitReader) readN(k uint) (uint64, bool) {
	if k <= 56 {
		return br.read(k)
	}
	hi, ok1 := br.read(k - 32)
	lo, ok2 := br.read(32)
	return hi<<32 | lo, ok1 && ok2
}

// uvarint is binary.ReadUvarint's, false on its errors.
func (br *bitReader) uvarint() (uint64, bool) {
	var x uint64
	var s uint
	for i := range binary.MaxVarintLen64 {
		c, ok := br.read(8)
		if !ok {
			return 0, false
		}
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, false
			}
			return x | c<<s, true
		}
		x |= (c & 0x7f) << s
		s += 7
	}
	return 0, false
}

// varint is binary.ReadVarint's, false on its errors.
func (br *bitReader) varint() (int64, bool) {
	ux, ok := br.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x, ok
}

// dod is the next timestamp's delta of delta: '0' for none, '10', '110'
// and '1110' for 14, 17 and 20 signed bits, '1111' for 64.
func (br *bitReader) dod() (int64, bool) {
	var sz uint
	switch {
	case br.n > 0 && br.buf>>63 == 0: // the common case first
		br.buf <<= 1
		br.n--
		return 0, true
	default:
		d := 0
		for ; d < 4; d++ {
			one, ok := br.bit()
			if !ok {
				return 0, false
			}
			if !one {
				break
			}
		}
		switch d {
		case 0:
			return 0, true
		case 1:
			sz = 14
		case 2:
			sz = 17
		case 3:
			sz = 20
		default:
			v, ok := br.readN(64)
			return int64(v), ok
		}
	}
	bits, ok := br.read(sz)
	if !ok {
		return 0, false
	}
	// Negative numbers come back as high unsigned ones (chunkenc's
	// bstream.md); exactly 1<<(sz-1) stays positive, as chunkenc reads it.
	if bits > 1<<(sz-1) {
		bits -= 1 << sz
	}
	return int64(bits), true
}

// xorValue is the value after v: '0' for the same, '10' for v XOR the
// meaningful bits between the leading and trailing zeros of the last
// change, '11' for new leading zeros (5 bits), a count of meaningful bits
// (6 bits, 0 meaning 64) and those bits.
func (br *bitReader) xorValue(v uint64, leading, trailing *uint8) (uint64, bool) {
	changed, ok := br.bit()
	if !ok {
		return 0, false
	}
	if !changed {
		return v, true
	}
	fresh, ok := br.bit()
	if !ok {
		return 0, false
	}
	if fresh {
		l, ok1 := br.read(5)
		m, ok2 := br.read(6)
		if !ok1 || !ok2 {
			return 0, false
		}
		if m == 0 {
			m = 64
		}
		if l+m > 64 {
			return 0, false // chunkenc's iterator wraps its trailing zeros around
		}
		*leading, *trailing = uint8(l), uint8(64-l-m)
	}
	bits, ok := br.readN(uint(64 - *leading - *trailing))
	return v ^ bits<<*trailing, ok
}
