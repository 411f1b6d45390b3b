package metrics

import "testing"

func TestSeriesCacheBounded(t *testing.T) {
	c := newSeriesCache(2)
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}
	for i := range keys {
		c.add(keys[i:i+1], []*seriesEntry{{}})
	}
	if n := c.len(); n > 4 {
		t.Fatalf("cache of 2 per generation holds %d series", n)
	}
	found := make([]*seriesEntry, len(keys))
	c.lookup(keys, found)
	if found[0] != nil || found[4] == nil {
		t.Fatalf("oldest series should be forgotten and newest kept: %v", found)
	}
	// A series found in the old generation survives the next rotation.
	old := [][]byte{[]byte("c")}
	c.lookup(old, found[:1])
	if found[0] == nil {
		t.Fatal("c should still be in the old generation")
	}
	c.promote(old, found[:1])
	c.add([][]byte{[]byte("f"), []byte("g")}, []*seriesEntry{{}, {}})
	c.lookup(old, found[:1])
	if found[0] == nil {
		t.Fatal("a promoted series was forgotten")
	}
}
