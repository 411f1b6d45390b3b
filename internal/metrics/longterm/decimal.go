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
//
// A value is predicted from its mantissa, and the correction is the float
// bits of the value minus those of the prediction. Plain decimals predict
// mantissa×10^exp, which parsing the decimal gives; accumulated ones
// predict the previous value plus the mantissas' step×10^exp, which is what
// a float counter that a client adds increments to holds (client_golang's
// Counter.Add): the rounding noise of its running sum is then no
// correction at all.
type decimal struct {
	accumulated bool
	exp         int
	mantissas   []int64
	corrections []int64
	excIdx      []int
	excBits     []uint64
}

// maxCorrection bounds a correction: a value further from its prediction
// is an exception.
const maxCorrection = 1 << 20

// decimalValues finds the common exponent of vs and their mantissas. It
// declines (ok false) when more than a quarter of the values are not
// decimals: XOR'd float bits cost less then.
func decimalValues(vs []float64, accumulated bool) (d decimal, ok bool) {
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
	d.accumulated = accumulated
	d.corrections = make([]int64, len(vs))
	p := predictor{d: &d}
	for i, v := range vs {
		m, ok := rescale(ms[i], es[i], d.exp)
		c := int64(math.Float64bits(v)) - int64(math.Float64bits(p.predict(m)))
		if !ok || c > maxCorrection || c < -maxCorrection {
			d.excIdx = append(d.excIdx, i)
			d.excBits = append(d.excBits, math.Float64bits(v))
			m, c = p.prevM, 0 // no step in the mantissas where an exception stands
			p.exception(m)
		} else {
			p.value(m, v)
		}
		ms[i], d.corrections[i] = m, c
	}
	d.mantissas = ms
	return d, len(d.excIdx)*4 <= len(vs)
}

// predictor predicts each value of a decimal column from its mantissa and
// what came before, the same way when encoding and decoding.
type predictor struct {
	d      *decimal
	prevM  int64
	prevV  float64
	prevOK bool // prevV is a decimal's value, not an exception (nor before the first)
}

func (p *predictor) predict(m int64) float64 {
	if p.d.accumulated && p.prevOK {
		// The conversion keeps the sum from being fused with the
		// product, which would round differently on some CPUs.
		return p.prevV + float64(fromDecimal(m-p.prevM, p.d.exp))
	}
	return fromDecimal(m, p.d.exp)
}

func (p *predictor) value(m int64, v float64) { p.prevM, p.prevV, p.prevOK = m, v, true }
func (p *predictor) exception(m int64)        { p.prevM, p.prevOK = m, false }

// toDecimal splits v into m×10^e with |m| ≤ 2^53, |e| ≤ 22, or fails.
func toDecimal(v float64) (m int64, e int, ok bool) {
	if v == math.Trunc(v) && math.Abs(v) < maxExact {
		return int64(v), 0, true
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, 0, false
	}
	// The shortest decimal that parses back to |v|: "d.ddde±xx"; past 15
	// digits (0.1+0.2), the nearest of 15, which a correction then makes
	// exact.
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], math.Abs(v), 'e', -1, 64)
	if bytes.IndexByte(s, 'e')-1 > 15 { // digits, less the point
		s = strconv.AppendFloat(buf[:0], math.Abs(v), 'e', 11, 64)
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
	if v < 0 {
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
		return float64(float64(m) * pow10[exp])
	}
	return float64(float64(m) / pow10[-exp])
}

func (d decimal) append(dst []byte) []byte {
	if d.accumulated {
		dst = append(dst, kindAccumulated)
	} else {
		dst = append(dst, kindDecimal)
	}
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

func readDecimal(r *encoding.Decbuf, n int, accumulated bool, vs []float64) []float64 {
	d := decimal{accumulated: accumulated, exp: int(r.Varint64())}
	if d.exp < -maxExp || d.exp > maxExp {
		r.E = errCorrupt
		return vs
	}
	ms := readInts(r, n)
	cs := readInts(r, n)
	exc := r.Uvarint64()
	if r.E != nil || exc > uint64(n) {
		r.E = errCorrupt
		return vs
	}
	excBits := make(map[int]uint64, exc)
	i := uint64(0)
	for k := uint64(0); k < exc && r.E == nil; k++ {
		i += r.Uvarint64()
		if i >= uint64(n) {
			r.E = errCorrupt
			return vs
		}
		excBits[int(i)] = r.Be64()
	}
	p := predictor{d: &d}
	for i, m := range ms {
		if bits, ok := excBits[i]; ok {
			vs = append(vs, math.Float64frombits(bits))
			p.exception(m)
			continue
		}
		v := math.Float64frombits(uint64(int64(math.Float64bits(p.predict(m))) + cs[i]))
		vs = append(vs, v)
		p.value(m, v)
	}
	return vs
}

func sign(m int64) int64 {
	if m < 0 {
		return -1
	}
	return 1
}
