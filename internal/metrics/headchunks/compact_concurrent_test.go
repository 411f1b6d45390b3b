package headchunks

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// grownValue is the value of series ref's sample of round r: varied enough
// that a chunk of eight outgrows its first, 24-byte slot.
func grownValue(ref uint32, r int) float64 { return float64(r) * float64(ref) * 1.1 }

// fillGrown appends rounds 0 to 7 to series 1 to n, which leaves most of
// the 24-byte slots free.
func fillGrown(t *testing.T, b *Buffer, n uint32) []int {
	last := make([]int, n+1)
	for r := range 8 {
		for ref := uint32(1); ref <= n; ref++ {
			if err := b.Append(ref, int64(r*15000), grownValue(ref, r)); err != nil {
				t.Fatal(err)
			}
			last[ref] = r
		}
	}
	return last
}

// checkGrown checks that series ref reads rounds 0 to last with their
// values; with last < 0, rounds 0 to any.
func checkGrown(b *Buffer, ref uint32, last int) error {
	ts, vs, err := readValues(b, ref, math.MinInt64, math.MaxInt64)
	if err != nil {
		return err
	}
	for r := range ts {
		if ts[r] != int64(r*15000) || vs[r] != grownValue(ref, r) {
			return fmt.Errorf("series %d: sample %d is (%d, %v), want (%d, %v)", ref, r, ts[r], vs[r], r*15000, grownValue(ref, r))
		}
	}
	if last >= 0 && len(ts) != last+1 {
		return fmt.Errorf("series %d reads %d samples, want %d", ref, len(ts), last+1)
	}
	return nil
}

// checkCount checks that Count's open chunks, counted from the slabs, are
// the series holding one: Compact gave back or kept every slot it took.
func checkCount(t *testing.T, b *Buffer) {
	t.Helper()
	if open, _ := b.Count(); open != openBySeries(b) {
		t.Fatalf("Count gives %d open chunks, the series hold %d", open, openBySeries(b))
	}
}

