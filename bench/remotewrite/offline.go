package main

import (
	"fmt"
	"github.com/vispyr/vispyr/bench/internal/proc"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/tsdb"
)

// snapshotTSDB opens the stopped Prometheus-format TSDB in dir (Vispyr
// embeds Prometheus's TSDB) and writes its head out as a block, as
// Prometheus's admin snapshot does, returning the block's size. That is
// what the samples will take once the head is compacted.
func snapshotTSDB(dir string) (int64, error) {
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = 0
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, opts, nil)
	if err != nil {
		return 0, fmt.Errorf("open tsdb: %w", err)
	}
	defer db.Close()
	snap, err := os.MkdirTemp(filepath.Dir(dir), "snapshot-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(snap)
	if err := db.Snapshot(snap, true); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	size, _ := proc.DiskUsage(snap, diskGroup)
	return size, nil
}
