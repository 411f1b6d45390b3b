package longterm

import (
	"math"
	"math/rand"
	"testing"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/encoding"
)

func roundTrip(t *testing.T, ts []int64, vs []float64) []byte {
	t.Helper()
	b := EncodeColumn(nil, ts, vs)
	gotT, gotV, err := DecodeColumn(b, nil, nil)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(gotT) != len(ts) || len(gotV) != len(vs) {
		t.Fatalf("decoded %d/%d samples, want %d", len(gotT), len(gotV), len(ts))
	}
	for i := range ts {
		if gotT[i] != ts[i] || math.Float64bits(gotV[i]) != math.Float64bits(vs[i]) {
			t.Fatalf("sample %d: got (%d, %v %x), want (%d, %v %x)", i, gotT[i], gotV[i], math.Float64bits(gotV[i]), ts[i], vs[i], math.Float64bits(vs[i]))
		}
	}
	return b
}

func regular(n int, start, step int64) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = start + int64(i)*step
	}
	return ts
}

func TestColumnRoundTripKeepsEveryBit(t *testing.T) {
	stale := math.Float64frombits(value.StaleNaN)
	f := func(name string, ts []int64, vs []float64) {
		t.Run(name, func(t *testing.T) { roundTrip(t, ts, vs) })
	}
	f("empty", nil, nil)
	f("one", []int64{1_700_000_000_000}, []float64{42})
	f("negative timestamps", []int64{-5000, -10, 0, 7}, []float64{1, 2, 3, 4})
	f("special values among integers", regular(8, 1000, 15000),
		[]float64{1, math.NaN(), stale, math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, 7})
	f("all stale", regular(3, 0, 1), []float64{stale, stale, stale})
	f("negative and large integers", regular(6, 0, 1),
		[]float64{-1, -(1 << 53), 1 << 53, 1<<53 + 2, -9e18, 1e300})
	f("decimals of mixed exponents", regular(6, 0, 10),
		[]float64{0.1, 1234.5678, 1e-20, 3e22, 5e-324, 0.30000000000000004})
	f("extremes", []int64{math.MinInt64, 0, math.MaxInt64}, []float64{math.MaxFloat64, -math.SmallestNonzeroFloat64, 1})
	irregular := []int64{0, 15_001, 29_950, 45_000, 61_234, 120_000, 120_001}
	f("irregular timestamps", irregular, []float64{0.5, 0.25, 0.125, 3, 2, 1, 0})

	rnd := rand.New(rand.NewSource(1))
	vs := make([]float64, 500)
	for i := range vs {
		vs[i] = rnd.NormFloat64() * 1e6
	}
	f("random floats", regular(len(vs), 0, 30_000), vs)
	for i := range vs {
		vs[i] = math.Round(rnd.Float64()*1e4) / 100 // two decimals, as a percentage gauge
	}
	f("two-decimal gauge", regular(len(vs), 0, 30_000), vs)
}

// A counter scraped every 15 s is what most long-term samples are; it must
// cost a small fraction of Prometheus's XOR chunk.
func TestColumnIsFarSmallerThanXORChunks(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	const n = 5760 // one day at 15 s
	ts := make([]int64, n)
	vs := make([]float64, n)
	var c float64
	for i := range ts {
		ts[i] = 1_700_000_000_000 + int64(i)*15_000 + int64(rnd.Intn(3)) // jitter as a real scraper
		c += float64(rnd.Intn(200))
		vs[i] = c
	}
	col := roundTrip(t, ts, vs)
	xor := 0
	for start := 0; start < n; start += 120 { // Prometheus cuts a chunk at 120 samples
		chk := chunkenc.NewXORChunk()
		app, err := chk.Appender()
		if err != nil {
			t.Fatal(err)
		}
		for i := start; i < min(start+120, n); i++ {
			app.Append(0, ts[i], vs[i])
		}
		xor += len(chk.Bytes())
	}
	t.Logf("column %.2f bytes/sample, XOR chunks %.2f", float64(len(col))/n, float64(xor)/n)
	if len(col)*2 > xor {
		t.Fatalf("column takes %d bytes, XOR chunks %d: want at most half", len(col), xor)
	}
}