// TestCompactLetsAppendsAndReadsThrough compacts while two writers append
// (growing chunks into other slots, which frees and takes slots of the
// classes being compacted) and a reader reads, and checks every sample and
// the slots' count after; halfway through the pass appends must go through.
func TestCompactLetsAppendsAndReadsThrough(t *testing.T) {
	b := newBuffer(t, testRange)
	const n = 20000
	last := fillGrown(t, b, n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range uint32(2) {
		wg.Add(1)
		go func() { // owns the series ref with ref%2 == w
			defer wg.Done()
			for r := 8; !stopped(stop) && r < 200; r++ {
				for ref := 1 + w; ref <= n; ref += 2 {
					if err := b.Append(ref, int64(r*15000), grownValue(ref, r)); err != nil {
						t.Error(err)
						return
					}
					last[ref] = r
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ref := uint32(1); !stopped(stop); ref = ref%n + 1 {
			if err := checkGrown(b, ref, -1); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	ran := false
	compactHook = func(passed int) {
		if passed == len(b.stripes)/2 {
			ran = true
			appendWithin(t, b, n+1, 0, grownValue(n+1, 0)) // a new series: a slot of class 0
		}
	}
	defer func() { compactHook = func(int) {} }()
	b.Compact()
	close(stop)
	wg.Wait()
	if !ran {
		t.Fatal("Compact had nothing to do; the test sets up nothing")
	}
	for ref := uint32(1); ref <= n; ref++ {
		if err := checkGrown(b, ref, last[ref]); err != nil {
			t.Fatal(err)
		}
	}
	checkCount(t, b)
}

// shortSeries are series n+1 to n+short after fillGrown's n: one sample
// each, so that they stay in 24-byte slots, many of them above the limit a
// Compact of that class sets.
const short = 3000

// fillShort adds the short series to a buffer fillGrown filled with n, and
// returns the class-0 slabs it then has.
func fillShort(t *testing.T, b *Buffer, n uint32) int {
	for ref := n + 1; ref <= n+short; ref++ {
		mustAppendGrown(t, b, ref, 0)
	}
	return len(*b.slabs.classes[0].slabs.Load())
}

func mustAppendGrown(t *testing.T, b *Buffer, ref uint32, r int) {
	t.Helper()
	if err := b.Append(ref, int64(r*15000), grownValue(ref, r)); err != nil {
		t.Fatal(err)
	}
}

// compactHalfway runs Compact with during called halfway through its pass,
// after checking that short series not passed yet are in slots it is to
// drop, and returns the class-0 slabs left.
func compactHalfway(t *testing.T, b *Buffer, n uint32, during func()) int {
	ran := false
	compactHook = func(passed int) {
		if passed != len(b.stripes)/2 {
			return
		}
		ran = true
		cl := &b.slabs.classes[0]
		cl.mu.Lock()
		cp := cl.compacting
		cl.mu.Unlock()
		above := 0
		for ref := n + 1; ref <= n+short; ref++ {
			if s := b.existing(ref); int(ref&stripeMask) >= passed && s.loc>>classShift == 0 && s.loc&slotMask >= cp.limit {
				above++
			}
		}
		if !cp.on || above == 0 {
			t.Fatalf("no short series to move yet (compacting %v, %d above the limit)", cp.on, above)
		}
		during()
	}
	defer func() { compactHook = func(int) {} }()
	b.Compact()
	if !ran {
		t.Fatal("Compact had nothing to do")
	}
	return len(*b.slabs.classes[0].slabs.Load())
}

// checkAllGrown checks every series' samples after the tests below.
func checkAllGrown(t *testing.T, b *Buffer, last []int, n uint32) {
	t.Helper()
	for ref := uint32(1); ref <= n+short; ref++ {
		want := 0
		if ref <= n {
			want = last[ref]
		}
		if err := checkGrown(b, ref, want); err != nil {
			t.Fatal(err)
		}
	}
	checkCount(t, b)
}

// TestCompactDropsSlotsReleasedDuringIt grows, halfway through the pass,
// the chunks of the short series out of their 24-byte slots: the slots of
// those the pass has not reached, which were to be dropped, are released
// then instead of moved, and the class's slabs above the limit must still
// go.
func TestCompactDropsSlotsReleasedDuringIt(t *testing.T) {
	b := newBuffer(t, testRange)
	const n = 20000
	last := fillGrown(t, b, n)
	before := fillShort(t, b, n)
	after := compactHalfway(t, b, n, func() {
		for ref := uint32(n + 1); ref <= n+short; ref++ {
			r := 0
			for b.existing(ref).loc>>classShift == 0 {
				r++
				mustAppendGrown(t, b, ref, r)
			}
			last = append(last, r)
		}
	})
	if after >= before {
		t.Fatalf("the 24-byte class kept %d slabs of %d", after, before)
	}
	for ref := uint32(1); ref <= n+short; ref++ {
		if err := checkGrown(b, ref, last[ref]); err != nil {
			t.Fatal(err)
		}
	}
	checkCount(t, b)
}

// TestCompactKeepsSlabsWhenFreeSlotsRunOut has new series take, halfway
// through the pass, every free 24-byte slot below the class's limit: the
// short series the pass has not reached cannot move, and the class must
// keep its slabs and every slot.
func TestCompactKeepsSlabsWhenFreeSlotsRunOut(t *testing.T) {
	b := newBuffer(t, testRange)
	const n = 20000
	last := fillGrown(t, b, n)
	before := fillShort(t, b, n)
	var added uint32
	after := compactHalfway(t, b, n, func() {
		cl := &b.slabs.classes[0]
		cl.mu.Lock()
		free := len(cl.free)
		cl.mu.Unlock()
		for i := range free { // the free list holds only slots below the limit
			ref := uint32(n + short + 1 + i)
			appendWithin(t, b, ref, 0, grownValue(ref, 0))
		}
		added = uint32(free)
		if cl.mu.Lock(); cl.next != cl.compacting.top {
			t.Errorf("a slot was handed out from the top: the test meant none to be")
		}
		cl.mu.Unlock()
	})
	if after < before {
		t.Fatalf("the 24-byte class went from %d slabs to %d with chunks left above the limit", before, after)
	}
	checkAllGrown(t, b, last, n)
	for ref := uint32(n + short + 1); ref <= n+short+added; ref++ {
		if err := checkGrown(b, ref, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCompactKeepsSlabsAllocsNeeded has new series take, halfway through
// the pass, more 24-byte slots than are free below the class's limit, so
// that slots are handed out from its top up: the class must keep its
// slabs and every slot, and the next Compact frees what it can.
func TestCompactKeepsSlabsAllocsNeeded(t *testing.T) {
	b := newBuffer(t, testRange)
	const n, more = 20000, 6000
	last := fillGrown(t, b, n)
	before := fillShort(t, b, n)
	after := compactHalfway(t, b, n, func() {
		for ref := uint32(n + short + 1); ref <= n+short+more; ref++ {
			appendWithin(t, b, ref, 0, grownValue(ref, 0))
		}
	})
	if after < before {
		t.Fatalf("the 24-byte class went from %d slabs to %d while slots from its top up were handed out", before, after)
	}
	checkAllGrown(t, b, last, n)
	size := b.Bytes()
	if freed := b.Compact(); freed == 0 || b.Bytes() != size-freed {
		t.Fatalf("the next Compact freed %d bytes of %d, Bytes now %d", freed, size, b.Bytes())
	}
	checkAllGrown(t, b, last, n)
}

// appendWithin appends in a goroutine and fails the test if that takes a
// minute: a Compact holding every stripe would block it.
func appendWithin(t *testing.T, b *Buffer, ref uint32, ts int64, v float64) {
	done := make(chan error, 1)
	go func() { done <- b.Append(ref, ts, v) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("an append waited for the rest of the Compact")
	}
}
