package headchunks

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// The series of TestTruncateLetsAppendsAndReadsThrough, by ref%4: each
// has a sample a second from 0 s, and chunks of 10 s.
const (
	catDropped = iota // samples to 22 s only: every chunk ends before the first truncation
	catIdle           // samples to 39 s, none after
	catWriter         // appended by the writers while truncations run
	catHook           // appended by the hook midway through a truncation's pass
)

const (
	concRange = 10_000
	concStep  = 1000
)

func concValue(ref uint32, t int64) float64 { return float64(ref)*1e6 + float64(t/concStep) }

// TestTruncateLetsAppendsAndReadsThrough truncates twice while two writers
// append, one sample by sample and one by Batch (cutting chunks in stripes the pass has and has not reached) and a
// reader reads, and checks that every series keeps just the samples of its
// chunks that end at or after the truncation time, with their values.
// Halfway through each pass, appends that cut chunks on both sides of it,
// and reads, must go through within a minute: Truncate holds no lock but
// one stripe's.
func TestTruncateLetsAppendsAndReadsThrough(t *testing.T) {
	b := newBuffer(t, concRange)
	const n = 3*pageSize + 100 // four pages: every stripe has records in several
	lastT := make([]int64, n+1)
	for ts := int64(0); ts < 40*concStep; ts += concStep {
		for ref := uint32(1); ref <= n; ref++ {
			if ref%4 == catDropped && ts > 22*concStep {
				continue
			}
			mustAppend(t, b, ref, ts)
			lastT[ref] = ts
		}
	}

	// First truncation at 25 s: chunk [20 s, 30 s) is kept where it reaches 25 s.
	empty := truncateAppending(t, b, lastT, 25*concStep, 20*concStep, 40*concStep)
	var want []uint32
	for ref := uint32(1); ref <= n; ref++ {
		if ref%4 == catDropped {
			want = append(want, ref)
		}
	}
	if !slices.Equal(empty, want) {
		t.Fatalf("Truncate reports %d series empty, want the %d that stopped at 22 s", len(empty), len(want))
	}
	checkAll(t, b, lastT, 20*concStep)
	b.Forget(empty) // as the head does

	// Second, at 35 s: chunks up to [20 s, 30 s) go, some of them in the
	// lists the first one built while chunks were cut.
	if empty := truncateAppending(t, b, lastT, 35*concStep, 30*concStep, 50*concStep); len(empty) != 0 {
		t.Fatalf("the second truncation reports %d series empty, want none", len(empty))
	}
	checkAll(t, b, lastT, 30*concStep)
	if oldest, ok := b.Oldest(); !ok || oldest != 30*concStep {
		t.Fatalf("Oldest = %d, %v after the second truncation; want %d", oldest, ok, 30*concStep)
	}
}

