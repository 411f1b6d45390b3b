package seriesindex

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// withLongList lowers the length from which Delete filters a postings
// list without lock, so that tests of a few thousand series reach it.
func withLongList(t testing.TB, n int) {
	was := longList
	longList = n
	t.Cleanup(func() { longList = was })
}

// TestDeleteLetsAddsThrough removes most of an index's series and, at
// each point where Delete has let its locks go (its test hook), adds new
// series, adds a series being removed again, looks series up and queries
// from another goroutine, which would wait forever for a lock Delete held
// (the test then fails after a minute instead of hanging): the Adds and
// queries are not stalled for the whole removal. Each answer is checked
// against the series that exist at that point, and in the end the index
// and its Reader against a Prometheus head holding them.
func TestDeleteLetsAddsThrough(t *testing.T) {
	checkAddsThrough(t, rand.New(rand.NewPCG(7, 7)), 6000, 20)
}

func FuzzDeleteLetsAddsThrough(f *testing.F) {
	for seed := range uint64(4) {
		f.Add(seed, uint16(seed*97))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint16) {
		checkAddsThrough(t, rand.New(rand.NewPCG(seed, uint64(n))), 30+int(n%1500), 1)
	})
}

// checkAddsThrough is TestDeleteLetsAddsThrough over a pool of n random
// series, two thirds of them added first; Delete must pause at least
// minSteps times.
func checkAddsThrough(t *testing.T, rng *rand.Rand, n, minSteps int) {
	withLongList(t, 4)
	pool := randomSeries(rng, n)
	ix := New()
	live := map[uint32]labels.Labels{}
	first := len(pool) * 2 / 3
	for _, lset := range pool[:first] {
		ref, _ := ix.Add(lset)
		live[ref] = lset
	}
	drop := map[uint32]bool{}
	for ref := range live {
		if rng.IntN(10) < 9 {
			drop[ref] = true
		}
	}
	next, steps, readded := first, 0, 0
	ix.deleteHook = func() {
		steps++
		done := make(chan struct{})
		go func() {
			defer close(done)
			if next < len(pool) && steps%3 == 0 {
				addNew(t, ix, live, pool[next])
				next++
			}
			addTwin(t, ix, live, drop, steps, rng, false)
			addTwin(t, ix, live, drop, steps, rng, true)
			if steps%7 == 0 { // a series being removed, added again
				for ref := range drop {
					if lset, ok := live[ref]; ok {
						delete(live, ref)
						addNew(t, ix, live, lset)
						readded++
						break
					}
				}
			}
			checkMidDelete(t, ix, live, drop, rng)
		}()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("step %d of Delete: an Add or query still waits for a lock after a minute", steps)
		}
	}
	if n := ix.Delete(func(ref uint32) bool { return drop[ref] }); n != len(drop) {
		t.Fatalf("Delete removed %d series, want %d", n, len(drop))
	}
	ix.deleteHook = nil
	for ref := range drop {
		delete(live, ref)
	}
	if len(drop) > 0 && (steps < minSteps || readded == 0) {
		t.Fatalf("Delete paused %d times, %d series added again meanwhile; want %d or more and some", steps, readded, minSteps)
	}
	checkMidDelete(t, ix, live, nil, rng)
	var survivors []labels.Labels
	for _, lset := range live {
		survivors = append(survivors, lset)
	}
	h := openHead(t, survivors)
	checkAgainstHead(t, ix, h, rng, 100)
	checkReader(t, ix, h, rng, 100)
}

// addTwin adds a series with a label of a series that exists (or, if
// gone, the id of one Delete removes), its id on even steps, which turns
// that id's posting from the series into a list, and any label on odd
// ones, which likely appends to a list Delete is rewriting.
func addTwin(t testing.TB, ix *Index, live map[uint32]labels.Labels, drop map[uint32]bool, step int, rng *rand.Rand, gone bool) {
	refs := slices.Sorted(maps.Keys(live))
	for range 100 {
		ref := refs[rng.IntN(len(refs))]
		lset := live[ref]
		if drop[ref] != gone || lset.Has("twin") {
			continue
		}
		name := "id"
		if step%2 == 1 && !gone {
			var names []string
			lset.Range(func(l labels.Label) { names = append(names, l.Name) })
			name = names[rng.IntN(len(names))]
		}
		if lset.Has(name) {
			addNew(t, ix, live, labels.FromStrings(name, lset.Get(name), "twin", fmt.Sprint(step, gone)))
			return
		}
	}
}

