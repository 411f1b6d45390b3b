package promwrite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb"
)

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

// TestAcknowledgedIsInWAL checks a 204 means the samples are in the WAL: a
// copy of the data dir taken right after (as a kill -9 would leave it) opens
// with them.
func TestAcknowledgedIsInWAL(t *testing.T) {
	dir := t.TempDir()
	db, err := tsdb.Open(dir, discard, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := NewHandler(db, defaultOpts(), discard, nil)
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "durable", "job", "x"), Samples: samples(base, base+1000)}}}
	if r := post(h, encode(t, req), ctV1, "snappy"); r.code != 204 {
		t.Fatalf("write: %+v", r)
	}
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatalf("copy data dir: %v", err)
	}
	_ = os.Remove(filepath.Join(crashed, "lock"))
	reopened, err := tsdb.Open(crashed, discard, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer reopened.Close()
	data := dump(t, reopened)
	if !strings.Contains(data, fmt.Sprintf(`{__name__="durable", job="x"}: %d=`, base)) || !strings.Contains(data, fmt.Sprintf(" %d=", base+1000)) {
		t.Fatalf("acknowledged samples missing after a crash:\n%s", data)
	}
}
