package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func preallocOptions(segmentSize int64) Options {
	o := testOptions(segmentSize)
	o.Preallocate = true
	return o
}

func openPrealloc(t *testing.T, dir string, segmentSize int64) *WAL {
	t.Helper()
	w, err := Open(dir, preallocOptions(segmentSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// toPreallocated cuts until the segment being written is a preallocated one
// (the first of a run is plain; the spare is made in the background).
func toPreallocated(t *testing.T, w *WAL) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		w.mu.Lock()
		ready := w.curAlloc > 0
		w.mu.Unlock()
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no preallocated segment within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
		if _, err := w.Cut(); err != nil {
			t.Fatal(err)
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A crash (no Close) leaves a preallocated segment: its records and then
// zeros. The next process replays every record and nothing after them,
// counts no damage, and gives the zeros back.
func TestPreallocatedSegmentReplaysUpToZeros(t *testing.T) {
	dir := t.TempDir()
	w := openPrealloc(t, dir, 64<<10)
	toPreallocated(t, w)
	seg := w.seg
	appendAll(t, w, "p0", "p1", "p2")
	path := w.segmentPath(seg)
	if size := fileSize(t, path); size != 64<<10 {
		t.Fatalf("preallocated segment is %d bytes, want 64 KiB", size)
	}
	w2, got := openReplay(t, dir, 64<<10) // kill -9: w is not closed first
	if strings.Join(got, ",") != "p0,p1,p2" || corruptions(w2) != 0 {
		t.Fatalf("replayed %q with %v corruptions, want p0,p1,p2 and none", got, corruptions(w2))
	}
	if size, want := fileSize(t, path), int64(3*(headerSize+2)); size != want {
		t.Fatalf("replayed segment is %d bytes, want its records' %d", size, want)
	}
}

// What follows the last record decides: zeros to the end of the file are
// the clean end of the records (a preallocated segment's unwritten rest,
// even a few bytes of it); a zero header with any data after it is a record
// whose header block did not reach the disk, counted as damage. Either way
// the segment is cut after the last good record.
func TestZeroTail(t *testing.T) {
	withData := func(zeros int) []byte { return append(make([]byte, zeros), "data"...) }
	for _, c := range []struct {
		name    string
		tail    []byte
		corrupt float64
	}{
		{"a few zeros", make([]byte, 3), 0},
		{"zeros", make([]byte, 4096), 0},
		{"zero header then data", withData(headerSize), 1},
		{"data far into the zeros", withData(3 * readAhead / 2), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			seg := append(AppendRecord(nil, []byte("kept")), c.tail...)
			if err := os.WriteFile(filepath.Join(dir, segmentName(1)), seg, 0o644); err != nil {
				t.Fatal(err)
			}
			w, got := openReplay(t, dir, 1<<20)
			if strings.Join(got, ",") != "kept" || corruptions(w) != c.corrupt {
				t.Fatalf("replayed %q with %v corruptions, want [kept] and %v", got, corruptions(w), c.corrupt)
			}
			if size, want := fileSize(t, filepath.Join(dir, segmentName(1))), int64(headerSize+4); size != want {
				t.Fatalf("segment is %d bytes after replay, want %d", size, want)
			}
		})
	}
}

// Many appenders across preallocated segments, then kill -9 and replay: each
// acknowledged record once; a failed sync in a preallocated segment still
// acknowledges nothing after it (the unacknowledged bytes are cut with the
// zeros), and closing leaves no spare behind.
func TestPreallocatedConcurrentAppendsAndFailedSync(t *testing.T) {
	dir := t.TempDir()
	w := openPrealloc(t, dir, 256<<10)
	toPreallocated(t, w)
	var wg sync.WaitGroup
	var acked sync.Map
	appendSome := func(tag string) {
		for g := range 4 {
			wg.Go(func() {
				for i := range 100 {
					rec := fmt.Sprintf("%s-%d-%d-%s", tag, g, i, strings.Repeat("x", 2000))
					if w.Append(context.Background(), []byte(rec)) == nil {
						acked.Store(rec, true)
					}
				}
			})
		}
		wg.Wait()
	}
	appendSome("a")
	toPreallocated(t, w)
	real := fdatasync
	fdatasync = func(*os.File) error { return errors.New("injected EIO") }
	if err := w.Append(context.Background(), []byte("lost")); err == nil {
		t.Fatal("append acknowledged although its sync failed")
	}
	fdatasync = real
	appendSome("b")
	n := 0
	acked.Range(func(any, any) bool { n++; return true })
	if n != 800 {
		t.Fatalf("%d of 800 appends acknowledged, want all", n)
	}
	_, got := openReplay(t, dir, 256<<10) // w still open: kill -9
	seen := map[string]bool{}
	for _, r := range got {
		if _, ok := acked.Load(r); !ok {
			t.Fatalf("replayed %.20q, which was never acknowledged", r)
		}
		seen[r] = true
	}
	if len(got) != 800 || len(seen) != 800 {
		t.Fatalf("replayed %d records (%d distinct), want the 800 acknowledged", len(got), len(seen))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if spares, _ := filepath.Glob(filepath.Join(dir, spareGlob)); len(spares) > 0 {
		t.Fatalf("Close left spare files %v", spares)
	}
}

// A reader follows a writer across preallocated segments and never reads
// their zeros as records.
func TestReaderFollowsPreallocatedSegments(t *testing.T) {
	w := openPrealloc(t, t.TempDir(), 4096)
	toPreallocated(t, w)
	r := w.NewReader(Pos{Segment: w.seg})
	defer r.Close()
	var want []string
	for i := range 100 {
		rec := fmt.Sprintf("%03d-%s", i, strings.Repeat("y", 200))
		want = append(want, rec)
		appendAll(t, w, rec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for range want {
		rec, _, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(rec))
	}
	if !slicesEqual(got, want) {
		t.Fatalf("reader got %d records, want the 100 appended in order", len(got))
	}
}

// The queue's bound holds on disk with preallocation: the files in its
// directory never exceed MaxBytes, zeros included.
func TestQueueBoundCountsPreallocation(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQueue(dir, QueueOptions{Options: preallocOptions(256 << 10), MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rec := bytes.Repeat([]byte("q"), 10<<10)
	var preallocated int64
	for i := 0; ; i++ {
		preallocated = max(preallocated, q.w.preallocated())
		if i%10 == 0 {
			time.Sleep(20 * time.Millisecond) // let spares be made
		}
		err := q.Append(rec)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if onDisk := dirSize(t, dir); onDisk > 1<<20+cursorSize {
			t.Fatalf("after %d appends the queue holds %d bytes on disk, over its 1 MiB bound", i+1, onDisk)
		}
	}
	if preallocated == 0 {
		t.Fatal("no preallocation happened: the test checked nothing")
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// A disk too small for a spare: preallocation fails, is counted, and appends
// go on in plain segments.
func TestPreallocationFailureFallsBackToAppends(t *testing.T) {
	disk := smallDisk(t, "2m")
	dir := filepath.Join(disk, "wal")
	w := openPrealloc(t, dir, 4<<20) // larger than the disk
	for deadline := time.Now().Add(30 * time.Second); testutil.ToFloat64(w.m.preallocFailures) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("making a 4 MiB spare on a 2 MiB disk did not fail")
		}
		time.Sleep(10 * time.Millisecond)
	}
	appendAll(t, w, "a")
	if _, err := w.Cut(); err != nil {
		t.Fatal(err)
	}
	appendAll(t, w, "b")
	_, got := openReplay(t, dir, 4<<20)
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("replayed %q, want a,b", got)
	}
}

// BenchmarkConcurrentAppend is the forward queues' load: four appenders of
// 34 KB records (a 2000-sample remote-write request), each waiting for its
// fsync. Compare plain and preallocated segments: go test -bench
// ConcurrentAppend -benchtime 4s -count 3 ./internal/wal (b.N counts records;
// syncs/s is reported).
func BenchmarkConcurrentAppend(b *testing.B) {
	for _, prealloc := range []bool{false, true} {
		b.Run(fmt.Sprintf("preallocate=%v", prealloc), func(b *testing.B) {
			o := testOptions(16 << 20)
			o.Preallocate = prealloc
			w, err := Open(b.TempDir(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			rec := bytes.Repeat([]byte("r"), 34<<10)
			b.SetBytes(int64(len(rec)))
			b.SetParallelism(max(4/runtime.GOMAXPROCS(0), 1)) // four appenders on two cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := w.Append(context.Background(), rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(testutil.ToFloat64(w.m.fsyncs)/b.Elapsed().Seconds(), "syncs/s")
		})
	}
}
