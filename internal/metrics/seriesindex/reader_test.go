package seriesindex

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
)

// headReader is a tsdb.IndexReader as a head builds it on Reader: Reader
// plus Series, here labels without chunks.
type headReader struct{ *Reader }

var _ tsdb.IndexReader = headReader{}

func (r headReader) Series(ref storage.SeriesRef, b *labels.ScratchBuilder, chks *[]chunks.Meta) error {
	if ref > math.MaxUint32 || !r.ix.AppendLabels(b, uint32(ref)) {
		return storage.ErrNotFound
	}
	if chks != nil {
		*chks = (*chks)[:0]
	}
	return nil
}

// diff compares a Reader with the index reader of a Prometheus head holding
// the same series.
type diff struct {
	t    testing.TB
	ctx  context.Context
	ours tsdb.IndexReader
	head tsdb.IndexReader
}

func newDiff(t testing.TB, ix *Index, h *tsdb.Head) *diff {
	hr, err := h.Index()
	if err != nil {
		t.Fatalf("head index: %v", err)
	}
	return &diff{t: t, ctx: context.Background(), ours: headReader{ix.Reader()}, head: hr}
}

// series lists the label sets of p's series, in p's order; ours must also
// come sorted by ref when sorted is set.
func (d *diff) series(ir tsdb.IndexReader, p index.Postings, what string) []string {
	d.t.Helper()
	var out []string
	var b labels.ScratchBuilder
	var prev storage.SeriesRef
	for p.Next() {
		if ir == d.ours && p.At() <= prev && what != "sorted" {
			d.t.Fatalf("%s: ref %d after %d", what, p.At(), prev)
		}
		prev = p.At()
		if err := ir.Series(p.At(), &b, nil); err != nil {
			d.t.Fatalf("%s: series %d: %v", what, p.At(), err)
		}
		out = append(out, b.Labels().String())
	}
	if err := p.Err(); err != nil {
		d.t.Fatalf("%s: %v", what, err)
	}
	return out
}

// sameSeries fails unless both postings hold the same series.
func (d *diff) sameSeries(what string, ours, head index.Postings) {
	d.t.Helper()
	got, want := d.series(d.ours, ours, what), d.series(d.head, head, what)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		d.t.Fatalf("%s: %d series, Prometheus %d: %s", what, len(got), len(want), firstDiff(got, want))
	}
}

func (d *diff) sameStrings(what string, got, want []string, errGot, errWant error) {
	d.t.Helper()
	if errGot != nil || errWant != nil {
		d.t.Fatalf("%s: error %v, Prometheus %v", what, errGot, errWant)
	}
	if !equalOrBothEmpty(got, want) {
		d.t.Fatalf("%s = %q, Prometheus %q", what, got, want)
	}
}

func (d *diff) postings(ir tsdb.IndexReader, name string, values ...string) index.Postings {
	d.t.Helper()
	p, err := ir.Postings(d.ctx, name, values...)
	if err != nil {
		d.t.Fatalf("postings %s=%q: %v", name, values, err)
	}
	return p
}

func (d *diff) forMatchers(ir tsdb.IndexReader, ms []*labels.Matcher) index.Postings {
	d.t.Helper()
	// PostingsForMatchers sorts the matchers it is given.
	p, err := tsdb.PostingsForMatchers(d.ctx, ir, slices.Clone(ms)...)
	if err != nil {
		d.t.Fatalf("postings for %v: %v", ms, err)
	}
	return p
}

var readerNames = append(slices.Clone(testNames), "rare", "absent", "")

