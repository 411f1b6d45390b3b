package headchunks

import (
	"math"
	"testing"
	"unsafe"
)

// TestForgetFreesPagesOfRemovedSeries removes the first of two pages'
// worth of series after truncating their samples away: their page is
// freed, the others read and append as before, a ref still holding a
// chunk keeps its record, and a removed series on a page kept is not
// reported empty again by later truncations.
func TestForgetFreesPagesOfRemovedSeries(t *testing.T) {
	if size := unsafe.Sizeof(series{}); size != 40 {
		t.Fatalf("a series record takes %d bytes; Bytes counts 40", size)
	}
	b := newBuffer(t, 3600*1000)
	const n = 2 * pageSize
	for ref := uint32(1); ref <= n; ref++ { // n, on a page of its own, stops early too
		start := int64(0)
		if ref >= pageSize && ref < n {
			start = 2 * 3600 * 1000
		}
		for ts := start; ts < start+10*15000; ts += 15000 {
			if err := b.Append(ref, ts, float64(ts)); err != nil {
				t.Fatal(err)
			}
		}
	}
	empty, err := b.Truncate(3600 * 1000)
	if err != nil {
		t.Fatal(err)
	}
	before := b.Bytes()
	if len(empty) != pageSize {
		t.Fatalf("%d series left empty, want the first page's %d and n", len(empty), pageSize-1)
	}
	b.Forget(append(empty, pageSize)) // pageSize holds a chunk: kept
	if got := before - b.Bytes(); got != pageSize*40 {
		t.Errorf("Forget gave back %d bytes, want a page of records (%d)", got, pageSize*40)
	}
	if !b.Holds(pageSize) || b.Holds(1) || len(readAll(t, b, n-1, math.MinInt64, math.MaxInt64)) != 10 {
		t.Fatal("series left are not read as before")
	}
	if empty, err := b.Truncate(2 * 3600 * 1000); err != nil || len(empty) != 0 { // n's page is kept
		t.Fatalf("a truncation that drops nothing reports %v empty (%v)", empty, err)
	}
	if err := b.Append(n-1, 3*3600*1000, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(1, 3*3600*1000, 1); err != nil { // a removed ref again: a new page, no crash
		t.Fatal(err)
	}
	if _, err := b.Truncate(4 * 3600 * 1000); err != nil {
		t.Fatal(err)
	}
	b.Compact()
	if _, ok := b.Oldest(); ok {
		t.Fatal("samples left after truncating them all")
	}
}
