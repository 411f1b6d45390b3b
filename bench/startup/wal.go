package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/vispyr/vispyr/bench/internal/proc"
)

type written struct {
	rounds                   int
	walBytes, headChunkBytes int64
}

// writeWAL appends rounds of one sample per series (15 s apart, ending now,
// node_exporter-like values) to a TSDB in dir with the options Vispyr opens
// it with, until its WAL holds walBytes, then closes it (a graceful stop:
// the head stays in the WAL, as when the process stops before its first
// compaction).
func writeWAL(dir string, walBytes int64, series int) (written, error) {
	opts := tsdb.DefaultOptions()
	opts.WALCompression = compression.Snappy // as internal/metrics opens it
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, opts, nil)
	if err != nil {
		return written{}, fmt.Errorf("open tsdb: %w", err)
	}
	lsets := make([]labels.Labels, series)
	for s := range lsets {
		lsets[s] = labels.FromStrings("__name__", "node_metric_"+strconv.Itoa(s%200), "instance",
			fmt.Sprintf("host-%04d:9100", s/1000), "job", "node", "series", strconv.Itoa(s))
	}
	refs := make([]storage.SeriesRef, series)
	values := make([]float64, series)
	rng := rand.New(rand.NewPCG(1, 2))
	// At most 2 h back, so the head is not due for compaction at start-up.
	const step = 15 * time.Second
	maxRounds := int((2 * time.Hour) / step)
	start := time.Now().Add(-2 * time.Hour)
	var w written
	for w.rounds < maxRounds {
		ts := start.Add(time.Duration(w.rounds) * step).UnixMilli()
		for lo := 0; lo < series; lo += 2000 {
			app := db.Appender(context.Background())
			for s := lo; s < min(lo+2000, series); s++ {
				if s%4 != 3 || rng.IntN(100) == 0 {
					values[s] += float64(rng.IntN(1000)) / 100
				}
				if refs[s], err = app.Append(refs[s], lsets[s], ts, values[s]); err != nil {
					return w, fmt.Errorf("append: %w", err)
				}
			}
			if err := app.Commit(); err != nil {
				return w, fmt.Errorf("commit: %w", err)
			}
		}
		w.rounds++
		if w.walBytes, _ = proc.DiskUsage(filepath.Join(dir, "wal"), func(string) string { return "" }); w.walBytes >= walBytes {
			break
		}
	}
	if err := db.Close(); err != nil {
		return w, fmt.Errorf("close tsdb: %w", err)
	}
	w.walBytes, _ = proc.DiskUsage(filepath.Join(dir, "wal"), func(string) string { return "" })
	w.headChunkBytes, _ = proc.DiskUsage(filepath.Join(dir, "chunks_head"), func(string) string { return "" })
	return w, nil
}
