package diskguard

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// Under the reserve every write is refused with pipeline.ErrDiskFull naming
// the store and the free bytes; once free space is back over it (plus the
// margin), writes pass again and OnChange reports each flip.
func TestRefusesUnderReserveAndRecovers(t *testing.T) {
	var changes []string
	g, err := New(Options{Dir: t.TempDir(), Reserve: 1 << 20, OnChange: func(low bool, reason string) {
		changes = append(changes, reason)
	}}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check("metrics"); err != nil {
		t.Fatalf("with %d bytes free: %v", g.Free(), err)
	}
	g.set(512<<10, false)
	err = g.Check("metrics")
	if !errors.Is(err, pipeline.ErrDiskFull) || !pipeline.IsDiskFull(err) ||
		!strings.Contains(err.Error(), "metrics store") || !strings.Contains(err.Error(), "524288 bytes") {
		t.Fatalf("under the reserve: %v", err)
	}
	// Just over the reserve is not enough to resume: no flapping.
	g.set(1<<20+1, false)
	if g.Check("trace") == nil {
		t.Fatal("resumed within the margin")
	}
	g.set(2<<20, false)
	if err := g.Check("trace"); err != nil {
		t.Fatalf("space returned: %v", err)
	}
	if len(changes) != 3 || changes[0] != "" || !strings.Contains(changes[1], "disk almost full") || changes[2] != "" {
		t.Errorf("OnChange reasons: %q", changes)
	}
}

func TestDefaultReserve(t *testing.T) {
	for _, c := range []struct{ total, want int64 }{
		{100 << 20, 50 << 20}, // tiny: at most half
		{1 << 30, 64 << 20},   // floor
		{10 << 30, 512 << 20}, // 5%
		{100 << 30, 1 << 30},  // cap
	} {
		if got := DefaultReserve(c.total); got != c.want {
			t.Errorf("DefaultReserve(%d) = %d, want %d", c.total, got, c.want)
		}
	}
}

// The ballast is taken while there is room and given back when the disk is
// full, so that a store replaying its WAL finds space.
func TestBallastReleasedWhenFull(t *testing.T) {
	dir := t.TempDir()
	g, err := New(Options{Dir: dir, Reserve: 4 << 20}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, BallastName)
	if fi, err := os.Stat(b); err != nil || fi.Size() != 1<<20 {
		t.Fatalf("ballast of a quarter of the reserve not taken: %v", err)
	}
	g.tendBallast(0)
	if _, err := os.Stat(b); !os.IsNotExist(err) {
		t.Fatalf("ballast kept on a full disk: %v", err)
	}
	g.Update()
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("ballast not taken again once there is room: %v", err)
	}
}

func TestUsedBytesPerStore(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"metrics/wal/00000000": 3000, "metrics/chunks_head/000001": 1000, "traces/blocks/b1/data": 500} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Dir: dir, Reserve: 1}, slog.New(slog.DiscardHandler), reg); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP vispyr_disk_used_bytes Bytes of the files under each store's directory in the data directory, by store.
# TYPE vispyr_disk_used_bytes gauge
vispyr_disk_used_bytes{store="metrics"} 4000
vispyr_disk_used_bytes{store="traces"} 500
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vispyr_disk_used_bytes"); err != nil {
		t.Fatal(err)
	}
}
