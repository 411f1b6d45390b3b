package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openTestQueue(t *testing.T, dir string, maxBytes, segmentSize int64) *Queue {
	t.Helper()
	o := QueueOptions{Options: testOptions(segmentSize), MaxBytes: maxBytes}
	q, err := OpenQueue(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func next(t *testing.T, q *Queue) (string, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, pos, err := q.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(rec), pos
}

// Records are read back in order; after a restart what was not committed is
// read again and what was committed is not; delivered segments are deleted.
func TestQueueCursorSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	q := openTestQueue(t, dir, 1<<20, 300)
	for i := range 10 {
		if err := q.Append(fmt.Appendf(nil, "rec-%d-%080d", i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	var fourth uint64
	for i := range 4 {
		rec, pos := next(t, q)
		if want := fmt.Sprintf("rec-%d-%080d", i, 0); rec != want {
			t.Fatalf("record %d = %q, want %q", i, rec, want)
		}
		fourth = pos
	}
	if err := q.Commit(fourth); err != nil {
		t.Fatal(err)
	}
	if _, n := q.Size(); n != 6 {
		t.Fatalf("queue holds %d records after committing 4 of 10, want 6", n)
	}
	if segs, _ := q.w.Segments(); segs[0].Index == 1 {
		t.Fatalf("segment 1 (records 0-2) is delivered but still on disk: %+v", segs)
	}
	next(t, q) // read, not committed: a crash now must deliver it again
	next(t, q)
	q.Close() // persists nothing more than kill -9 would leave
	q2 := openTestQueue(t, dir, 1<<20, 300)
	if _, n := q2.Size(); n != 6 {
		t.Fatalf("reopened queue holds %d records, want 6", n)
	}
	for i := 4; i < 10; i++ {
		if rec, _ := next(t, q2); rec != fmt.Sprintf("rec-%d-%080d", i, 0) {
			t.Fatalf("after restart record = %q, want rec-%d", rec, i)
		}
	}
}

// A queue at its byte bound refuses appends with ErrFull until delivery
// frees space, and reports full until a tenth of the bound is free.
func TestQueueFull(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), 1<<20, 0)
	rec := make([]byte, 300<<10)
	for range 3 {
		if err := q.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Append(rec); !errors.Is(err, ErrFull) {
		t.Fatalf("4th append of 300 KiB into a 1 MiB queue: %v, want ErrFull", err)
	}
	if !q.Full() {
		t.Fatal("Full() = false after a refused append")
	}
	_, pos := next(t, q)
	if err := q.Commit(pos); err != nil {
		t.Fatal(err)
	}
	if q.Full() {
		t.Fatal("Full() = true with 600 KiB of 1 MiB used")
	}
	if err := q.Append(rec); err != nil {
		t.Fatalf("append after delivering one record: %v", err)
	}
}

// A queue segment corrupted by a crash: the damaged records are counted and
// skipped, the rest is delivered.
func TestQueueDeliversPastCorruptSegment(t *testing.T) {
	dir := t.TempDir()
	q := openTestQueue(t, dir, 1<<20, 100)
	for i := range 6 {
		if err := q.Append(fmt.Appendf(nil, "r%d-%050d", i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	segs, err := filepath.Glob(filepath.Join(dir, "0*"))
	if err != nil || len(segs) < 3 {
		t.Fatalf("6 records of 60 bytes in 100-byte segments made segments %v (%v)", segs, err)
	}
	flipByte(t, segs[0], headerSize+2) // the first record

	q2 := openTestQueue(t, dir, 1<<20, 100)
	if got := corruptions(q2.w); got != 1 {
		t.Fatalf("vispyr_wal_corruptions_total = %v, want 1", got)
	}
	var got []string
	for {
		if _, n := q2.Size(); int64(len(got)) == n {
			break
		}
		rec, _ := next(t, q2)
		got = append(got, rec[:2])
	}
	if fmt.Sprint(got) != "[r1 r2 r3 r4 r5]" {
		t.Fatalf("delivered %v after corrupting the first segment, want the later records", got)
	}
	if _, err := os.Stat(filepath.Join(dir, cursorFile)); err != nil {
		t.Fatal(err)
	}
}

// Next waits for the next append and returns when ctx ends.
func TestQueueNextWaits(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), 1<<20, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := q.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty queue: %v, want the deadline", err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = q.Append([]byte("late"))
	}()
	if rec, _ := next(t, q); rec != "late" {
		t.Fatalf("Next = %q, want late", rec)
	}
}

// A commit that drains the queue starts a new segment and deletes the old
// one. An append written to the old segment but not yet synced when the
// commit looked must stop that: its record is acknowledged once the sync
// ends, and deleting its segment would lose it. Appends race commits here
// until every acknowledged record has been read once, in order.
func TestQueueDrainedCutKeepsRecordsBeingSynced(t *testing.T) {
	q := openTestQueue(t, t.TempDir(), 64<<20, 4096) // drained cuts from 1 KiB on
	const n = 3000
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := q.Append(fmt.Appendf(nil, "record-%05d-%0200d", i, i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rec, pos, err := q.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("record %d of %d acknowledged ones never came: %v", i, n, err)
		}
		if want := fmt.Sprintf("record-%05d-", i); string(rec[:len(want)]) != want {
			t.Fatalf("read %.12q, want %q: a record was lost", rec, want)
		}
		if err := q.Commit(pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