// checkWhole compares the answers about all series: symbols, names,
// values, each name's postings, all postings sorted and sharded.
func (d *diff) checkWhole(rng *rand.Rand) {
	d.t.Helper()
	d.sameStrings("Symbols", iterStrings(d.t, d.ours.Symbols()), iterStrings(d.t, d.head.Symbols()), nil, nil)
	got, errGot := d.ours.LabelNames(d.ctx)
	want, errWant := d.head.LabelNames(d.ctx)
	d.sameStrings("LabelNames", got, want, errGot, errWant)
	for _, name := range readerNames {
		d.checkValues(name, nil)
		d.sameSeries("PostingsForAllLabelValues "+name,
			d.ours.PostingsForAllLabelValues(d.ctx, name), d.head.PostingsForAllLabelValues(d.ctx, name))
		vals := []string{"", "nope"}
		for range rng.IntN(4) {
			vals = append(vals, testValues[rng.IntN(len(testValues))])
		}
		vals = vals[rng.IntN(2):]
		d.sameSeries(fmt.Sprintf("Postings %s %q", name, vals), d.postings(d.ours, name, vals...), d.postings(d.head, name, vals...))
	}
	k, v := index.AllPostingsKey()
	d.checkSortedSharded("all", func() index.Postings { return d.postings(d.ours, k, v) },
		func() index.Postings { return d.postings(d.head, k, v) })
}

// checkValues compares the values of name among the series ms select,
// sorted, unsorted and limited to the smallest.
func (d *diff) checkValues(name string, ms []*labels.Matcher) {
	d.t.Helper()
	what := fmt.Sprintf("LabelValues(%q, %v)", name, ms)
	got, errGot := d.ours.SortedLabelValues(d.ctx, name, nil, ms...)
	want, errWant := d.head.SortedLabelValues(d.ctx, name, nil, ms...)
	d.sameStrings("Sorted"+what, got, want, errGot, errWant)
	got, errGot = d.ours.LabelValues(d.ctx, name, nil, ms...)
	want, errWant = d.head.LabelValues(d.ctx, name, nil, ms...)
	slices.Sort(got)
	slices.Sort(want)
	d.sameStrings(what, got, want, errGot, errWant)
	hints := &storage.LabelHints{Limit: 2, LimitSmallest: true}
	got, errGot = d.ours.SortedLabelValues(d.ctx, name, hints, ms...)
	want, errWant = d.head.SortedLabelValues(d.ctx, name, hints, ms...)
	d.sameStrings("limited Sorted"+what, got, want, errGot, errWant)
}

// checkSortedSharded compares SortedPostings (the same label sets in the
// same order) and ShardedPostings (the same series in each shard) of the
// postings that ours and head's make, then LabelNamesFor them.
func (d *diff) checkSortedSharded(what string, ours, head func() index.Postings) {
	d.t.Helper()
	got := d.series(d.ours, d.ours.SortedPostings(ours()), "sorted")
	want := d.series(d.head, d.head.SortedPostings(head()), "sorted")
	if !slices.Equal(got, want) {
		d.t.Fatalf("SortedPostings(%s): %s", what, firstDiff(got, want))
	}
	for _, n := range []uint64{1, 3, 7} {
		for i := range n {
			d.sameSeries(fmt.Sprintf("ShardedPostings(%s, %d, %d)", what, i, n),
				d.ours.ShardedPostings(ours(), i, n), d.head.ShardedPostings(head(), i, n))
		}
	}
	names, errGot := d.ours.LabelNamesFor(d.ctx, ours())
	wantNames, errWant := d.head.LabelNamesFor(d.ctx, head())
	d.sameStrings("LabelNamesFor "+what, names, wantNames, errGot, errWant)
}

