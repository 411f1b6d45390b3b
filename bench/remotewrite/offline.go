package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/tsdb"

	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/internal/metrics"
)

// snapshotTSDB measures what the stopped store in dir (data/metrics) will
// take once compacted: the Prometheus-format TSDB (Vispyr embeds
// Prometheus's TSDB) is opened offline and snapshotted with its head, as
// Prometheus's admin snapshot does, and Vispyr's own head (metrics.head:
// vispyr, which holds the float samples and whose WAL that TSDB does not
// read) is written beside it into blocks as Vispyr's start-up does with
// one it replays in the background. It returns the size of those blocks.
func snapshotTSDB(dir string) (int64, error) {
	snap, err := os.MkdirTemp(filepath.Dir(dir), "snapshot-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(snap)
	if err := snapshotWithHead(dir, snap); err != nil {
		return 0, err
	}
	if _, err := metrics.WriteOwnHeadBlocks(context.Background(), dir, snap, slog.New(slog.DiscardHandler)); err != nil {
		return 0, fmt.Errorf("write the own head into blocks: %w", err)
	}
	size, _ := proc.DiskUsage(snap, diskGroup)
	return size, nil
}

// snapshotWithHead writes the TSDB's blocks and its head, as a block, into snap.
func snapshotWithHead(dir, snap string) error {
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = 0
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, opts, nil)
	if err != nil {
		return fmt.Errorf("open tsdb: %w", err)
	}
	if err := db.Snapshot(snap, true); err != nil {
		db.Close()
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close tsdb: %w", err)
	}
	return nil
}
