package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// smallDisk mounts a tmpfs of the given size in a temp dir, so that a test
// can fill it for real.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs for a real full disk")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the full-disk test needs one", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file until the disk is full, leaving about leave bytes.
func fill(t *testing.T, dir string, leave int) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	fi, _ := f.Stat()
	if err := f.Truncate(max(fi.Size()-int64(leave), 0)); err != nil {
		t.Fatal(err)
	}
	return path
}

// A write that hits a full disk fails only its own appends; once space
// returns, appends succeed again without a restart, and every acknowledged
// record replays: the failed write's partial bytes do not hide the records
// written after it.
func TestFullDiskFailsOnlyThatWrite(t *testing.T) {
	disk := smallDisk(t, "2m")
	dir := filepath.Join(disk, "wal")
	w, _ := openReplay(t, dir, 1<<20)
	appendAll(t, w, "before")
	filler := fill(t, disk, 64<<10)

	big := bytes.Repeat([]byte("z"), 256<<10) // larger than the space left: a partial write
	err := w.Append(context.Background(), big)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var acked []string
	for i := range 20 {
		rec := fmt.Sprintf("after-%d", i)
		if err := w.Append(context.Background(), []byte(rec)); err != nil {
			t.Fatalf("append once space returned: %v (the WAL must retry by itself)", err)
		}
		acked = append(acked, rec)
	}
	// kill -9: no Close.
	w2, got := openReplay(t, dir, 1<<20)
	want := append([]string{"before"}, acked...)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("replayed %q, want %q", got, want)
	}
	if corruptions(w2) != 0 {
		t.Fatalf("the failed write left damage behind: %v corruptions", corruptions(w2))
	}
	if n := testutil.ToFloat64(w.m.writeFailures); n != 1 {
		t.Fatalf("vispyr_wal_write_failures_total = %v, want 1", n)
	}
}

// A full queue on a full disk frees space by delivering: committing deletes
// delivered segments, even though no new byte can be written.
func TestQueueDeliversOnFullDisk(t *testing.T) {
	disk := smallDisk(t, "2m")
	q := openTestQueue(t, filepath.Join(disk, "q"), 1<<30, 64<<10)
	rec := bytes.Repeat([]byte("q"), 16<<10)
	n := 0
	for {
		err := q.Append(rec)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append %d: %v, want ENOSPC once the disk is full", n, err)
			}
			break
		}
		n++
	}
	ctx := context.Background()
	var last uint64
	for range n {
		_, pos, err := q.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last = pos
	}
	if err := q.Commit(last); err != nil {
		t.Fatalf("commit on a full disk: %v", err)
	}
	if err := q.Append(rec); err != nil {
		t.Fatalf("append after delivering everything: %v", err)
	}
	if _, recs := q.Size(); recs != 1 {
		t.Fatalf("queue holds %d records, want 1", recs)
	}
}