// truncateAppending truncates at mint while the writers append to their
// series and a reader reads everything from mint on (each series must read
// from keptFrom on, in order), and halfway through the pass appends ten
// seconds from hookFrom to the hook's series and reads. lastT is each
// series' last sample, kept up to date.
func truncateAppending(t *testing.T, b *Buffer, lastT []int64, mint, keptFrom, hookFrom int64) []uint32 {
	n := uint32(len(lastT) - 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range uint32(2) {
		wg.Add(1)
		go func() { // owns the writer series ref with ref/4%2 == w; writer 1 appends by Batch
			defer wg.Done()
			for !stopped(stop) {
				bt := b.Batch()
				for ref := uint32(catWriter); ref <= n; ref += 4 {
					if ref/4%2 != w {
						continue
					}
					next := lastT[ref] + concStep
					if w == 1 {
						bt.Add(ref, next, concValue(ref, next))
					} else if err := b.Append(ref, next, concValue(ref, next)); err != nil {
						t.Error(err)
						return
					}
					lastT[ref] = next
				}
				if bt.Flush(); bt.Err != nil {
					t.Error(bt.Err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ref := uint32(1); !stopped(stop); ref = ref%n + 1 {
			if err := checkRead(b, ref, mint, keptFrom); err != nil {
				t.Error(err)
				return
			}
		}
	}()

	ran := false
	passHook = func(passed int) {
		if passed == len(b.stripes)/2 {
			ran = true
			b.disk.CutNewFile() // chunks cut from here on go to a file of their own
			done := make(chan error, 1)
			go func() { done <- appendHookSeries(b, lastT, mint, keptFrom, hookFrom) }()
			select {
			case err := <-done:
				if err != nil {
					t.Error(err)
				}
			case <-time.After(time.Minute):
				t.Fatal("appends and reads waited for the rest of the truncation")
			}
		}
	}
	defer func() { passHook = func(int) {} }()
	empty, err := b.Truncate(mint)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("the pass hook did not run")
	}
	return empty
}

// appendHookSeries appends ten seconds from hookFrom to every hook series,
// which cuts its open chunk, and reads each before and after.
func appendHookSeries(b *Buffer, lastT []int64, mint, keptFrom, hookFrom int64) error {
	for ref := uint32(catHook); ref < uint32(len(lastT)); ref += 4 {
		if err := checkRead(b, ref, mint, keptFrom); err != nil {
			return fmt.Errorf("before appending: %w", err)
		}
		for ts := hookFrom; ts < hookFrom+10*concStep; ts += concStep {
			if err := b.Append(ref, ts, concValue(ref, ts)); err != nil {
				return err
			}
		}
		lastT[ref] = hookFrom + 9*concStep
		if err := checkRead(b, ref, mint, keptFrom); err != nil {
			return fmt.Errorf("after appending: %w", err)
		}
	}
	return nil
}

// checkRead reads series ref's chunks from mint on: the dropped series
// read none, the others a sample a second from keptFrom on.
func checkRead(b *Buffer, ref uint32, mint, keptFrom int64) error {
	ts, vs, err := readValues(b, ref, mint, math.MaxInt64)
	if err != nil {
		return err
	}
	if ref%4 == catDropped {
		if len(ts) != 0 {
			return fmt.Errorf("series %d, all of it before %d, reads %d samples", ref, mint, len(ts))
		}
		return nil
	}
	for i := range ts {
		if want := keptFrom + int64(i)*concStep; ts[i] != want || vs[i] != concValue(ref, want) {
			return fmt.Errorf("series %d: sample %d is (%d, %v), want (%d, %v)", ref, i, ts[i], vs[i], want, concValue(ref, want))
		}
	}
	if len(ts) == 0 {
		return fmt.Errorf("series %d reads no sample from %d", ref, mint)
	}
	return nil
}

// checkAll checks that every series reads exactly its samples from
// keptFrom to its last, with every chunk listed (none dropped is left),
// and the dropped series nothing.
func checkAll(t *testing.T, b *Buffer, lastT []int64, keptFrom int64) {
	t.Helper()
	for ref := uint32(1); ref < uint32(len(lastT)); ref++ {
		ts, _, err := readValues(b, ref, math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		if ref%4 == catDropped {
			if len(ts) != 0 {
				t.Fatalf("series %d still reads %d samples", ref, len(ts))
			}
			continue
		}
		if err := checkRead(b, ref, math.MinInt64, keptFrom); err != nil {
			t.Fatal(err)
		}
		if want := int((lastT[ref]-keptFrom)/concStep) + 1; len(ts) != want {
			t.Fatalf("series %d reads %d samples to %d, want %d from %d to %d", ref, len(ts), ts[len(ts)-1], want, keptFrom, lastT[ref])
		}
	}
}

// readValues is readAll with the values, and errors returned.
func readValues(b *Buffer, ref uint32, mint, maxt int64) (ts []int64, vs []float64, err error) {
	for _, m := range b.Chunks(ref, mint, maxt, nil) {
		chk, err := b.Chunk(m)
		if err != nil {
			return nil, nil, fmt.Errorf("series %d: chunk from %d: %w", ref, m.MinTime, err)
		}
		it := chk.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			ts, vs = append(ts, t), append(vs, v)
		}
		if it.Err() != nil {
			return nil, nil, fmt.Errorf("series %d: chunk from %d: %w", ref, m.MinTime, it.Err())
		}
	}
	return ts, vs, nil
}

func mustAppend(t *testing.T, b *Buffer, ref uint32, ts int64) {
	t.Helper()
	if err := b.Append(ref, ts, concValue(ref, ts)); err != nil {
		t.Fatal(err)
	}
}

func stopped(stop chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// TestTruncateKeepsFilesOfChunksCutDuringIt cuts, during the pass, a chunk
// of a series the pass has gone by into the head chunk file of the time,
// and then, in a new file, one of a series it has not reached: the kept
// chunks the pass finds are all in the new file, and the first one's file
// must stay all the same.
func TestTruncateKeepsFilesOfChunksCutDuringIt(t *testing.T) {
	b := newBuffer(t, concRange)
	passed, ahead := uint32(1), uint32(passStripes+1) // in the first group of stripes passed, and the second
	for ts := int64(0); ts < 20*concStep; ts += concStep {
		mustAppend(t, b, passed, ts)
		mustAppend(t, b, ahead, ts)
	}
	passHook = func(stripes int) {
		if stripes != passStripes {
			return
		}
		for ts := int64(20 * concStep); ts <= 30*concStep; ts += concStep {
			mustAppend(t, b, passed, ts) // cuts [20 s, 30 s) into the first file
		}
		b.disk.CutNewFile()
		for ts := int64(20 * concStep); ts <= 30*concStep; ts += concStep {
			mustAppend(t, b, ahead, ts) // cuts [10 s, 20 s) and [20 s, 30 s) into the second
		}
		for !b.disk.IsQueueEmpty() {
			time.Sleep(time.Millisecond)
		}
	}
	defer func() { passHook = func(int) {} }()
	if _, err := b.Truncate(20 * concStep); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []uint32{passed, ahead} {
		ts, _, err := readValues(b, ref, math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 11 || ts[0] != 20*concStep {
			t.Fatalf("series %d reads %v, want 20 s to 30 s", ref, ts)
		}
	}
}
