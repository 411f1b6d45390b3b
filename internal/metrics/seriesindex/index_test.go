package seriesindex

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

var (
	testNames  = []string{"__name__", "a", "b", "job", "id"}
	testValues = []string{"x", "y", "xy", "yx", "foo", "bar", "1", "10", "X", "a b", "é"}
	// testPatterns are regexps for =~ and !~: matching everything, only
	// non-empty values, alternations (sets of literals, with "" among them),
	// prefixes, suffixes, case folding and nothing.
	testPatterns = []string{".*", ".+", "x|y", "x|y|", "foo|bar|10", "x.*", ".*y", "(?i)x", "[a-z]+",
		"1.*", "nope", "", "x|nope", ".*o.*", "(x|y)y?"}
)

// randomSeries returns n distinct random label sets: some labels shared by
// many series, some absent, and an id unique per series on a third of them.
func randomSeries(rng *rand.Rand, n int) []labels.Labels {
	seen := map[string]bool{}
	var out []labels.Labels
	for i := 0; len(out) < n && i < 4*n; i++ {
		b := labels.NewScratchBuilder(len(testNames))
		for _, name := range testNames {
			switch {
			case name == "id" && rng.IntN(3) == 0:
				b.Add(name, strconv.Itoa(i))
			case name != "id" && rng.IntN(4) != 0:
				b.Add(name, testValues[rng.IntN(len(testValues))])
			}
		}
		if rng.IntN(20) == 0 { // a label few series have
			b.Add("rare", testValues[rng.IntN(len(testValues))])
		}
		b.Sort()
		lset := b.Labels()
		if lset.IsEmpty() || seen[lset.String()] {
			continue
		}
		seen[lset.String()] = true
		out = append(out, lset)
	}
	return out
}

// randomMatchers returns one to three matchers, on known names and on a name
// no series has.
func randomMatchers(rng *rand.Rand) []*labels.Matcher {
	names := append(slices.Clone(testNames), "rare", "absent")
	ms := make([]*labels.Matcher, 1+rng.IntN(3))
	for i := range ms {
		t := labels.MatchType(rng.IntN(4))
		v := testValues[rng.IntN(len(testValues))]
		switch {
		case t == labels.MatchRegexp || t == labels.MatchNotRegexp:
			v = testPatterns[rng.IntN(len(testPatterns))]
		case rng.IntN(5) == 0:
			v = ""
		}
		ms[i] = labels.MustNewMatcher(t, names[rng.IntN(len(names))], v)
	}
	return ms
}