// checkMatchers compares the series, names and values random matchers
// select, and PostingsForLabelMatching with each matcher.
func (d *diff) checkMatchers(rng *rand.Rand) {
	d.t.Helper()
	ms := randomMatchers(rng)
	what := fmt.Sprint(ms)
	d.sameSeries("PostingsForMatchers "+what, d.forMatchers(d.ours, ms), d.forMatchers(d.head, ms))
	d.checkSortedSharded(what, func() index.Postings { return d.forMatchers(d.ours, ms) },
		func() index.Postings { return d.forMatchers(d.head, ms) })
	got, errGot := d.ours.LabelNames(d.ctx, slices.Clone(ms)...)
	want, errWant := d.head.LabelNames(d.ctx, slices.Clone(ms)...)
	d.sameStrings("LabelNames "+what, got, want, errGot, errWant)
	d.checkValues(readerNames[rng.IntN(len(readerNames))], ms)
	for _, m := range ms {
		d.sameSeries("PostingsForLabelMatching "+m.String(),
			d.ours.PostingsForLabelMatching(d.ctx, m.Name, m.Matches), d.head.PostingsForLabelMatching(d.ctx, m.Name, m.Matches))
	}
}

// firstDiff describes where got and want, sorted, first differ.
func firstDiff(got, want []string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	at := func(s []string) string {
		if i < len(s) {
			return s[i]
		}
		return "(end)"
	}
	return fmt.Sprintf("at %d: %s, Prometheus %s", i, at(got), at(want))
}

func iterStrings(t testing.TB, it index.StringIter) []string {
	var out []string
	for it.Next() {
		out = append(out, it.At())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("symbols: %v", err)
	}
	return out
}

func checkReader(t testing.TB, ix *Index, h *tsdb.Head, rng *rand.Rand, queries int) {
	t.Helper()
	d := newDiff(t, ix, h)
	d.checkWhole(rng)
	for range queries {
		d.checkMatchers(rng)
	}
}

func TestReaderMatchesHead(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2))
			ix, h := buildBoth(t, randomSeries(rng, 50+rng.IntN(2000)))
			checkReader(t, ix, h, rng, 100)
		})
	}
}

func TestReaderEmpty(t *testing.T) {
	ix, h := New(), openHead(t, nil)
	checkReader(t, ix, h, rand.New(rand.NewPCG(1, 1)), 20)
}

func FuzzReaderMatchesHead(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed, uint16(seed*41))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint16) {
		rng := rand.New(rand.NewPCG(seed, uint64(n)))
		ix, h := buildBoth(t, randomSeries(rng, 1+int(n%500)))
		checkReader(t, ix, h, rng, 10)
	})
}

// TestReaderCanceled checks that the loops over many series or values stop
// on a canceled context.
func TestReaderCanceled(t *testing.T) {
	ix := New()
	for i := range 1000 {
		ix.Add(labels.FromStrings("__name__", "m", "i", strconv.Itoa(i)))
	}
	r := ix.Reader()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	all := r.PostingsForAllLabelValues(context.Background(), "i")
	if _, err := r.LabelNamesFor(ctx, all); !errors.Is(err, context.Canceled) {
		t.Errorf("LabelNamesFor: %v", err)
	}
	if err := r.PostingsForLabelMatching(ctx, "i", func(string) bool { return true }).Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("PostingsForLabelMatching: %v", err)
	}
	m := labels.MustNewMatcher(labels.MatchRegexp, "i", "1.*")
	if _, err := r.LabelValues(ctx, "i", nil, m); !errors.Is(err, context.Canceled) {
		t.Errorf("LabelValues: %v", err)
	}
	if _, err := r.LabelNames(ctx, m); !errors.Is(err, context.Canceled) {
		t.Errorf("LabelNames: %v", err)
	}
}

// TestPostingsIterators drives each postings type with the same random
// Next and Seek calls as Prometheus's list postings over the same refs.
func TestPostingsIterators(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for range 300 {
		var refs []uint32
		var l list
		for r := uint32(1 + rng.IntN(3)); len(refs) < rng.IntN(40); r += uint32(1 + rng.IntN(300)) {
			refs = append(refs, r)
			l.add(r)
		}
		n := uint32(rng.IntN(40))
		hi := n
		if len(refs) > 0 {
			hi = max(hi, refs[len(refs)-1])
		}
		calls := randomCalls(rng, int(hi)+2)
		checkIter(t, "refPostings", &refPostings{refs: refs}, refs, calls)
		checkIter(t, "gapPostings", &gapPostings{data: l.data}, refs, calls)
		offs, live := removedSome(rng, n)
		checkIter(t, "allPostings", &allPostings{offs: offs, next: 1}, live, calls)
	}
}

