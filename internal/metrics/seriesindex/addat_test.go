package seriesindex

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestAddAtKeepsTheRefsAWALGives replays series as a WAL holds them: with
// the refs an earlier run gave, ascending, with gaps where that run removed
// series, and one series twice (removed and added again under a new ref).
func TestAddAtKeepsTheRefsAWALGives(t *testing.T) {
	ix := New()
	a, b := labels.FromStrings("__name__", "up", "job", "a"), labels.FromStrings("__name__", "up", "job", "b")
	for _, step := range []struct {
		lset    labels.Labels
		ref     uint32
		want    uint32
		created bool
	}{{a, 3, 3, true}, {b, 7, 7, true}, {a, 9, 3, false}} {
		got, created, err := ix.AddAt(step.lset, step.ref)
		if err != nil || got != step.want || created != step.created {
			t.Fatalf("AddAt(%v, %d) = %d, %v, %v; want %d, %v", step.lset, step.ref, got, created, err, step.want, step.created)
		}
	}
	if _, _, err := ix.AddAt(labels.FromStrings("job", "c"), 7); err == nil {
		t.Fatal("AddAt took a ref below the last one given")
	}
	if ix.Len() != 2 || !slices.Equal(ix.Postings("__name__", "up"), []uint32{3, 7}) {
		t.Fatalf("Len %d, postings %v; want 2 series, refs 3 and 7", ix.Len(), ix.Postings("__name__", "up"))
	}
	var sb labels.ScratchBuilder
	if ix.AppendLabels(&sb, 5) || ix.Has(5) || !ix.Has(3) || ix.Has(0) || ix.Has(8) {
		t.Fatal("Has or AppendLabels are wrong about refs 0, 3, 5 (skipped) or 8 (not given yet)")
	}
	if ix.MaxRef() != 7 {
		t.Fatalf("MaxRef %d, want 7", ix.MaxRef())
	}
	if ref, created := ix.Add(labels.FromStrings("job", "c")); !created || ref != 8 {
		t.Fatalf("the next new series got ref %d (created %v), want 8", ref, created)
	}
	if ref, ok := ix.Lookup(b); !ok || ref != 7 || !labels.Equal(ix.Labels(7), b) {
		t.Fatalf("Lookup(b) = %d, %v", ref, ok)
	}
}
