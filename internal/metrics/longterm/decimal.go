package longterm

import (
	"encoding/binary"
	"math"
	"strconv"
)

var pow10 = func() (p [maxExp + 1]float64) {
	p[0] = 1
	for i := 1; i <= maxExp; i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// decimal is a column's values as mantissas at one exponent; the values
// that are no such decimal (NaN, the stale marker, ±Inf, -0, too many
// digits) are exceptions kept as their float bits.
type decimal struct {
	exp       int
	mantissas []int64
	excIdx    []int
	excBits   []uint64
}

// decimalValues finds the common exponent of vs and their mantissas. It
// declines (ok false) when more than a quarter of the values are not
// decimals: XOR'd float bits cost less then.
func decimalValues(vs []float64) (d decimal, ok bool) {
	ms := make([]int64, len(vs))
	es := make([]int, len(vs))
	d.exp = maxExp + 1
	for i, v := range vs {
		m, e, ok := toDecimal(v)
		if !ok {
			es[i] = math.MaxInt
			continue
		}
		ms[i], es[i] = m, e
		d.exp = min(d.exp, e)
	}
	if d.exp > maxExp {
		d.exp = 0 // no decimals at all
	}
	var prev int64
	for i, v := range vs {
		m, ok := rescale(ms[i], es[i], d.exp)
		if !ok || math.Float64bits(fromDecimal(m, d.exp)) != math.Float64bits(v) {
			d.excIdx = append(d.excIdx, i)
			d.excBits = append(d.excBits, math.Float64bits(v))
			m = prev // no step in the mantissas where an exception stands
		}
		ms[i], prev = m, m
	}
	d.mantissas = ms
	return d, len(d.excIdx)*4 <= len(vs)
}

// toDecimal splits v into m×10^e with |m| ≤ 2^53, |e| ≤ 22, or fails.
func toDecimal(v float64) (m int64, e int, ok bool) {
	if v == math.Trunc(v) && math.Abs(v) < maxExact {
		return int64(v), 0, true
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, 0, false
	}
	// The shortest decimal that parses back to v: "-d.ddde±xx".
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], v, 'e', -1, 64)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	digits := 0
	i := 0
	for ; i < len(s) && s[i] != 'e'; i++ {
		if s[i] == '.' {
			continue
		}
		m = m*10 + int64(s[i]-'0')
		digits++
		if m > maxExact {
			return 0, 0, false
		}
	}
	x, err := strconv.Atoi(string(s[i+1:]))
	if err != nil {
		return 0, 0, false
	}
	e = x - (digits - 1)
	if e < -maxExp || e > maxExp {
		return 0, 0, false
	}
	if neg {
		m = -m
	}
	return m, e, true
}

// rescale gives m×10^e as a mantissa at exponent to (≤ e), if it stays exact.
func rescale(m int64, e, to int) (int64, bool) {
	if e == math.MaxInt {
		return 0, false
	}
	for ; e > to; e-- {
		if m > maxExact/10 || m < -maxExact/10 {
			return 0, false
		}
		m *= 10
	}
	return m, true
}

func fromDecimal(m int64, exp int) float64 {
	if exp >= 0 {
		return float64(m) * pow10[exp]
	}
	return float64(m) / pow10[-exp]
}

func (d decimal) append(dst []byte) []byte {
	dst = append(dst, kindDecimal)
	dst = binary.AppendVarint(dst, int64(d.exp))
	// Counters rising at a steady rate compress best as delta of delta,
	// gauges as deltas: keep the shorter.
	dod := appendDoD([]byte{orderDoD}, d.mantissas)
	delta := appendDeltas([]byte{orderDelta}, d.mantissas)
	if len(dod) < len(delta) {
		dst = append(dst, dod...)
	} else {
		dst = append(dst, delta...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(d.excIdx)))
	prev := 0
	for k, i := range d.excIdx {
		dst = binary.AppendUvarint(dst, uint64(i-prev))
		dst = binary.BigEndian.AppendUint64(dst, d.excBits[k])
		prev = i
	}
	return dst
}

func appendDeltas(dst []byte, xs []int64) []byte {
	var prev int64
	for _, x := range xs {
		dst = binary.AppendVarint(dst, x-prev)
		prev = x
	}
	return dst
}

func readDecimal(r *reader, n int, vs []float64) []float64 {
	exp := r.varint()
	if exp < -maxExp || exp > maxExp {
		r.fail()
		return vs
	}
	var ms []int64
	switch r.byte() {
	case orderDoD:
		ms = readDoD(r, n, nil)
	case orderDelta:
		var prev int64
		for i := 0; i < n && r.err == nil; i++ {
			prev += r.varint()
			ms = append(ms, prev)
		}
	default:
		r.fail()
	}
	if r.err != nil {
		return vs
	}
	for _, m := range ms {
		vs = append(vs, fromDecimal(m, int(exp)))
	}
	exc := r.uvarint()
	if exc > uint64(n) {
		r.fail()
		return vs
	}
	i := uint64(0)
	for k := uint64(0); k < exc && r.err == nil; k++ {
		i += r.uvarint()
		bits := r.uint64()
		if i >= uint64(n) {
			r.fail()
			return vs
		}
		vs[i] = math.Float64frombits(bits)
	}
	return vs
}
