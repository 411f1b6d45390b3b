package wal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testOptions(segmentSize int64) Options {
	return Options{Name: "test", SegmentSize: segmentSize, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()}
}

// openReplay opens the WAL in dir and returns it with the records earlier
// runs left.
func openReplay(t *testing.T, dir string, segmentSize int64) (*WAL, []string) {
	t.Helper()
	w, err := Open(dir, testOptions(segmentSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	var got []string
	if err := w.Replay(func(_ int, rec []byte) error { got = append(got, string(rec)); return nil }); err != nil {
		t.Fatal(err)
	}
	return w, got
}

func appendAll(t *testing.T, w *WAL, recs ...string) {
	t.Helper()
	for _, r := range recs {
		if err := w.Append(context.Background(), []byte(r)); err != nil {
			t.Fatalf("append %.20q: %v", r, err)
		}
	}
}

func corruptions(w *WAL) float64 { return testutil.ToFloat64(w.m.corruptions) }

// Every record acknowledged by concurrent appenders is replayed by the next
// process, even when the first one never closed the WAL (kill -9).
func TestConcurrentAppendsSurviveCrash(t *testing.T) {
	dir := t.TempDir()
	w, _ := openReplay(t, dir, 1<<20)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if err := w.Append(context.Background(), fmt.Appendf(nil, "g%d-r%d-%s", g, i, strings.Repeat("x", 2000))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if fsyncs := testutil.ToFloat64(w.m.fsyncs); fsyncs >= 1600 {
		t.Errorf("1600 concurrent appends took %v fsyncs: no group commit", fsyncs)
	}
	w2, got := openReplay(t, dir, 1<<20)
	seen := map[string]bool{}
	for _, r := range got {
		seen[r[:strings.IndexByte(r, 'x')]] = true
	}
	if len(got) != 1600 || len(seen) != 1600 {
		t.Fatalf("replayed %d records (%d distinct), want 1600", len(got), len(seen))
	}
	segs, _ := w2.Segments()
	if len(segs) < 4 {
		t.Fatalf("3.2 MB of records in 1 MB segments made only %d segments", len(segs))
	}
}

// Replay returns only what earlier runs wrote, in order, and Cut and
// TruncateBefore drop whole segments.
func TestCutAndTruncate(t *testing.T) {
	dir := t.TempDir()
	w, _ := openReplay(t, dir, 1<<20)
	appendAll(t, w, "a", "b")
	seg, err := w.Cut()
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, w, "c")
	if got, want := w.Size(), int64(3*(headerSize+1)); got != want {
		t.Fatalf("Size = %d, want %d", got, want)
	}
	if err := w.TruncateBefore(seg); err != nil {
		t.Fatal(err)
	}
	if got, want := w.Size(), int64(headerSize+1); got != want {
		t.Fatalf("Size after truncate = %d, want %d", got, want)
	}
	w.Close()
	w2, got := openReplay(t, dir, 1<<20)
	if strings.Join(got, ",") != "c" {
		t.Fatalf("replayed %q after truncating the segment of a and b, want [c]", got)
	}
	appendAll(t, w2, "d")
	var again []string
	_ = w2.Replay(func(_ int, rec []byte) error { again = append(again, string(rec)); return nil })
	if strings.Join(again, ",") != "c" {
		t.Fatalf("a second Replay read %q: records of this run must not be replayed", again)
	}
}

// A crash in the middle of a write leaves a torn record: replay cuts it off,
// counts and keeps every record before it, and records appended after the
// restart replay too.
func TestTornTailIsRepaired(t *testing.T) {
	dir := t.TempDir()
	w, _ := openReplay(t, dir, 1<<20)
	appendAll(t, w, "r0", "r1", "r2")
	w.Close()
	tear(t, filepath.Join(dir, segmentName(1)), AppendRecord(nil, []byte("never acknowledged"))[:10])

	w2, got := openReplay(t, dir, 1<<20)
	if strings.Join(got, ",") != "r0,r1,r2" {
		t.Fatalf("replayed %q, want r0,r1,r2", got)
	}
	if corruptions(w2) != 1 {
		t.Fatalf("vispyr_wal_corruptions_total = %v, want 1", corruptions(w2))
	}
	appendAll(t, w2, "r3")
	w2.Close()
	w3, got := openReplay(t, dir, 1<<20)
	if strings.Join(got, ",") != "r0,r1,r2,r3" {
		t.Fatalf("second restart replayed %q, want r0..r3", got)
	}
	if corruptions(w3) != 0 {
		t.Fatalf("the repaired segment was counted again: %v", corruptions(w3))
	}
}

// A segment corrupted in its middle loses the rest of that segment only:
// later segments are delivered.
func TestCorruptSegmentSkipsToNext(t *testing.T) {
	dir := t.TempDir()
	w, _ := openReplay(t, dir, 1<<20)
	appendAll(t, w, "s1-a", "s1-b", "s1-c")
	if _, err := w.Cut(); err != nil {
		t.Fatal(err)
	}
	appendAll(t, w, "s2-a")
	w.Close()
	flipByte(t, filepath.Join(dir, segmentName(1)), headerSize+4+headerSize+1) // inside s1-b

	w2, got := openReplay(t, dir, 1<<20)
	if strings.Join(got, ",") != "s1-a,s2-a" {
		t.Fatalf("replayed %q, want s1-a,s2-a", got)
	}
	if corruptions(w2) != 1 {
		t.Fatalf("vispyr_wal_corruptions_total = %v, want 1", corruptions(w2))
	}
}

// A run of zero bytes to the end of a segment (the unwritten rest of a
// preallocated one, or what an OS crash leaves of an unacknowledged write)
// ends its records: no empty records, no damage, and it is cut off.
func TestZeroFilledTailEndsRecords(t *testing.T) {
	dir := t.TempDir()
	w, _ := openReplay(t, dir, 1<<20)
	appendAll(t, w, "x")
	w.Close()
	tear(t, filepath.Join(dir, segmentName(1)), make([]byte, 4096))
	w2, got := openReplay(t, dir, 1<<20)
	if strings.Join(got, ",") != "x" || corruptions(w2) != 0 {
		t.Fatalf("replayed %q with %v corruptions, want [x] and none", got, corruptions(w2))
	}
	if segs, _ := w2.Segments(); segs[0].Size != headerSize+1 {
		t.Fatalf("segment 1 is %d bytes after repair, want %d", segs[0].Size, headerSize+1)
	}
}

// Segments written by the profile store's earlier WAL (NNNNNNNN.wal, same
// framing) are replayed.
func TestReplaysLegacySegmentNames(t *testing.T) {
	dir := t.TempDir()
	var seg []byte
	for _, r := range []string{"old-1", "old-2"} {
		seg = AppendRecord(seg, []byte(r))
	}
	if err := os.WriteFile(filepath.Join(dir, "00000007.wal"), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	w, got := openReplay(t, dir, 1<<20)
	if strings.Join(got, ",") != "old-1,old-2" {
		t.Fatalf("replayed %q, want old-1,old-2", got)
	}
	if seg, err := w.Cut(); err != nil || seg != 9 {
		t.Fatalf("Cut after legacy segment 7 = %d, %v; want 9", seg, err)
	}
}

// A reader follows the segment being written and sees records as they become
// durable, across segment boundaries.
func TestReaderFollowsWriter(t *testing.T) {
	w, _ := openReplay(t, t.TempDir(), 4096)
	r := w.NewReader(Pos{})
	defer r.Close()
	ctx := context.Background()
	done := make(chan []string)
	go func() {
		var got []string
		for range 100 {
			rec, _, err := r.Next(ctx)
			if err != nil {
				t.Error(err)
				break
			}
			got = append(got, string(rec))
		}
		done <- got
	}()
	var want []string
	for i := range 100 {
		rec := fmt.Sprintf("%03d-%s", i, strings.Repeat("y", 200))
		want = append(want, rec)
		appendAll(t, w, rec)
	}
	if got := <-done; !slicesEqual(got, want) {
		t.Fatalf("reader got %d records, want the 100 appended in order", len(got))
	}
	if segs, _ := w.Segments(); len(segs) < 5 {
		t.Fatalf("24 KB in 4 KB segments made %d segments", len(segs))
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func tear(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, []byte("hello")))
	f.Add(AppendRecord(AppendRecord(nil, []byte("a")), bytes.Repeat([]byte("b"), 300)))
	f.Add(AppendRecord(nil, []byte("torn"))[:9])
	f.Add(make([]byte, 16))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		off := 0
		for off < len(b) {
			payload, n, err := DecodeRecord(b[off:])
			if err != nil {
				return
			}
			if n != headerSize+len(payload) || len(payload) == 0 {
				t.Fatalf("decoded %d payload bytes in %d", len(payload), n)
			}
			if !bytes.Equal(AppendRecord(nil, payload), b[off:off+n]) {
				t.Fatal("a decoded record does not re-encode to its bytes")
			}
			off += n
		}
	})
}

// FuzzReplay writes arbitrary bytes as a segment: Open and Replay never fail
// or panic on them, and what is left after repair replays cleanly.
func FuzzReplay(f *testing.F) {
	f.Add(AppendRecord(AppendRecord(nil, []byte("one")), []byte("two")))
	f.Add(append(AppendRecord(nil, []byte("one")), 1, 2, 3))
	f.Add(make([]byte, 40))
	f.Add(append(AppendRecord(nil, []byte("one")), make([]byte, 3*readAhead/2)...))
	f.Add(append(append(AppendRecord(nil, []byte("one")), make([]byte, 12)...), 7))
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		w, first := openReplay(t, dir, 1<<20)
		w.Close()
		w2, second := openReplay(t, dir, 1<<20)
		if !slicesEqual(first, second) || corruptions(w2) != 0 {
			t.Fatalf("replay after repair read %d records with %v corruptions, first read %d", len(second), corruptions(w2), len(first))
		}
	})
}

