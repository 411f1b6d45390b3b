package longterm

import (
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/prometheus/prometheus/tsdb/encoding"
)

// A stream of integers (mantissas, corrections) is stored in whichever of
// nine forms zstd then compresses best: the values themselves (random
// gauges), their deltas (counters rising unevenly) or their deltas of
// deltas (counters rising steadily), each as zigzag varints, as byte
// planes (every value's lowest byte, then every second byte...), which
// keep the mostly-empty high bytes apart for the compressor, or bit-packed
// above their minimum (frame of reference), which spends on a uniformly
// random step of 0..999 its 10 bits where zstd's byte-wise entropy coding
// of varints or planes spends about 12.
//
//	byte order (0 values, 1 delta, 2 delta of delta) | byte layout (0 varint, 1 planes, 2 bits) |
//	varint: n varints; planes: byte width | width×n bytes;
//	bits: order varints | varint min | byte width | ⌈width×(n-order)/8⌉ bytes, little-endian bit order
const (
	orderNone  = 0
	orderDelta = 1
	orderDoD   = 2

	layoutVarint = 0
	layoutPlanes = 1
	layoutBits   = 2
)

func appendInts(dst []byte, xs []int64) []byte {
	var best []byte
	for order := byte(orderNone); order <= orderDoD; order++ {
		ys := transform(xs, order)
		for _, enc := range [][]byte{varints([]byte{order, layoutVarint}, ys), planes([]byte{order, layoutPlanes}, ys), packBits([]byte{order, layoutBits}, ys, int(order))} {
			if best == nil || compressedLen(enc) < compressedLen(best) {
				best = enc
			}
		}
	}
	return append(dst, best...)
}

func compressedLen(b []byte) int { return len(zenc.EncodeAll(b, nil)) }

// transform returns xs, their deltas, or their deltas of deltas.
func transform(xs []int64, order byte) []int64 {
	ys := make([]int64, len(xs))
	var prev, delta int64
	for i, x := range xs {
		switch {
		case order == orderNone:
			ys[i] = x
		case order == orderDelta || i < 2:
			ys[i] = x - prev
			delta = x - prev
		default:
			ys[i] = (x - prev) - delta
			delta = x - prev
		}
		prev = x
	}
	if order == orderDoD && len(xs) > 1 {
		ys[1] = xs[1] - xs[0]
	}
	return ys
}

// untransform reverses transform in place.
func untransform(ys []int64, order byte) {
	var prev, delta int64
	for i, y := range ys {
		switch {
		case order == orderNone:
			continue
		case order == orderDelta || i < 2:
			delta = y
		default:
			delta += y
		}
		prev += delta
		ys[i] = prev
	}
}

func varints(dst []byte, ys []int64) []byte {
	for _, y := range ys {
		dst = binary.AppendVarint(dst, y)
	}
	return dst
}

func zigzag(y int64) uint64   { return uint64(y<<1) ^ uint64(y>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func planes(dst []byte, ys []int64) []byte {
	var or uint64
	for _, y := range ys {
		or |= zigzag(y)
	}
	width := 0
	for ; or != 0; or >>= 8 {
		width++
	}
	dst = append(dst, byte(width))
	for p := 0; p < width; p++ {
		for _, y := range ys {
			dst = append(dst, byte(zigzag(y)>>(8*p)))
		}
	}
	return dst
}

// packBits appends ys as head varints (a delta stream's first value, a
// delta-of-delta stream's first two, which would widen every other) | varint
// min | byte width | each other y-min in width bits.
func packBits(dst []byte, ys []int64, head int) []byte {
	head = min(head, len(ys))
	dst = varints(dst, ys[:head])
	ys = ys[head:]
	lo := int64(0)
	if len(ys) > 0 {
		lo = slices.Min(ys)
	}
	var or uint64
	for _, y := range ys {
		or |= uint64(y) - uint64(lo) // the true difference, even past MaxInt64
	}
	width := bits.Len64(or)
	dst = binary.AppendVarint(dst, lo)
	dst = append(dst, byte(width))
	var acc uint64 // bits not yet written, lowest first
	var held int
	for _, y := range ys {
		u := uint64(y) - uint64(lo)
		acc |= u << held
		if held+width >= 64 {
			dst = binary.LittleEndian.AppendUint64(dst, acc)
			acc = 0
			if held > 0 {
				acc = u >> (64 - held)
			}
			held = held + width - 64
			continue
		}
		held += width
	}
	for ; held > 0; held -= 8 {
		dst = append(dst, byte(acc))
		acc >>= 8
	}
	return dst
}

// unpackBits reads what packBits wrote into ys.
func unpackBits(r *encoding.Decbuf, ys []int64, head int) {
	head = min(head, len(ys))
	for i := range head {
		ys[i] = r.Varint64()
	}
	ys = ys[head:]
	lo := r.Varint64()
	width := int(r.Byte())
	size := (width*len(ys) + 7) / 8
	if r.E != nil || width > 64 || len(r.B) < size {
		r.E = errCorrupt
		return
	}
	b := r.B[:size]
	r.B = r.B[size:]
	mask := uint64(1)<<width - 1 // width 64: all ones
	for i := range ys {
		bit := i * width
		var u uint64
		// A value spans at most 9 bytes from its first.
		for k, got := bit/8, -(bit % 8); got < width; k, got = k+1, got+8 {
			if got < 0 {
				u |= uint64(b[k]) >> -got
			} else {
				u |= uint64(b[k]) << got
			}
		}
		ys[i] = int64(uint64(lo) + u&mask)
	}
}

func readInts(r *encoding.Decbuf, n int) []int64 {
	order, layout := r.Byte(), r.Byte()
	if r.E != nil || order > orderDoD {
		r.E = errCorrupt
		return nil
	}
	ys := make([]int64, n)
	switch layout {
	case layoutVarint:
		for i := range ys {
			ys[i] = r.Varint64()
		}
	case layoutPlanes:
		width := int(r.Byte())
		if width > 8 || len(r.B) < width*n {
			r.E = errCorrupt
			return nil
		}
		us := make([]uint64, n)
		for p := 0; p < width; p++ {
			for i := range us {
				us[i] |= uint64(r.B[p*n+i]) << (8 * p)
			}
		}
		r.B = r.B[width*n:]
		for i, u := range us {
			ys[i] = unzigzag(u)
		}
	case layoutBits:
		unpackBits(r, ys, int(order))
	default:
		r.E = errCorrupt
		return nil
	}
	if r.E != nil {
		return nil
	}
	untransform(ys, order)
	return ys
}