// removedSome returns the offsets of n series, some removed, and the refs
// of the others.
func removedSome(rng *rand.Rand, n uint32) (offs, live []uint32) {
	offs = make([]uint32, n)
	for i := range offs {
		if rng.IntN(3) == 0 {
			offs[i] = deadOff
		} else {
			live = append(live, uint32(i+1))
		}
	}
	return offs, live
}

// randomCalls returns calls to make of a postings: 0 for Next, else Seek
// to that ref, rising and at times repeating or going back.
func randomCalls(rng *rand.Rand, hi int) []int {
	calls := make([]int, 1+rng.IntN(30))
	for i := range calls {
		if rng.IntN(2) == 0 {
			calls[i] = 1 + rng.IntN(hi)
		}
	}
	return calls
}

// checkIter makes calls of p and of list postings over want and fails on
// a different answer, up to the first end (after which an iterator's
// answers are unspecified).
func checkIter(t *testing.T, what string, p index.Postings, want []uint32, calls []int) {
	t.Helper()
	refs := make([]storage.SeriesRef, len(want))
	for i, r := range want {
		refs[i] = storage.SeriesRef(r)
	}
	lp := index.NewListPostings(refs)
	for i, c := range calls {
		var got, exp bool
		if c == 0 {
			got, exp = p.Next(), lp.Next()
		} else {
			got, exp = p.Seek(storage.SeriesRef(c)), lp.Seek(storage.SeriesRef(c))
		}
		if got != exp || got && p.At() != lp.At() {
			t.Fatalf("%s over %v, calls %v: call %d gave %v %d, want %v %d", what, want, calls, i, got, p.At(), exp, lp.At())
		}
		if !got {
			return
		}
	}
}

// readAll calls each Reader method, for TestConcurrentAdd to run them while
// series are created.
func readAll(t *testing.T, r *Reader) {
	ctx := context.Background()
	iterStrings(t, r.Symbols())
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "s", "1.*"), labels.MustNewMatcher(labels.MatchNotEqual, "__name__", "m3")}
	if _, err := r.SortedLabelValues(ctx, "s", nil, ms...); err != nil {
		t.Errorf("label values: %v", err)
	}
	if _, err := r.LabelNames(ctx, ms...); err != nil {
		t.Errorf("label names: %v", err)
	}
	p := r.PostingsForLabelMatching(ctx, "s", func(v string) bool { return v[0] == '2' })
	p = r.ShardedPostings(r.SortedPostings(p), 1, 3)
	if _, err := r.LabelNamesFor(ctx, p); err != nil {
		t.Errorf("label names for: %v", err)
	}
	if _, err := index.ExpandPostings(r.PostingsForAllLabelValues(ctx, "__name__")); err != nil {
		t.Errorf("all values: %v", err)
	}
}

// TestStableHash checks the hash ShardedPostings shards by against
// labels.StableHash, on labels short and longer than its 1 KiB buffer.
func TestStableHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	ix := New()
	series := randomSeries(rng, 300)
	series = append(series, labels.FromStrings("a", string(make([]byte, 600)), "b", string(make([]byte, 700))))
	for _, lset := range series {
		ix.Add(lset)
	}
	v := ix.view()
	var buf []byte
	for _, lset := range series {
		ref, _ := ix.Lookup(lset)
		enc, _ := v.labelsOf(storage.SeriesRef(ref))
		if got, want := v.stableHash(&buf, enc), labels.StableHash(lset); got != want {
			t.Fatalf("hash of %.40s… = %x, labels.StableHash %x", lset, got, want)
		}
	}
}
