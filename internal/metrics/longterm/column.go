// Package longterm is the long-term tier of the metrics store: compacted TSDB
// blocks old enough to be done with compaction are rewritten into blocks of
// Vispyr's own format, which keeps float samples losslessly in about the
// bits of their random part (a counter's step, a gauge's digits), and read
// back through Prometheus's storage.Querier so PromQL and the label APIs see
// them as any other block.
//
// A series' samples in a block are one column: timestamps as
// delta-of-delta varints (a regular scrape interval costs about nothing),
// values as decimal mantissas at a common exponent when they are decimal
// numbers (most are: counters, gauges of integers, values with a few
// digits, as VictoriaMetrics finds), else as XOR'd float bits; the
// mantissas as values, deltas or deltas of deltas, bit-packed or not
// (ints.go); the column is then zstd-compressed.
package longterm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/tsdb/encoding"
)

// Column layout, before compression:
//
//	uvarint n | varint t0 | varint t1-t0 | varint dod...(n-2) | byte kind | values
//
// kind decimal, accumulated: varint exp | ints mantissas | ints corrections
// (ints.go) | uvarint len(exceptions) | (uvarint index step, 8 bytes float bits)...
// kind float:   8 bytes (bits XOR the previous value's bits) per sample.
//
// A column on disk is one byte (raw or zstd) and the payload.
const (
	kindDecimal     = 3
	kindFloat       = 2
	kindAccumulated = 4 // decimal, each value predicted from the previous one

	packRaw  = 0
	packZstd = 1

	// maxExact bounds a mantissa (and 10^22 a power of ten) so that
	// mantissa×10^exp, computed in float64, rounds exactly as parsing the
	// decimal does: both operands are exact, so the one rounding is correct.
	maxExact = 1 << 53
	maxExp   = 22
)

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(256<<20))
)

var errCorrupt = errors.New("corrupt long-term column")

// EncodeColumn appends the column of one series' samples (timestamps
// ascending) to dst.
func EncodeColumn(dst []byte, ts []int64, vs []float64) []byte {
	raw := binary.AppendUvarint(nil, uint64(len(ts)))
	raw = appendDoD(raw, ts)
	raw = appendValues(raw, vs)
	if z := zenc.EncodeAll(raw, nil); len(z) < len(raw) {
		return append(append(dst, packZstd), z...)
	}
	return append(append(dst, packRaw), raw...)
}

// DecodeColumn decodes a column into ts and vs (reused when large enough).
func DecodeColumn(b []byte, ts []int64, vs []float64) ([]int64, []float64, error) {
	if len(b) == 0 {
		return nil, nil, errCorrupt
	}
	raw := b[1:]
	switch b[0] {
	case packRaw:
	case packZstd:
		var err error
		if raw, err = zdec.DecodeAll(raw, nil); err != nil {
			return nil, nil, fmt.Errorf("decompress long-term column: %w", err)
		}
	default:
		return nil, nil, errCorrupt
	}
	r := encoding.Decbuf{B: raw}
	n := r.Uvarint64()
	// Every sample takes at least one byte, which bounds what a corrupt
	// count can make us allocate.
	if r.E != nil || n > uint64(len(raw)) {
		return nil, nil, errCorrupt
	}
	ts = readDoD(&r, int(n), ts[:0])
	vs = readValues(&r, int(n), vs[:0])
	if r.E != nil || len(r.B) != 0 {
		return nil, nil, errCorrupt
	}
	return ts, vs, nil
}

// appendDoD appends xs as the first, the first delta, and then the change of
// each delta: evenly spaced timestamps or a steadily rising counter cost a
// zero byte each.
func appendDoD(dst []byte, xs []int64) []byte {
	var prev, delta int64
	for i, t := range xs {
		switch i {
		case 0:
			dst = binary.AppendVarint(dst, t)
		case 1:
			delta = t - prev
			dst = binary.AppendVarint(dst, delta)
		default:
			d := t - prev
			dst = binary.AppendVarint(dst, d-delta)
			delta = d
		}
		prev = t
	}
	return dst
}

func readDoD(r *encoding.Decbuf, n int, ts []int64) []int64 {
	var prev, delta int64
	for i := 0; i < n && r.E == nil; i++ {
		switch i {
		case 0:
			prev = r.Varint64()
		case 1:
			delta = r.Varint64()
			prev += delta
		default:
			delta += r.Varint64()
			prev += delta
		}
		ts = append(ts, prev)
	}
	return ts
}

func appendValues(dst []byte, vs []float64) []byte {
	if d, ok := decimalValues(vs, false); ok {
		enc := d.append(nil)
		// A counter's running float sum is cheaper predicted from its
		// previous value; anything else, from its own decimal.
		if a, ok := decimalValues(vs, true); ok {
			if acc := a.append(nil); compressedLen(acc) < compressedLen(enc) {
				enc = acc
			}
		}
		return append(dst, enc...)
	}
	dst = append(dst, kindFloat)
	var prev uint64
	for _, v := range vs {
		bits := math.Float64bits(v)
		dst = binary.BigEndian.AppendUint64(dst, bits^prev)
		prev = bits
	}
	return dst
}

func readValues(r *encoding.Decbuf, n int, vs []float64) []float64 {
	switch r.Byte() {
	case kindDecimal:
		return readDecimal(r, n, false, vs)
	case kindAccumulated:
		return readDecimal(r, n, true, vs)
	case kindFloat:
		var prev uint64
		for i := 0; i < n && r.E == nil; i++ {
			prev ^= r.Be64()
			vs = append(vs, math.Float64frombits(prev))
		}
		return vs
	default:
		r.E = errCorrupt
		return vs
	}
}