// A failed sync refuses its commit and every later one of the segment (they
// may sit behind bytes that never reached the disk); writing goes on in a new
// segment, and the next process replays exactly what was acknowledged.
func TestFailedSyncAcknowledgesNothingAfterIt(t *testing.T) {
	dir := t.TempDir()
	w, _ := openReplay(t, dir, 1<<20)
	appendAll(t, w, "before")

	var mu sync.Mutex
	fail := true
	real := fdatasync
	fdatasync = func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return fmt.Errorf("injected EIO")
		}
		return real(f)
	}
	defer func() { fdatasync = real }()
	if err := w.Append(context.Background(), []byte("lost")); err == nil {
		t.Fatal("append acknowledged although its sync failed")
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	var wg sync.WaitGroup
	var acked sync.Map
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				rec := fmt.Sprintf("after-%d-%d", g, i)
				if w.Append(context.Background(), []byte(rec)) == nil {
					acked.Store(rec, true)
				}
			}
		})
	}
	wg.Wait()
	n := 0
	acked.Range(func(any, any) bool { n++; return true })
	if n != 200 {
		t.Fatalf("%d of 200 appends after the failed sync acknowledged, want all (in a new segment)", n)
	}
	segs, _ := w.Segments()
	if len(segs) < 2 {
		t.Fatalf("%d segments: writing did not move on from the failed one", len(segs))
	}
	w.Close()
	_, got := openReplay(t, dir, 1<<20)
	if len(got) != 201 || got[0] != "before" {
		t.Fatalf("replayed %d records starting %q, want 201: before and the acknowledged ones", len(got), got[0])
	}
	for _, r := range got[1:] {
		if _, ok := acked.Load(r); !ok {
			t.Fatalf("replayed %q, which was never acknowledged", r)
		}
	}
}

