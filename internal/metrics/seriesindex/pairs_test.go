package seriesindex

import (
	"cmp"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestLabelPairs counts each label pair's series, inline postings and lists
// alike, and forgets the series Delete removed.
func TestLabelPairs(t *testing.T) {
	ix := New()
	for i := range 6 {
		ix.Add(labels.FromStrings("__name__", "up", "job", []string{"api", "db"}[i%2], "id", strconv.Itoa(i)))
	}
	want := map[LabelPair]bool{{"__name__", "up", 6}: true, {"job", "api", 3}: true, {"job", "db", 3}: true}
	for i := range 6 {
		want[LabelPair{"id", strconv.Itoa(i), 1}] = true
	}
	samePairs(t, "before Delete", ix.LabelPairs(nil), want)

	ix.Delete(func(ref uint32) bool { return ref <= 3 }) // ids 0, 1, 2
	want = map[LabelPair]bool{{"__name__", "up", 3}: true, {"job", "api", 1}: true, {"job", "db", 2}: true,
		{"id", "3", 1}: true, {"id", "4", 1}: true, {"id", "5", 1}: true}
	samePairs(t, "after Delete", ix.LabelPairs(nil), want)
}

func samePairs(t *testing.T, when string, got []LabelPair, want map[LabelPair]bool) {
	t.Helper()
	seen := map[LabelPair]bool{}
	for _, p := range got {
		if !want[p] || seen[p] {
			t.Errorf("%s: pair %+v unexpected or repeated", when, p)
		}
		seen[p] = true
	}
	if len(seen) != len(want) {
		slices.SortFunc(got, func(a, b LabelPair) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Value, b.Value)) })
		t.Errorf("%s: pairs %v, want %d", when, got, len(want))
	}
}
