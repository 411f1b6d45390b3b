package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// cached looks keys up and adds those missing with refs[i]: a request.
func cached(c *seriesCache, keys [][]byte, refs []storage.SeriesRef) []seriesEntry {
	entries := make([]seriesEntry, len(keys))
	if c.lookup(keys, entries) > 0 {
		c.promote(entries)
	}
	var missing []int
	for i := range entries {
		if !entries[i].found() && keys[i] != nil {
			entries[i].update(refs[i])
			missing = append(missing, i)
		}
	}
	c.add(entries, missing)
	return entries
}

// findRefs looks keys up without adding anything: the refs found (0: none).
func findRefs(c *seriesCache, keys [][]byte) []storage.SeriesRef {
	entries := make([]seriesEntry, len(keys))
	c.lookup(keys, entries)
	refs := make([]storage.SeriesRef, len(keys))
	for i, e := range entries {
		refs[i] = e.ref // the tests' refs are never 0
	}
	return refs
}

func TestSeriesCacheBounded(t *testing.T) {
	c := newSeriesCache(2)
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}
	for i := range keys {
		cached(c, keys[i:i+1], []storage.SeriesRef{storage.SeriesRef(i + 1)})
	}
	if n := c.len(); n > 4 {
		t.Fatalf("cache of 2 per generation holds %d series", n)
	}
	found := findRefs(c, keys)
	if found[0] != 0 || found[4] != 5 {
		t.Fatalf("oldest series should be forgotten and newest kept: %v", found)
	}
	// A series found in the old generation survives the next rotation.
	old := [][]byte{[]byte("c")}
	if found := cached(c, old, nil); !found[0].found() || !found[0].old {
		t.Fatalf("c should still be in the old generation: %+v", found[0])
	}
	cached(c, [][]byte{[]byte("f"), []byte("g")}, []storage.SeriesRef{6, 7})
	if found := findRefs(c, old); found[0] != 3 {
		t.Fatalf("a promoted series was forgotten or lost its ref: %v", found)
	}
	// A series sent again in the current generation stays there.
	if found := cached(c, [][]byte{[]byte("g")}, nil); found[0].old {
		t.Fatal("g found in the old generation")
	}
}

func TestSeriesCacheGrowsToTheHead(t *testing.T) {
	c := newSeriesCache(2)
	head := 0
	c.size = func() int { return head }
	keys := make([][]byte, 10)
	for i := range keys {
		keys[i] = []byte{byte(i)}
		head++
		cached(c, keys[i:i+1], []storage.SeriesRef{storage.SeriesRef(i + 1)})
	}
	found := findRefs(c, keys)
	for i := range keys {
		if found[i] != storage.SeriesRef(i+1) {
			t.Fatalf("series %d of 10 forgotten by a cache whose head holds 10 series: %v", i, found)
		}
	}
}

// Many series, added in requests of a few hundred in a random order, all
// found again with their own refs however often the index grew; a series the
// head handed a new ref keeps it.
func TestSeriesCacheManySeries(t *testing.T) {
	const n = 100_000
	c := newSeriesCache(n)
	keys := make([][]byte, n)
	refs := make([]storage.SeriesRef, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, `{__name__="m",series="%d"}`, i)
		refs[i] = storage.SeriesRef(i + 1)
	}
	order := rand.New(rand.NewPCG(3, 4)).Perm(n)
	batchKeys, batchRefs := make([][]byte, 0, 500), make([]storage.SeriesRef, 0, 500)
	for len(order) > 0 {
		m := min(len(order), 1+len(order)%500)
		batchKeys, batchRefs = batchKeys[:0], batchRefs[:0]
		for _, o := range order[:m] {
			batchKeys, batchRefs = append(batchKeys, keys[o]), append(batchRefs, refs[o])
		}
		cached(c, batchKeys, batchRefs)
		order = order[m:]
	}
	if c.len() != n {
		t.Fatalf("%d series cached, want %d", c.len(), n)
	}
	entries := make([]seriesEntry, n)
	c.lookup(keys, entries)
	for i := range entries {
		if entries[i].ref != refs[i] {
			t.Fatalf("series %d: ref %d, want %d", i, entries[i].ref, refs[i])
		}
		if i%7 == 0 {
			entries[i].update(refs[i] + n)
		}
	}
	c.setRefs(entries)
	for i, ref := range findRefs(c, keys) {
		if want := refs[i] + map[bool]storage.SeriesRef{true: n}[i%7 == 0]; ref != want {
			t.Fatalf("series %d: ref %d after setRefs, want %d", i, ref, want)
		}
	}
}

