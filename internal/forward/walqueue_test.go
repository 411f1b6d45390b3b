package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// A record appended is read back in order; after a restart, what was not
// committed is read again and what was committed is not.
func TestWALQueueCursorSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	q, err := openWALQueue(dir, 1<<20, logger)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := q.Append(fmt.Appendf(nil, "rec-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var fourth uint64
	for i := range 4 {
		rec, pos, err := q.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(rec), fmt.Sprintf("rec-%d", i); got != want {
			t.Fatalf("record %d = %q, want %q", i, got, want)
		}
		fourth = pos
	}
	if err := q.Commit(fourth); err != nil {
		t.Fatal(err)
	}
	if _, n := q.Size(); n != 6 {
		t.Fatalf("queue holds %d records after committing 4 of 10, want 6", n)
	}
	// Read two more without committing, then "crash" (close without commit).
	for range 2 {
		if _, _, err := q.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q, err = openWALQueue(dir, 1<<20, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := 4; i < 10; i++ {
		rec, _, err := q.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(rec), fmt.Sprintf("rec-%d", i); got != want {
			t.Fatalf("after restart record = %q, want %q", got, want)
		}
	}
}

// A queue at its byte bound refuses appends with ErrQueueFull until the
// cursor passes delivered records.
func TestWALQueueFull(t *testing.T) {
	q, err := openWALQueue(t.TempDir(), 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rec := make([]byte, 300<<10)
	for range 3 {
		if err := q.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Append(rec); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("4th append of 300 KiB into a 1 MiB queue: %v, want ErrQueueFull", err)
	}
	_, pos, err := q.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Commit(pos); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(rec); err != nil {
		t.Fatalf("append after delivering one record: %v", err)
	}
}
