package head

import (
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
)

// BenchmarkReplay times a start-up: a head filled with -series series of
// nodeshape's load, -rounds samples each, is closed, and opening it again
// (reading its WAL back) is timed: for this head, which re-encodes its
// chunks from the WAL, and in the same run for Prometheus's head with a
// snappy WAL as Vispyr runs it (full chunks memory-mapped from its chunk
// files, the rest from the WAL). It reports the seconds to open, the
// samples read back per second and the WAL's bytes a sample. Run it with
// -benchtime 1x.
func BenchmarkReplay(b *testing.B) {
	b.Run("own-head", func(b *testing.B) {
		dir := b.TempDir()
		opts := Options{ChunkDir: filepath.Join(dir, "chunks"), WALDir: filepath.Join(dir, "wal"), Logger: slog.New(slog.DiscardHandler)}
		h, err := New(opts)
		if err != nil {
			b.Fatal(err)
		}
		fill(b, h)
		if err := h.Close(); err != nil {
			b.Fatal(err)
		}
		timeOpen(b, filepath.Join(dir, "wal"), func() func() error {
			h, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			return h.Close
		})
	})
	b.Run("prometheus-head", func(b *testing.B) {
		dir := b.TempDir()
		open := func() *tsdb.Head {
			w, err := wlog.New(nil, nil, filepath.Join(dir, "wal"), compression.Snappy)
			if err != nil {
				b.Fatal(err)
			}
			opts := tsdb.DefaultHeadOptions()
			opts.ChunkDirRoot = dir
			opts.IsolationDisabled = true
			h, err := tsdb.NewHead(nil, nil, w, nil, opts, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := h.Init(math.MinInt64); err != nil {
				b.Fatal(err)
			}
			return h
		}
		h := open()
		fill(b, h)
		if err := h.Close(); err != nil {
			b.Fatal(err)
		}
		timeOpen(b, filepath.Join(dir, "wal"), func() func() error { return open().Close })
	})
}

// timeOpen opens b.N times and reports the mean time to open.
func timeOpen(b *testing.B, walDir string, open func() (close func() error)) {
	samples := float64(*benchSeries * *benchRounds)
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		closeHead := open()
		took += time.Since(start)
		if err := closeHead(); err != nil {
			b.Fatal(err)
		}
	}
	per := took.Seconds() / float64(b.N)
	b.ReportMetric(per, "s/open")
	b.ReportMetric(samples/per, "samples/s")
	b.ReportMetric(float64(dirBytes(b, walDir))/samples, "WAL-B/sample")
}

func dirBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
