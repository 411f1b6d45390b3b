package fastrate

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// viaIterator is what the reader keeps of chunk bytes b read through
// chunkenc's own iterator, and whether that read them without an error.
func viaIterator(b []byte) (reader, bool) {
	var r reader
	it := chunkenc.NewXORChunk()
	it.Reset(b)
	cit := it.Iterator(nil)
	for vt := cit.Next(); vt == chunkenc.ValFloat; vt = cit.Next() {
		r.add(cit.At())
	}
	return r, cit.Err() == nil
}

// sameAsIterator fails t unless decoding b keeps what chunkenc's iterator
// keeps, or refuses bytes the iterator reads with an error or garbage.
func sameAsIterator(t *testing.T, b []byte, mustDecode bool) {
	t.Helper()
	var got reader
	got.add(-1, 0) // a sample before: the decode must leave it alone
	ok := got.addXOR(b)
	if !ok {
		if mustDecode {
			t.Fatalf("refused a chunk of %d bytes", len(b))
		}
		if len(got.pts) != 1 || len(got.resets) != 0 {
			t.Fatalf("a refused chunk left %d samples", len(got.pts)-1)
		}
		return
	}
	want, wantOK := viaIterator(b)
	if !wantOK {
		t.Fatalf("decoded %d samples where chunkenc's iterator fails", len(got.pts)-1)
	}
	var prefixed reader
	prefixed.add(-1, 0)
	for _, p := range want.pts {
		prefixed.add(p.T, p.F)
	}
	if !slices.EqualFunc(got.pts, prefixed.pts, func(a, b promql.FPoint) bool {
		return a.T == b.T && math.Float64bits(a.F) == math.Float64bits(b.F)
	}) || !slices.Equal(got.resets, prefixed.resets) {
		t.Fatalf("decoded\n%v\nchunkenc's iterator\n%v", got.pts[1:], prefixed.pts[1:])
	}
}

// randomChunk appends n samples drawn from rng as a scrape would give
// them, and then some: regular and jittered intervals, gaps, timestamps
// going back, counters, resets, constant runs, random bits, NaN, ±Inf and
// staleness markers.
func randomChunk(rng *rand.Rand, n int) []byte {
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		panic(err)
	}
	t := rng.Int64N(1<<42) - 1<<41
	step := []int64{15000, 1000, 60000, 1}[rng.IntN(4)]
	v := 0.0
	for range n {
		switch r := rng.IntN(100); {
		case r < 70:
			t += step
		case r < 80:
			t += step + rng.Int64N(2000) - 1000
		case r < 85:
			t += rng.Int64N(1 << 20)
		case r < 88:
			t += rng.Int64N(1<<40) - 1<<39 // 64-bit delta of delta, backwards too
		case r < 94: // deltas of delta at the edges of their encodings' sizes
			edges := []int64{1 << 13, 1<<13 + 1, 1 << 16, 1<<16 + 1, 1 << 19, 1<<19 + 1}
			e := edges[rng.IntN(len(edges))] - rng.Int64N(2)
			if rng.IntN(2) == 0 {
				e = -e
			}
			t += step + e
		default:
			t += rng.Int64N(1 << 14)
		}
		switch r := rng.IntN(100); {
		case r < 40:
			v += math.Floor(rng.Float64() * 1000)
		case r < 55: // unchanged
		case r < 65:
			v = rng.Float64() * math.Pow(10, float64(rng.IntN(40)-20))
		case r < 75:
			v = math.Float64frombits(rng.Uint64())
		case r < 80:
			v = math.Float64frombits(value.StaleNaN)
		case r < 83:
			v = []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, -0.0}[rng.IntN(5)]
		default:
			v = math.Floor(rng.Float64() * 100) // a counter reset
		}
		app.Append(0, t, v)
	}
	return c.Bytes()
}

// Decoding keeps exactly what chunkenc's iterator keeps, for chunks of
// every size.
func TestDecodeXORAsChunkenc(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 3000 {
		sameAsIterator(t, randomChunk(rng, i%300), true)
	}
}

// Whatever the bytes, decoding never panics; it keeps what chunkenc's
// iterator keeps, or refuses them.
func FuzzDecodeXOR(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 10, 120, 250} {
		b := randomChunk(rng, n)
		f.Add(b)
		if len(b) > 4 {
			f.Add(b[:len(b)/2])
			garbled := slices.Clone(b)
			garbled[len(b)/3] ^= 0x5a
			f.Add(garbled)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff})
	f.Add(binary.BigEndian.AppendUint16(nil, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsIterator(t, b, false)
		// The same bytes as the seed of a well-formed chunk.
		var seed [16]byte
		copy(seed[:], b)
		rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
		sameAsIterator(t, randomChunk(rng, len(b)%250), true)
	})
}