// addNew adds lset, which the index must not hold, and records it in live.
func addNew(t testing.TB, ix *Index, live map[uint32]labels.Labels, lset labels.Labels) {
	max := ix.MaxRef()
	ref, created := ix.Add(lset)
	if !created || ref != max+1 {
		t.Errorf("Add(%s) during Delete = %d, %v; want %d, true", lset, ref, created, max+1)
	}
	live[ref] = lset
}

// checkMidDelete checks the index against the series that exist (live,
// less those in drop, which Delete has marked removed): lookups, labels,
// Len, PostingsForMatchers, and the Reader's postings, which may hold
// removed series until Delete is done, but no other series than those
// that have the value and all of those.
func checkMidDelete(t testing.TB, ix *Index, live map[uint32]labels.Labels, drop map[uint32]bool, rng *rand.Rand) {
	n := 0
	for ref, lset := range live {
		got, ok := ix.Lookup(lset)
		switch {
		case drop[ref] && ok && got == ref:
			t.Errorf("Lookup(%s) = %d, a series Delete removes", lset, ref)
		case drop[ref] && ix.Has(ref):
			t.Errorf("Has(%d), a series Delete removes", ref)
		case !drop[ref] && (!ok || got != ref || !labels.Equal(ix.Labels(ref), lset)):
			t.Errorf("Lookup(%s) = %d, %v, labels %s; want %d", lset, got, ok, ix.Labels(ref), ref)
		case !drop[ref]:
			n++
		}
	}
	if ix.Len() != n {
		t.Errorf("Len %d, want %d", ix.Len(), n)
	}
	for range 3 {
		ms := randomMatchers(rng)
		var want []uint32
		for ref, lset := range live {
			if !drop[ref] && matchesAll(ms, lset) {
				want = append(want, ref)
			}
		}
		slices.Sort(want)
		if got := ix.PostingsForMatchers(ms...); !slices.Equal(got, want) {
			t.Errorf("PostingsForMatchers(%v) = %v, want %v", ms, got, want)
		}
		m := ms[0]
		p := ix.Reader().PostingsForLabelMatching(context.Background(), m.Name, m.Matches)
		var got []uint32
		for p.Next() {
			if ref := uint32(p.At()); ix.Has(ref) {
				got = append(got, ref)
			}
		}
		want = want[:0]
		for ref, lset := range live {
			if !drop[ref] && lset.Has(m.Name) && m.Matches(lset.Get(m.Name)) {
				want = append(want, ref)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("PostingsForLabelMatching(%v), series that exist: %v, want %v", m, got, want)
		}
	}
}

func matchesAll(ms []*labels.Matcher, lset labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// TestDeleteKeepsSeriesAddedMeanwhile adds a series with value a at each
// of Delete's pauses, among them the one between reading a long list of
// a and putting it back filtered: the series added then must stay in it.
func TestDeleteKeepsSeriesAddedMeanwhile(t *testing.T) {
	withLongList(t, 2)
	ix := New()
	var want []uint32
	for i := range 10 {
		ref, _ := ix.Add(labels.FromStrings("v", "a", "i", strconv.Itoa(i)))
		if i%2 == 0 {
			want = append(want, ref)
		}
	}
	added := 0
	ix.deleteHook = func() {
		ref, _ := ix.Add(labels.FromStrings("v", "a", "i", "new"+strconv.Itoa(added)))
		want = append(want, ref)
		added++
	}
	ix.Delete(func(ref uint32) bool { return ref%2 == 0 }) // refs from 1: i odd
	if got := ix.Postings("v", "a"); !slices.Equal(got, want) {
		t.Fatalf("postings of v=a after Delete, %d series added during it: %v, want %v", added, got, want)
	}
}