// Each kind of series the bench load (and node_exporter) has costs about
// the bits of its random part, not the bytes of its varints: a counter's
// random step of 0..999 its 10 bits, a float counter summing two-decimal
// steps of 0..14.99 its 11 bits (the sum's float rounding noise costs
// nothing), a two-decimal gauge of 0..999.99 its 17 bits.
func TestColumnCostsTheBitsOfTheRandomPart(t *testing.T) {
	const n = 5760 // one day at 15 s
	rnd := rand.New(rand.NewSource(3))
	cases := []struct {
		name string
		next func(v float64) float64
		bits float64
	}{
		{"integer counter", func(v float64) float64 { return v + float64(rnd.Intn(1000)) }, 10},
		{"float counter", func(v float64) float64 { return v + float64(rnd.Intn(1500))/100 }, 11},
		{"two-decimal gauge", func(float64) float64 { return float64(rnd.Intn(100000)) / 100 }, 17},
	}
	for _, c := range cases {
		vs := make([]float64, n)
		v := 1e6 // a day into the series: large values, small steps
		for i := range vs {
			v = c.next(v)
			vs[i] = v
		}
		got := float64(len(roundTrip(t, regular(n, 1_700_000_000_000, 15_000), vs))) / n
		t.Logf("%s: %.3f bytes/sample", c.name, got)
		if want := c.bits / 8 * 1.03; got > want {
			t.Errorf("%s: %.3f bytes/sample, want at most %.3f", c.name, got, want)
		}
	}
}

func TestBitPackingRoundTripsEveryWidth(t *testing.T) {
	for width := 0; width <= 64; width++ {
		ys := make([]int64, 37)
		for i := range ys {
			ys[i] = int64(rand.Uint64() >> (64 - width) >> 1 << 1) // 0 for width 0
			if width > 0 && i%2 == 1 {
				ys[i] = int64(uint64(1)<<(width-1) - 1 + uint64(1)<<(width-1)) // the widest value
			}
		}
		ys[0] = math.MinInt64 + int64(width) // the head, outside the frame
		for head := 0; head <= 2; head++ {
			b := packBits(nil, ys, head)
			r := encoding.Decbuf{B: b}
			got := make([]int64, len(ys))
			unpackBits(&r, got, head)
			if r.E != nil || len(r.B) != 0 {
				t.Fatalf("width %d head %d: %v, %d bytes left", width, head, r.E, len(r.B))
			}
			for i := range ys {
				if got[i] != ys[i] {
					t.Fatalf("width %d head %d: value %d is %d, want %d", width, head, i, got[i], ys[i])
				}
			}
		}
	}
}

func TestDecodeColumnRefusesCorruptInput(t *testing.T) {
	good := EncodeColumn(nil, regular(100, 0, 15_000), make([]float64, 100))
	for _, b := range [][]byte{nil, {9}, good[:len(good)-1], append(append([]byte{}, good...), 0)} {
		if _, _, err := DecodeColumn(b, nil, nil); err == nil {
			t.Errorf("DecodeColumn(%x) succeeded on corrupt input", b)
		}
	}
}

func FuzzDecodeColumn(f *testing.F) {
	f.Add(EncodeColumn(nil, regular(10, 0, 15_000), []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, math.NaN()}))
	f.Add(EncodeColumn(nil, []int64{3, 1, 2}, []float64{0.1, 1e300, -2}))
	f.Add([]byte{packRaw, 2, 0, 2, kindDecimal, 0, orderDelta, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{packRaw, 1, 0, kindFloat, 0, 0, 0, 0, 0, 0, 0, 0})
	var sum float64
	steps := make([]float64, 300)
	for i := range steps {
		sum += float64(i%150) / 100
		steps[i] = sum
	}
	steps[7] = math.NaN()
	f.Add(EncodeColumn(nil, regular(len(steps), 0, 15_000), steps)) // accumulated, bit-packed
	f.Add([]byte{packRaw, 3, 0, 2, 0, kindAccumulated, 2, orderDelta, layoutBits, 2, 0, 3, 0xff, orderNone, layoutBits, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, vs, err := DecodeColumn(b, nil, nil)
		if err != nil {
			return
		}
		if len(ts) != len(vs) {
			t.Fatalf("%d timestamps, %d values", len(ts), len(vs))
		}
		// What decodes must encode to a column that decodes the same.
		roundTrip(t, ts, vs)
	})
}
