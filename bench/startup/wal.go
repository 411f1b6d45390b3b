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
	"github.com/vispyr/vispyr/internal/metrics/head"
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
//
// With ownHead, the samples go to Vispyr's own head (metrics.head: vispyr)
// in dir/vispyr_head instead, as the store writes them there.
func writeWAL(dir string, walBytes int64, series int, ownHead bool) (written, error) {
	db, walDir, err := openWriter(dir, ownHead)
	if err != nil {
		return written{}, err
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
		if w.walBytes, _ = proc.DiskUsage(walDir, func(string) string { return "" }); w.walBytes >= walBytes {
			break
		}
	}
	if err := db.Close(); err != nil {
		return w, fmt.Errorf("close the head: %w", err)
	}
	w.walBytes, _ = proc.DiskUsage(walDir, func(string) string { return "" })
	w.headChunkBytes, _ = proc.DiskUsage(filepath.Join(filepath.Dir(walDir), "chunks_head"), func(string) string { return "" })
	return w, nil
}

// appendCloser is what writeWAL needs of a TSDB or an own head.
type appendCloser interface {
	storage.Appendable
	Close() error
}

// openWriter opens the TSDB in dir with the options Vispyr opens it with,
// or the own head in dir/vispyr_head, and says where its WAL is.
func openWriter(dir string, ownHead bool) (appendCloser, string, error) {
	if ownHead {
		hd := filepath.Join(dir, "vispyr_head")
		h, err := head.New(head.Options{ChunkDir: filepath.Join(hd, "chunks_head"), WALDir: filepath.Join(hd, "wal")})
		if err != nil {
			return nil, "", fmt.Errorf("open own head: %w", err)
		}
		return h, filepath.Join(hd, "wal"), nil
	}
	opts := tsdb.DefaultOptions()
	opts.WALCompression = compression.Snappy // as internal/metrics opens it
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, opts, nil)
	if err != nil {
		return nil, "", fmt.Errorf("open tsdb: %w", err)
	}
	return db, filepath.Join(dir, "wal"), nil
}
