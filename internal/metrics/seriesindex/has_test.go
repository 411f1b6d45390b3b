package seriesindex

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestHasWhileAddingAndDeleting asks Has, which takes no lock, about series
// that stay, while other goroutines create series (the offsets grow into
// new arrays) and Delete removes others, compacting the arena and
// renumbering the symbols as it goes (run it with -race): a series that
// stays is always there, a removed one is gone once Delete has marked it,
// and a new one is there once Add returns.
func TestHasWhileAddingAndDeleting(t *testing.T) {
	ix := New()
	var keep []uint32
	for i := range 2000 {
		ref, _ := ix.Add(labels.FromStrings("__name__", "kept", "i", strconv.Itoa(i)))
		keep = append(keep, ref)
	}
	var stop atomic.Bool // the adder also stops at 20,000 series, to bound Delete's passes
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // a committer, asking about the series it writes to
		defer wg.Done()
		for !stop.Load() {
			for _, ref := range keep {
				if !ix.Has(ref) {
					t.Errorf("Has(%d) false for a series never removed", ref)
					return
				}
			}
		}
	}()
	var added atomic.Uint32
	go func() { // new series arriving, each seen by Has at once
		defer wg.Done()
		for i := 0; !stop.Load() && i < 20000; i++ {
			ref, _ := ix.Add(labels.FromStrings("__name__", "new", "i", strconv.Itoa(i), "v"+strconv.Itoa(i%50), "x"))
			if !ix.Has(ref) {
				t.Errorf("Has(%d) false right after Add", ref)
				return
			}
			added.Store(ref)
		}
	}()
	for round := range 8 {
		temp := make(map[uint32]bool)
		for i := range 3000 {
			ref, _ := ix.Add(labels.FromStrings("__name__", "temp", "round", strconv.Itoa(round), "i", strconv.Itoa(i), "u"+strconv.Itoa(i), "y"))
			temp[ref] = true
		}
		var marked []uint32
		ix.DeleteThen(func(ref uint32) bool { return temp[ref] }, func() {
			for ref := range temp {
				if ix.Has(ref) {
					t.Errorf("round %d: Has(%d) true for a series Delete marked", round, ref)
					return
				}
				marked = append(marked, ref)
			}
		})
		if len(marked) != len(temp) {
			t.Fatalf("round %d: %d series marked, want %d", round, len(marked), len(temp))
		}
		for _, ref := range marked {
			if ix.Has(ref) {
				t.Fatalf("round %d: Has(%d) true after Delete", round, ref)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if added.Load() == 0 {
		t.Fatal("no series added while deleting")
	}
}
