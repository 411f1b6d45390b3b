package seriesindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// churn adds and removes random series of a pool in rounds, re-adding
// some removed ones, checking each ref as it goes, and returns the index
// and the label sets it holds in the end.
type churn struct {
	t      testing.TB
	rng    *rand.Rand
	ix     *Index
	live   map[string]uint32 // labels → ref
	lsets  map[uint32]labels.Labels
	maxRef uint32
}

func newChurn(t testing.TB, rng *rand.Rand) *churn {
	return &churn{t: t, rng: rng, ix: New(), live: map[string]uint32{}, lsets: map[uint32]labels.Labels{}}
}

func (c *churn) add(pool []labels.Labels, frac float64) {
	c.t.Helper()
	for _, lset := range pool {
		if _, ok := c.live[lset.String()]; ok || c.rng.Float64() >= frac {
			continue
		}
		ref, created := c.ix.Add(lset)
		if !created || ref != c.maxRef+1 {
			c.t.Fatalf("Add(%s) = %d, %v; want %d, true", lset, ref, created, c.maxRef+1)
		}
		c.maxRef = ref
		c.live[lset.String()] = ref
		c.lsets[ref] = lset
	}
}

func (c *churn) remove(frac float64) {
	c.t.Helper()
	drop := map[uint32]bool{}
	for ref := range c.lsets {
		if c.rng.Float64() < frac {
			drop[ref] = true
		}
	}
	n := c.ix.Delete(func(ref uint32) bool {
		if _, ok := c.lsets[ref]; !ok {
			c.t.Fatalf("Delete asked about ref %d, not a series", ref)
		}
		return drop[ref]
	})
	if n != len(drop) {
		c.t.Fatalf("Delete removed %d series, want %d", n, len(drop))
	}
	for ref := range drop {
		c.checkGone(ref)
		delete(c.live, c.lsets[ref].String())
		delete(c.lsets, ref)
	}
	c.checkLive()
}

func (c *churn) checkGone(ref uint32) {
	c.t.Helper()
	var b labels.ScratchBuilder
	if c.ix.AppendLabels(&b, ref) {
		c.t.Fatalf("removed series %d still has labels %s", ref, b.Labels())
	}
	if got, ok := c.ix.Lookup(c.lsets[ref]); ok {
		c.t.Fatalf("Lookup(%s) of a removed series = %d", c.lsets[ref], got)
	}
}

func (c *churn) checkLive() {
	c.t.Helper()
	if c.ix.Len() != len(c.lsets) {
		c.t.Fatalf("Len %d, want %d", c.ix.Len(), len(c.lsets))
	}
	for ref, lset := range c.lsets {
		if got := c.ix.Labels(ref); !labels.Equal(got, lset) {
			c.t.Fatalf("Labels(%d) = %s, want %s", ref, got, lset)
		}
		if got, ok := c.ix.Lookup(lset); !ok || got != ref {
			c.t.Fatalf("Lookup(%s) = %d, %v; want %d", lset, got, ok, ref)
		}
	}
}

func (c *churn) survivors() []labels.Labels {
	out := make([]labels.Labels, 0, len(c.lsets))
	for _, lset := range c.lsets {
		out = append(out, lset)
	}
	return out
}

// checkDelete churns series in rounds that remove from a tenth to all of
// them, then compares the index and its Reader with a head holding the
// series left. Lists of more than 4 series are filtered without lock, as
// those of more than a batch are in a large index.
func checkDelete(t testing.TB, rng *rand.Rand, n, queries int) {
	withLongList(t, 4)
	pool := randomSeries(rng, n)
	c := newChurn(t, rng)
	for _, frac := range []float64{0.1, 0.6, 0.95, 1, 0.3} {
		c.add(pool, 0.5)
		c.remove(frac)
	}
	c.add(pool, 0.2)
	h := openHead(t, c.survivors())
	checkAgainstHead(t, c.ix, h, rng, queries)
	checkReader(t, c.ix, h, rng, queries)
}

func TestDeleteMatchesHead(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			checkDelete(t, rng, 50+rng.IntN(3000), 60)
		})
	}
}

func FuzzDeleteMatchesHead(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed, uint16(seed*43))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint16) {
		rng := rand.New(rand.NewPCG(seed, uint64(n)))
		checkDelete(t, rng, 1+int(n%800), 10)
	})
}

