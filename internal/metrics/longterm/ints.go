package longterm

import (
	"encoding/binary"

	"github.com/prometheus/prometheus/tsdb/encoding"
)

// A stream of integers (mantissas, corrections) is stored in whichever of
// six forms zstd then compresses best: the values themselves (random
// gauges), their deltas (counters rising unevenly) or their deltas of
// deltas (counters rising steadily), each as zigzag varints or as byte
// planes (every value's lowest byte, then every second byte...), which
// keep the mostly-empty high bytes apart for the compressor.
//
//	byte order (0 values, 1 delta, 2 delta of delta) | byte layout (0 varint, 1 planes) |
//	varint: n varints; planes: byte width | width×n bytes
const (
	orderNone  = 0
	orderDelta = 1
	orderDoD   = 2

	layoutVarint = 0
	layoutPlanes = 1
)

func appendInts(dst []byte, xs []int64) []byte {
	var best []byte
	for order := byte(orderNone); order <= orderDoD; order++ {
		ys := transform(xs, order)
		for _, enc := range [][]byte{varints([]byte{order, layoutVarint}, ys), planes([]byte{order, layoutPlanes}, ys)} {
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
