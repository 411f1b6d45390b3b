package metrics

import (
	"context"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
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

func TestSeriesCacheGrowsToTheHead(t *testing.T) {
	c := newSeriesCache(2)
	head := 0
	c.size = func() int { return head }
	keys := make([][]byte, 10)
	entries := make([]*seriesEntry, len(keys))
	for i := range keys {
		keys[i] = []byte{byte(i)}
		entries[i] = &seriesEntry{}
		head++
		c.add(keys[i:i+1], entries[i:i+1])
	}
	found := make([]*seriesEntry, len(keys))
	c.lookup(keys, found)
	for i := range keys {
		if found[i] != entries[i] {
			t.Fatalf("series %d of 10 forgotten by a cache whose head holds 10 series", i)
		}
	}
}

// The cache is keyed by a hash of the wire labels: when two series' keys
// collide, a sample of one must still go to its own series, never to the
// series whose entry the key names.
func TestSeriesCacheCollisionKeepsSeriesApart(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v1", true: "v2"}[v2], func(t *testing.T) {
			db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			h := newRemoteWriteAppender(db, slog.New(slog.DiscardHandler), newRWMetrics(prometheus.NewRegistry()), nil)
			now := time.Now().UnixMilli()
			write := func(name string, ts int64) []byte {
				t.Helper()
				req := collisionRequest(t, v2, name, ts)
				if _, err := h.ConsumeSamples(context.Background(), req); err != nil {
					t.Fatal(err)
				}
				sc := &appendScratch{}
				sc.prepareKeys(req)
				return slices.Clone(sc.keys[0])
			}
			keyA := write("a", now)
			keyB := write("b", now)
			cache := h.cache1
			if v2 {
				cache = h.cache2
			}
			cache.mu.Lock()
			cache.cur[maphash.Bytes(cache.seed, keyA)] = cache.cur[maphash.Bytes(cache.seed, keyB)]
			cache.mu.Unlock()
			write("a", now+1000)

			q, err := db.Querier(0, now+2000)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			got := map[string]int{}
			set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", "a|b"))
			for set.Next() {
				it := set.At().Iterator(nil)
				for it.Next() != chunkenc.ValNone {
					got[set.At().Labels().Get("__name__")]++
				}
			}
			if set.Err() != nil {
				t.Fatal(set.Err())
			}
			if got["a"] != 2 || got["b"] != 1 {
				t.Fatalf("samples per series after a collision: %v, want a:2 b:1", got)
			}
		})
	}
}

func collisionRequest(t *testing.T, v2 bool, name string, ts int64) *remotewrite.Request {
	t.Helper()
	var (
		raw []byte
		err error
	)
	if v2 {
		syms := writev2.NewSymbolTable()
		refs := syms.SymbolizeLabels(labels.FromStrings("__name__", name, "job", "x"), nil)
		raw, err = (&writev2.Request{Symbols: syms.Symbols(), Timeseries: []writev2.TimeSeries{
			{LabelsRefs: refs, Samples: []writev2.Sample{{Value: 1, Timestamp: ts}}}}}).Marshal()
	} else {
		raw, err = (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "job", Value: "x"}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}}}}).Marshal()
	}
	if err != nil {
		t.Fatal(err)
	}
	req := &remotewrite.Request{}
	if err := req.Decode(raw, v2); err != nil {
		t.Fatal(err)
	}
	return req
}

// The cache follows each series to the one that came after it last time
// instead of looking it up: whatever the order of the requests, it must find
// exactly what lookups in its two generations find, and forget what they
// forget. The reference here is the plain two-generation map.
func TestSeriesCacheFollowingMatchesLookups(t *testing.T) {
	const max = 5
	c := newSeriesCache(max)
	ref := struct{ cur, old map[string]*seriesEntry }{map[string]*seriesEntry{}, map[string]*seriesEntry{}}
	refPut := func(k string, e *seriesEntry) {
		if len(ref.cur) >= max {
			ref.old, ref.cur = ref.cur, map[string]*seriesEntry{}
		}
		ref.cur[k] = e
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([][]byte, 16)
	for i := range pool {
		pool[i] = []byte{'k', byte(i)}
	}
	var order []int
	for round := range 2000 {
		// Mostly the last order again, sometimes shifted, shuffled or cut,
		// sometimes new keys from the pool.
		switch r := rng.IntN(10); {
		case round == 0 || r == 0:
			order = rng.Perm(len(pool))[:1+rng.IntN(8)]
		case r == 1:
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		case r == 2 && len(order) > 1:
			order = order[1:]
		case r == 4 && len(order) > 1:
			order = order[:len(order)-1]
		case r == 3:
			order = append(order, rng.IntN(len(pool)))
		}
		keys := make([][]byte, len(order))
		for i, o := range order {
			keys[i] = pool[o]
		}
		found := make([]*seriesEntry, len(keys))
		fromOld := c.lookup(keys, found)
		wantOld := 0
		for i, k := range keys {
			want := ref.cur[string(k)]
			if want == nil {
				if want = ref.old[string(k)]; want != nil {
					wantOld++
				}
			}
			if found[i] != want {
				t.Fatalf("round %d: key %d of %v: found %p, the generations hold %p", round, i, order, found[i], want)
			}
		}
		if fromOld != wantOld {
			t.Fatalf("round %d: %d found in the old generation, want %d", round, fromOld, wantOld)
		}
		if fromOld > 0 {
			c.promote(keys, found)
			for i, k := range keys {
				if found[i] != nil && ref.cur[string(k)] == nil {
					refPut(string(k), found[i])
				}
			}
		}
		var newKeys [][]byte
		var newEntries []*seriesEntry
		for i, k := range keys {
			if found[i] == nil && !slices.ContainsFunc(newKeys, func(n []byte) bool { return string(n) == string(k) }) {
				newKeys, newEntries = append(newKeys, k), append(newEntries, &seriesEntry{})
				refPut(string(k), newEntries[len(newEntries)-1])
			}
		}
		c.add(newKeys, newEntries)
	}
}

// A forgotten series must not keep the series that followed it alive (a
// series still cached may keep one forgotten series, which the test above
// checks is never found through it).
func TestSeriesCacheForgottenEntriesLetGo(t *testing.T) {
	c := newSeriesCache(2)
	a, b := []byte("a"), []byte("b")
	ea, eb := &seriesEntry{}, &seriesEntry{}
	c.add([][]byte{a, b}, []*seriesEntry{ea, eb})
	found := make([]*seriesEntry, 2)
	c.lookup([][]byte{a, b}, found) // a → b
	// Two generations later neither is in the cache.
	for i := range 4 {
		c.add([][]byte{{'y', byte(i)}}, []*seriesEntry{{}})
	}
	if c.lookup([][]byte{a, b}, found); found[0] != nil || found[1] != nil {
		t.Fatalf("forgotten series found: %v", found)
	}
	if ea.next.Load() != nil {
		t.Fatal("a forgotten series still points to the next one")
	}
}
