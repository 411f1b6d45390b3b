package longterm

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/prometheus/prometheus/tsdb/encoding"
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
	exp         int
	mantissas   []int64
	corrections []int64 // float bits of the value minus those of mantissa×10^exp
	excIdx      []int
	excBits     []uint64
}

// maxCorrection bounds a correction: a value further from its decimal is
// an exception.
const maxCorrection = 1 << 20

// decimalValues finds the common exponent of vs and their mantissas. It
// declines (ok false) when more than a quarter of the values are not
// decimals: XOR'd float bits cost less then.
func decimalValues(vs []float64) (d decimal, ok bool) {
	ms := make([]int64, len(vs))
	es := make([]int, len(vs))
	// The common exponent is the one most values have: a value with more
	// digits is rounded to it and corrected, so one outlier does not make
	// every other mantissa overflow.
	count := map[int]int{}
	for i, v := range vs {
		m, e, ok := toDecimal(v)
		if !ok {
			es[i] = math.MaxInt
			continue
		}
		ms[i], es[i] = m, e
		count[e]++
	}
	for e, n := range count {
		if n > count[d.exp] || n == count[d.exp] && e < d.exp {
			d.exp = e
		}
	}
	var prev int64
	d.corrections = make([]int64, len(vs))
	for i, v := range vs {
		m, ok := rescale(ms[i], es[i], d.exp)
		c := int64(math.Float64bits(v)) - int64(math.Float64bits(fromDecimal(m, d.exp)))
		if !ok || c > maxCorrection || c < -maxCorrection {
			d.excIdx = append(d.excIdx, i)
			d.excBits = append(d.excBits, math.Float64bits(v))
			m, c = prev, 0 // no step in the mantissas where an exception stands
		}
		ms[i], prev, d.corrections[i] = m, m, c
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
	// The shortest decimal that parses back to v: "-d.ddde±xx"; past 15
	// digits (0.1+0.2), the nearest of 15, which a correction then makes
	// exact.
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], v, 'e', -1, 64)
	if digits := bytes.IndexByte(s, 'e') - 1 - bytes.IndexByte(s, '-')&1; digits > 15 {
		s = strconv.AppendFloat(buf[:0], v, 'e', 11, 64)
	}
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
	for m != 0 && m%10 == 0 {
		m, e = m/10, e+1
	}
	if e < -maxExp || e > maxExp {
		return 0, 0, false
	}
	if neg {
		m = -m
	}
	return m, e, true
}

// rescale gives m×10^e as a mantissa at exponent to, rounded when to > e,
// unless it overflows.
func rescale(m int64, e, to int) (int64, bool) {
	if e == math.MaxInt {
		return 0, false
	}
	for ; e < to; e++ {
		m = (m + 5*sign(m)) / 10
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
	dst = appendInts(dst, d.mantissas)
	dst = appendInts(dst, d.corrections)
	dst = binary.AppendUvarint(dst, uint64(len(d.excIdx)))
	prev := 0
	for k, i := range d.excIdx {
		dst = binary.AppendUvarint(dst, uint64(i-prev))
		dst = binary.BigEndian.AppendUint64(dst, d.excBits[k])
		prev = i
	}
	return dst
}

func readDecimal(r *encoding.Decbuf, n int, vs []float64) []float64 {
	exp := r.Varint64()
	if exp < -maxExp || exp > maxExp {
		r.E = errCorrupt
		return vs
	}
	ms := readInts(r, n)
	cs := readInts(r, n)
	if r.E != nil {
		return vs
	}
	for i, m := range ms {
		vs = append(vs, math.Float64frombits(uint64(int64(math.Float64bits(fromDecimal(m, int(exp))))+cs[i])))
	}
	exc := r.Uvarint64()
	if exc > uint64(n) {
		r.E = errCorrupt
		return vs
	}
	i := uint64(0)
	for k := uint64(0); k < exc && r.E == nil; k++ {
		i += r.Uvarint64()
		bits := r.Be64()
		if i >= uint64(n) {
			r.E = errCorrupt
			return vs
		}
		vs[i] = math.Float64frombits(bits)
	}
	return vs
}

func sign(m int64) int64 {
	if m < 0 {
		return -1
	}
	return 1
}