// TestDeleteCompacts checks that removing most series copies the others
// to a smaller arena and that a removal too small to pay for a copy makes
// none.
func TestDeleteCompacts(t *testing.T) {
	ix := New()
	long := string(make([]byte, 1000))
	for i := range 5000 {
		ix.Add(labels.FromStrings("s", long+strconv.Itoa(i), "t", strconv.Itoa(i)))
	}
	before := ix.series.total
	ix.Delete(func(ref uint32) bool { return ref%100 == 0 })
	if ix.series.total != before || ix.garbage == 0 {
		t.Fatalf("arena %d → %d bytes, garbage %d after removing 1%%", before, ix.series.total, ix.garbage)
	}
	ix.Delete(func(ref uint32) bool { return ref%10 != 1 })
	if ix.series.total*5 > before || ix.garbage != 0 {
		t.Fatalf("arena %d → %d bytes, garbage %d after removing 90%%", before, ix.series.total, ix.garbage)
	}
	for ref := uint32(1); ref <= 5000; ref += 10 {
		want := labels.FromStrings("s", long+strconv.Itoa(int(ref-1)), "t", strconv.Itoa(int(ref-1)))
		if got := ix.Labels(ref); !labels.Equal(got, want) {
			t.Fatalf("Labels(%d) = %.20s…", ref, got)
		}
	}
}

// TestConcurrentDelete removes series while others are added and queried,
// then checks that every series left is found under the ref its labels
// give. Run it with -race.
func TestConcurrentDelete(t *testing.T) {
	const workers, perWorker = 4, 3000
	ix := New()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				s := (w*perWorker + i) % 5000 // workers add some series again
				ix.Add(labels.FromStrings("__name__", "m"+strconv.Itoa(s%7), "s", strconv.Itoa(s)))
				if i%500 == 0 {
					readAll(t, ix.Reader())
				}
			}
		})
	}
	wg.Go(func() {
		for round := range 20 {
			ix.Delete(func(ref uint32) bool { return int(ref)%(2+round%3) == 0 })
		}
	})
	wg.Wait()
	r := ix.Reader()
	all, _ := r.Postings(t.Context(), "", "")
	n := 0
	for ; all.Next(); n++ {
		ref := uint32(all.At())
		if got, ok := ix.Lookup(ix.Labels(ref)); !ok || got != ref {
			t.Fatalf("series %d (%s) looks up as %d, %v", ref, ix.Labels(ref), got, ok)
		}
	}
	if n != ix.Len() {
		t.Fatalf("%d series in all postings, Len %d", n, ix.Len())
	}
}

// TestConcurrentRenumber adds, looks up and queries series while Delete
// removes batches of others whose values no other series has, so that
// each Delete renumbers the symbols under them, and checks every answer
// against the labels added. Run it with -race.
func TestConcurrentRenumber(t *testing.T) {
	const workers, perWorker = 3, 1000
	ix := New()
	r := ix.Reader()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				lset := labels.FromStrings("w", strconv.Itoa(w), "i", strconv.Itoa(w*perWorker+i))
				ref, created := ix.Add(lset)
				if got := ix.Labels(ref); !created || !labels.Equal(got, lset) {
					t.Errorf("Add(%s) = %d, %v, whose labels are %s", lset, ref, created, got)
					return
				}
				if got, ok := ix.Lookup(lset); !ok || got != ref {
					t.Errorf("Lookup(%s) = %d, %v; want %d", lset, got, ok, ref)
					return
				}
				if i%50 == 0 {
					checkMatching(t, r, strconv.Itoa(w))
				}
			}
		})
	}
	wg.Go(func() {
		for round := range 30 {
			victims := map[uint32]bool{}
			for i := range 4000 { // more than the workers' symbols
				ref, _ := ix.Add(labels.FromStrings("victim", "v"+strconv.Itoa(round*4000+i)))
				victims[ref] = true
			}
			ix.Delete(func(ref uint32) bool { return victims[ref] })
		}
	})
	wg.Wait()
	if ix.Len() != workers*perWorker {
		t.Fatalf("Len %d, want %d", ix.Len(), workers*perWorker)
	}
	if ix.syms.gen != 30 {
		t.Fatalf("symbols renumbered %d times, want 30", ix.syms.gen)
	}
}

// checkMatching checks that the series PostingsForLabelMatching selects
// by label i have the values it accepted.
func checkMatching(t *testing.T, r *Reader, prefix string) {
	p := r.PostingsForLabelMatching(context.Background(), "i", func(v string) bool { return v[0] == prefix[0] })
	for p.Next() {
		if v := r.ix.Labels(uint32(p.At())).Get("i"); v == "" || v[0] != prefix[0] {
			t.Errorf("PostingsForLabelMatching(i starts with %s) selected i=%q", prefix, v)
			return
		}
	}
}