// openHead returns a Prometheus head holding series, one sample each.
func openHead(t testing.TB, series []labels.Labels) *tsdb.Head {
	t.Helper()
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkDirRoot = t.TempDir()
	opts.EnableSharding = true // for ShardedPostings
	h, err := tsdb.NewHead(nil, nil, nil, nil, opts, nil)
	if err != nil {
		t.Fatalf("open head: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	app := h.Appender(context.Background())
	for _, lset := range series {
		if _, err := app.Append(0, lset, 1000, 1); err != nil {
			t.Fatalf("append %s: %v", lset, err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return h
}

// checkAgainstHead runs matcher sets on ix and on the head's querier and
// fails on any difference in the series selected, label names or values.
func checkAgainstHead(t testing.TB, ix *Index, h *tsdb.Head, rng *rand.Rand, queries int) {
	t.Helper()
	ctx := context.Background()
	q, err := tsdb.NewBlockQuerier(tsdb.NewRangeHead(h, math.MinInt64, math.MaxInt64), math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatalf("querier: %v", err)
	}
	defer q.Close()
	for range queries {
		ms := randomMatchers(rng)
		var want []string
		ss := q.Select(ctx, false, nil, ms...)
		for ss.Next() {
			want = append(want, ss.At().Labels().String())
		}
		if err := ss.Err(); err != nil {
			t.Fatalf("select %v: %v", ms, err)
		}
		var got []string
		refs := ix.PostingsForMatchers(ms...)
		if !slices.IsSorted(refs) {
			t.Fatalf("%v: refs not sorted: %v", ms, refs)
		}
		for _, ref := range refs {
			got = append(got, ix.Labels(ref).String())
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%v: got %d series %v, Prometheus %d %v", ms, len(got), got, len(want), want)
		}
		wantNames, _, err := q.LabelNames(ctx, nil, ms...)
		if err != nil {
			t.Fatalf("label names: %v", err)
		}
		if got := ix.LabelNames(ms...); !equalOrBothEmpty(got, wantNames) {
			t.Fatalf("LabelNames(%v) = %v, Prometheus %v", ms, got, wantNames)
		}
		name := append(slices.Clone(testNames), "rare", "absent")[rng.IntN(len(testNames)+2)]
		wantValues, _, err := q.LabelValues(ctx, name, nil, ms...)
		if err != nil {
			t.Fatalf("label values: %v", err)
		}
		if got := ix.LabelValues(name, ms...); !equalOrBothEmpty(got, wantValues) {
			t.Fatalf("LabelValues(%s, %v) = %v, Prometheus %v", name, ms, got, wantValues)
		}
	}
	wantNames, _, _ := q.LabelNames(ctx, nil)
	if got := ix.LabelNames(); !equalOrBothEmpty(got, wantNames) {
		t.Fatalf("LabelNames() = %v, Prometheus %v", got, wantNames)
	}
	for _, name := range testNames {
		want, _, _ := q.LabelValues(ctx, name, nil)
		if got := ix.LabelValues(name); !equalOrBothEmpty(got, want) {
			t.Fatalf("LabelValues(%s) = %v, Prometheus %v", name, got, want)
		}
	}
}

func equalOrBothEmpty(a, b []string) bool { return len(a) == 0 && len(b) == 0 || slices.Equal(a, b) }

// buildBoth adds series to a new index (checking refs are dense and Labels
// and Lookup give them back) and to a Prometheus head.
func buildBoth(t testing.TB, series []labels.Labels) (*Index, *tsdb.Head) {
	t.Helper()
	ix := New()
	for i, lset := range series {
		ref, created := ix.Add(lset)
		if !created || ref != uint32(i+1) {
			t.Fatalf("Add(%s) = %d, %v; want %d, true", lset, ref, created, i+1)
		}
	}
	for i, lset := range series {
		if ref, created := ix.Add(lset); created || ref != uint32(i+1) {
			t.Fatalf("Add(%s) again = %d, %v; want %d, false", lset, ref, created, i+1)
		}
		if ref, ok := ix.Lookup(lset); !ok || ref != uint32(i+1) {
			t.Fatalf("Lookup(%s) = %d, %v; want %d", lset, ref, ok, i+1)
		}
		if got := ix.Labels(uint32(i + 1)); !labels.Equal(got, lset) {
			t.Fatalf("Labels(%d) = %s, want %s", i+1, got, lset)
		}
	}
	return ix, openHead(t, series)
}

func TestIndexMatchesPrometheus(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			series := randomSeries(rng, 50+rng.IntN(2000))
			ix, h := buildBoth(t, series)
			checkAgainstHead(t, ix, h, rng, 300)
		})
	}
}

func FuzzIndexMatchesPrometheus(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed, uint16(seed*37))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint16) {
		rng := rand.New(rand.NewPCG(seed, uint64(n)))
		series := randomSeries(rng, 1+int(n%500))
		ix, h := buildBoth(t, series)
		checkAgainstHead(t, ix, h, rng, 20)
	})
}

func TestLookupAndLabelsOfMissing(t *testing.T) {
	ix := New()
	ix.Add(labels.FromStrings("a", "1", "b", "2"))
	for _, lset := range []labels.Labels{
		labels.FromStrings("a", "1"),           // a subset
		labels.FromStrings("a", "1", "b", "3"), // an unknown value
		labels.FromStrings("a", "2", "b", "1"), // known symbols, other pairs
		labels.FromStrings("b", "2", "c", "1"), // an unknown name
		labels.FromStrings("a", "1", "b", "2", "c", "3"),
	} {
		if ref, ok := ix.Lookup(lset); ok {
			t.Errorf("Lookup(%s) = %d, want none", lset, ref)
		}
	}
	if got := ix.Labels(0); !got.IsEmpty() {
		t.Errorf("Labels(0) = %s", got)
	}
	if got := ix.Labels(2); !got.IsEmpty() {
		t.Errorf("Labels(2) = %s", got)
	}
	// An empty value is an absent label, as in Prometheus.
	ref, created := ix.Add(labels.FromStrings("a", "1", "b", "2", "c", ""))
	if ref != 1 || created {
		t.Errorf("Add with an empty value = %d, %v; want 1, false", ref, created)
	}
}