// With AckOnWrite an append is answered without an fsync, and what was
// answered is replayed after the process dies (its writes are in the page
// cache); a segment is synced when the next one starts and on Close.
func TestAckOnWriteSyncsOnlySegments(t *testing.T) {
	var syncs atomic.Int64
	real := fdatasync
	fdatasync = func(f *os.File) error { syncs.Add(1); return real(f) }
	t.Cleanup(func() { fdatasync = real })

	dir := t.TempDir()
	opts := testOptions(1 << 20)
	opts.AckOnWrite = true
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				if err := w.Append(context.Background(), fmt.Appendf(nil, "g%d-r%d", g, i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := syncs.Load(); n != 0 {
		t.Fatalf("400 appends acknowledged on write took %d fsyncs, want none", n)
	}
	_, got := openReplay(t, dir, 1<<20) // w still open: kill -9
	if len(got) != 400 {
		t.Fatalf("replayed %d records after a kill, want the 400 acknowledged", len(got))
	}
	before := syncs.Load()
	if _, err := w.Cut(); err != nil {
		t.Fatal(err)
	}
	w.segSyncs.Wait() // the finished segment syncs behind the appends
	if n := syncs.Load() - before; n != 1 {
		t.Fatalf("Cut synced the finished segment %d times, want once", n)
	}
	appendAll(t, w, "last")
	before = syncs.Load()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load() - before; n != 1 {
		t.Fatalf("Close synced the segment %d times, want once", n)
	}
}