// Series whose first hashes are equal (or land on the same index slots, at
// the end of the index too) are told apart by their second hash.
func TestSeriesCacheSameFirstHash(t *testing.T) {
	c := newSeriesCache(1 << 10)
	var entries []seriesEntry
	for i := range 40 {
		h := ^uint64(0) - uint64(i%4) // all at the index's last slot, wrapping
		entries = append(entries, seriesEntry{hash: h, check: uint32(i), ref: storage.SeriesRef(i + 1)})
	}
	c.add(entries, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19})
	c.add(entries, []int{20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39})
	for i, e := range entries {
		id := c.find(e.hash, e.check)
		if id == 0 || c.slot(id).ref.Load() != uint64(i+1) {
			t.Fatalf("series %d (first hash %x, second %d) not found with its ref", i, e.hash, e.check)
		}
	}
	if id := c.find(^uint64(0), 99); id != 0 {
		t.Fatalf("a series never added found at slot %d", id)
	}
	if c.len() != 40 {
		t.Fatalf("%d series cached, want 40", c.len())
	}
}

// A slot followed from the previous series is taken only if both hashes
// match: here y's slot keeps its first hash but no longer its second.
func TestSeriesCacheFollowingChecksBothHashes(t *testing.T) {
	c := newSeriesCache(10)
	keys := [][]byte{[]byte("x"), []byte("y")}
	cached(c, keys, []storage.SeriesRef{1, 2})
	if found := cached(c, keys, nil); found[1].ref != 2 {
		t.Fatalf("y not found: %+v", found[1])
	}
	hy, cy := c.hashes(keys[1])
	c.slot(c.find(hy, cy)).check++
	if found := findRefs(c, keys); found[1] != 0 {
		t.Fatalf("y found through x in a slot with another second hash: ref %d", found[1])
	}
}

// Series not sent for two generations are forgotten and their slots reused:
// distinct series round after round take no more slots than two
// generations hold.
func TestSeriesCacheReusesForgottenSlots(t *testing.T) {
	const gen = 50
	c := newSeriesCache(gen)
	for round := range 40 {
		keys := make([][]byte, 30)
		refs := make([]storage.SeriesRef, len(keys))
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "r%d-%d", round, i)
			refs[i] = storage.SeriesRef(round*100 + i + 1)
		}
		cached(c, keys, refs)
		if round >= 4 {
			// 4 rounds back: two generations ago at least.
			if found := findRefs(c, keys[:1]); found[0] != refs[0] {
				t.Fatalf("round %d: this round's series not found", round)
			}
		}
	}
	for round := range 36 {
		if found := findRefs(c, [][]byte{fmt.Appendf(nil, "r%d-0", round)}); found[0] != 0 {
			t.Fatalf("series of round %d still cached", round)
		}
	}
	if c.slots > 2*gen+30 || c.len() > 2*gen {
		t.Fatalf("%d slots for %d series cached, at most %d per generation", c.slots, c.len(), gen)
	}
}