// TestLongLabels checks series and symbols longer than an arena page.
func TestLongLabels(t *testing.T) {
	ix := New()
	long := string(make([]byte, 3*pageSize/2))
	var want []labels.Labels
	for i := range 5 {
		lset := labels.FromStrings("big", long+strconv.Itoa(i), "i", strconv.Itoa(i))
		want = append(want, lset)
		ix.Add(lset)
		ix.Add(labels.FromStrings("small", strconv.Itoa(i)))
	}
	for i, lset := range want {
		ref, ok := ix.Lookup(lset)
		if !ok || ref != uint32(2*i+1) || !labels.Equal(ix.Labels(ref), lset) {
			t.Fatalf("series %d: ref %d, %v", i, ref, ok)
		}
	}
}

// TestConcurrentAdd adds overlapping sets of series from several goroutines
// while others query, and checks each distinct set got exactly one ref. Run
// it with -race.
func TestConcurrentAdd(t *testing.T) {
	const workers, perWorker = 8, 3000
	ix := New()
	refs := make([][]uint32, workers)
	created := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				// Workers w and w+1 share half their series.
				s := w*perWorker/2 + i
				ref, c := ix.Add(labels.FromStrings("__name__", "m"+strconv.Itoa(s%7), "s", strconv.Itoa(s)))
				refs[w] = append(refs[w], ref)
				if c {
					created[w]++
				}
				if i%500 == 0 {
					ix.PostingsForMatchers(labels.MustNewMatcher(labels.MatchRegexp, "__name__", "m1|m2"))
					ix.LabelValues("__name__")
					readAll(t, ix.Reader())
				}
			}
		})
	}
	wg.Wait()
	distinct := (workers + 1) * perWorker / 2
	total := 0
	for _, c := range created {
		total += c
	}
	if total != distinct || ix.Len() != distinct {
		t.Fatalf("created %d series, Len %d; want %d", total, ix.Len(), distinct)
	}
	bySeries := map[int]uint32{}
	for w := range workers {
		for i, ref := range refs[w] {
			s := w*perWorker/2 + i
			if prev, ok := bySeries[s]; ok && prev != ref {
				t.Fatalf("series %d got refs %d and %d", s, prev, ref)
			}
			bySeries[s] = ref
			want := labels.FromStrings("__name__", "m"+strconv.Itoa(s%7), "s", strconv.Itoa(s))
			if got := ix.Labels(ref); !labels.Equal(got, want) {
				t.Fatalf("ref %d is %s, want %s", ref, got, want)
			}
		}
	}
	for m := range 7 {
		p := ix.Postings("__name__", "m"+strconv.Itoa(m))
		if !slices.IsSorted(p) || len(p) < distinct/7 {
			t.Fatalf("postings of m%d: %d refs, sorted %v", m, len(p), slices.IsSorted(p))
		}
	}
}

// TestManySymbols checks symbol IDs of three varint bytes (past 2^14) and
// tables grown many times.
func TestManySymbols(t *testing.T) {
	const n = 40_000
	ix := New()
	for s := range n {
		ix.Add(labels.FromStrings("s", strconv.Itoa(s), "m", strconv.Itoa(s%3)))
	}
	for s := 0; s < n; s += 997 {
		want := labels.FromStrings("s", strconv.Itoa(s), "m", strconv.Itoa(s%3))
		if p := ix.Postings("s", strconv.Itoa(s)); !slices.Equal(p, []uint32{uint32(s + 1)}) {
			t.Fatalf("postings of s=%d: %v", s, p)
		}
		if got := ix.Labels(uint32(s + 1)); !labels.Equal(got, want) {
			t.Fatalf("Labels(%d) = %s, want %s", s+1, got, want)
		}
	}
	if got := len(ix.LabelValues("s")); got != n {
		t.Fatalf("%d values of s, want %d", got, n)
	}
	if got := len(ix.Postings("m", "2")); got != n/3 {
		t.Fatalf("%d series with m=2, want %d", got, n/3)
	}
}
