package headchunks

import (
	"math"
	"testing"
)

// TestOldestIsFirstSampleLeft checks Oldest and Holds against the samples the buffer
// reads back, before and after truncations, with series that start late,
// stop early, and have closed and open chunks.
func TestOldestIsFirstSampleLeft(t *testing.T) {
	b := newBuffer(t, 3600*1000)
	if _, ok := b.Oldest(); ok {
		t.Fatal("an empty buffer has an oldest sample")
	}
	for ts := int64(0); ts < 5*3600*1000; ts += 15000 {
		for ref := uint32(1); ref <= 20; ref++ {
			start, stop := int64(ref)*600000, int64(ref)*900000+3600*1000
			if ts >= start && ts < stop {
				if err := b.Append(ref, ts+int64(ref), float64(ts)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, mint := range []int64{math.MinInt64, 3600 * 1000, 2*3600*1000 + 7, 4 * 3600 * 1000, 6 * 3600 * 1000} {
		if _, err := b.Truncate(mint); err != nil {
			t.Fatal(err)
		}
		want, wantOK := int64(math.MaxInt64), false
		for ref := uint32(1); ref <= 20; ref++ {
			if ts := readAll(t, b, ref, math.MinInt64, math.MaxInt64); len(ts) > 0 {
				want, wantOK = min(want, ts[0]), true
			}
		}
		for ref := uint32(1); ref <= 21; ref++ { // 21 never had a sample
			if has := len(readAll(t, b, ref, math.MinInt64, math.MaxInt64)) > 0; b.Holds(ref) != has {
				t.Errorf("after Truncate(%d): Holds(%d) is %v, but it reads back %v", mint, ref, !has, has)
			}
		}
		if got, ok := b.Oldest(); got != want || ok != wantOK {
			t.Errorf("after Truncate(%d): Oldest %d, %v; the samples read start at %d, %v", mint, got, ok, want, wantOK)
		}
	}
}