// Requests look up, add, promote and update refs concurrently while
// generations rotate: a series found is always found with a ref of its own.
func TestSeriesCacheConcurrent(t *testing.T) {
	c := newSeriesCache(300)
	const series = 2000
	keys := make([][]byte, series)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "series-%d", i)
	}
	// Series i's refs are 2i+1 (added) and 2i+2 (moved by the head).
	refOK := func(i int, ref storage.SeriesRef) bool {
		return ref == storage.SeriesRef(2*i+1) || ref == storage.SeriesRef(2*i+2)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for range 300 {
				start, n := rng.IntN(series), 1+rng.IntN(200)
				idx := make([]int, 0, n)
				batch := make([][]byte, 0, n)
				refs := make([]storage.SeriesRef, 0, n)
				for j := range n {
					i := (start + j) % series
					idx, batch, refs = append(idx, i), append(batch, keys[i]), append(refs, storage.SeriesRef(2*i+1))
				}
				entries := cached(c, batch, refs)
				for j, e := range entries {
					if e.found() && !refOK(idx[j], e.ref) {
						errs <- fmt.Errorf("series %d found with ref %d", idx[j], e.ref)
						return
					}
					if e.found() && rng.IntN(10) == 0 {
						entries[j].update(storage.SeriesRef(2*idx[j] + 2))
					}
				}
				c.setRefs(entries)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	entries := make([]seriesEntry, series)
	c.lookup(keys, entries)
	for i, e := range entries {
		if e.found() && !refOK(i, e.ref) {
			t.Fatalf("series %d found with ref %d", i, e.ref)
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
			// a's slot now holds b's series under a's first hash.
			cache.mu.Lock()
			ha, ca := cache.hashes(keyA)
			hb, cb := cache.hashes(keyB)
			ida, idb := cache.find(ha, ca), cache.find(hb, cb)
			cache.slot(ida).check = cb
			cache.slot(ida).ref.Store(cache.slot(idb).ref.Load())
			cache.setLabels(ida, cache.lsets[(idb-1)>>pageBits][(idb-1)&pageMask])
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
	ref := struct{ cur, old map[string]storage.SeriesRef }{map[string]storage.SeriesRef{}, map[string]storage.SeriesRef{}}
	refPut := func(k string, r storage.SeriesRef) {
		if len(ref.cur) >= max {
			ref.old, ref.cur = ref.cur, map[string]storage.SeriesRef{}
		}
		ref.cur[k] = r
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([][]byte, 16)
	for i := range pool {
		pool[i] = []byte{'k', byte(i)}
	}
	var order []int
	next := storage.SeriesRef(0)
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
		found := make([]seriesEntry, len(keys))
		fromOld := c.lookup(keys, found)
		wantOld := 0
		for i, k := range keys {
			want, ok := ref.cur[string(k)]
			if !ok {
				if want, ok = ref.old[string(k)]; ok {
					wantOld++
				}
			}
			if found[i].ref != want || found[i].found() != ok {
				t.Fatalf("round %d: key %d of %v: found %d, the generations hold %d", round, i, order, found[i].ref, want)
			}
		}
		if fromOld != wantOld {
			t.Fatalf("round %d: %d found in the old generation, want %d", round, fromOld, wantOld)
		}
		if fromOld > 0 {
			c.promote(found)
			for i, k := range keys {
				if found[i].found() {
					if _, ok := ref.cur[string(k)]; !ok {
						refPut(string(k), found[i].ref)
					}
				}
			}
		}
		var newSeries []int
		for i, k := range keys {
			if !found[i].found() && !slices.ContainsFunc(newSeries, func(n int) bool { return string(keys[n]) == string(k) }) {
				next++
				found[i].update(next)
				newSeries = append(newSeries, i)
				refPut(string(k), next)
			}
		}
		c.add(found, newSeries)
	}
}

// BenchmarkSeriesCacheLookup looks n cached series up in requests of 2,000:
// "ordered" sends them in the same order every time (the next-series
// prediction), "shuffled" in a new random order (the index). ns/series is the
// figure.
func BenchmarkSeriesCacheLookup(b *testing.B) {
	for _, n := range []int{20_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			keys := make([][]byte, n)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, `node_cpu_seconds_total{cpu="%d",instance="host-%d:9100",job="node",mode="user"}`, i%64, i/64)
			}
			c := newSeriesCache(cacheGeneration)
			c.size = func() int { return n }
			refs := make([]storage.SeriesRef, 2000)
			for i := range refs {
				refs[i] = storage.SeriesRef(i + 1)
			}
			for i := 0; i < n; i += 2000 {
				cached(c, keys[i:min(n, i+2000)], refs)
			}
			shuffled := slices.Clone(keys)
			rand.New(rand.NewPCG(5, 6)).Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			b.Run("ordered", func(b *testing.B) { benchLookups(b, c, keys) })
			b.Run("shuffled", func(b *testing.B) { benchLookups(b, c, shuffled) })
		})
	}
}

func benchLookups(b *testing.B, c *seriesCache, keys [][]byte) {
	entries := make([]seriesEntry, 2000)
	i := 0
	for b.Loop() {
		batch := keys[i:min(len(keys), i+2000)]
		if c.lookup(batch, entries) > 0 {
			b.Fatal("series found in the old generation")
		}
		if i += 2000; i >= len(keys) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/series")
}
