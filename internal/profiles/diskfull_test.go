package profiles

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestIngestResumesAfterFullDisk: a profile append on a full disk fails,
// and once space returns appends succeed again without a restart (the WAL
// used to keep the write error until the process restarted), and every
// acknowledged profile survives a reopen.
func TestIngestResumesAfterFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs for a real full disk")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the full-disk test needs one", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	s := mustOpen(t, Config{}, dir)
	now := time.Now()
	batch := func(i int) *Batch {
		return testBatch("api", now.Add(time.Duration(i)*time.Second), map[string]int64{"main;work": 10}, 0)
	}
	if err := s.Append(context.Background(), batch(0)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	f.Close()
	// The WAL segment's last page may still take a few small appends.
	acked, i := 1, 1
	for ; ; i++ {
		err := s.Append(context.Background(), batch(i))
		if err == nil {
			acked++
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) || i > 1000 {
			t.Fatalf("append %d on a full disk: %v, want ENOSPC", i, err)
		}
		break
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		i++
		if err := s.Append(context.Background(), batch(i)); err != nil {
			t.Fatalf("append once space returned: %v (ingest must resume without a restart)", err)
		}
		acked++
	}
	s.Close()
	s2 := mustOpen(t, Config{}, dir)
	defer s2.Close()
	if got := total(t, s2, "api"); got != int64(10*acked) {
		t.Fatalf("after reopen total = %d, want %d (%d acknowledged appends of 10)", got, 10*acked, acked)
	}
}
