// Package head is Vispyr's own TSDB head: the in-memory part of the metrics
// store that takes appends and answers queries until its samples are
// compacted into blocks. It joins seriesindex (labels to series refs) and
// headchunks (each series' samples) and serves them as a tsdb.BlockReader,
// so Prometheus's block queriers and LeveledCompactor read it as they read
// Prometheus's own head. It is built for bytes per series (issue 16): about
// 67 bytes of index and 40 of encoder state a series, plus its chunk,
// against about 730 bytes in Prometheus's head.
//
// This is step 3 of the own head and not wired into the store yet: float
// samples only (histograms and exemplars are refused), no WAL and no
// out-of-order window. See DESIGN notes in bench/README.md, "memory".
package head

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/vispyr/vispyr/internal/metrics/headchunks"
	"github.com/vispyr/vispyr/internal/metrics/seriesindex"
)

// Options configure a Head.
type Options struct {
	// ChunkDir is where closed chunks are written (Prometheus's
	// chunks_head directory).
	ChunkDir string
	// ChunkRange is the block range in milliseconds; 0 is two hours.
	ChunkRange int64
	// OnWriteError hears of closed chunks that could not be written.
	OnWriteError func(error)
}

// Head holds the series and samples not yet in blocks.
type Head struct {
	index      *seriesindex.Index
	samples    *headchunks.Buffer
	disk       *chunks.ChunkDiskMapper
	chunkRange int64

	mint, maxt   atomic.Int64 // of the samples taken; mint > maxt while empty
	minValidTime atomic.Int64 // samples before it are refused (set by truncation)
}

// New opens an empty head. Closed chunks already in opts.ChunkDir are not
// read back yet (a later step, with the WAL).
func New(opts Options) (*Head, error) {
	if opts.ChunkRange == 0 {
		opts.ChunkRange = 2 * 3600 * 1000
	}
	disk, err := chunks.NewChunkDiskMapper(nil, opts.ChunkDir, chunkenc.NewPool(), chunks.DefaultWriteBufferSize, chunks.DefaultWriteQueueSize)
	if err != nil {
		return nil, fmt.Errorf("head: open chunk files: %w", err)
	}
	samples, err := headchunks.New(disk, headchunks.Options{ChunkRange: opts.ChunkRange, OnWriteError: opts.OnWriteError})
	if err != nil {
		return nil, errors.Join(err, disk.Close())
	}
	h := &Head{index: seriesindex.New(), samples: samples, disk: disk, chunkRange: opts.ChunkRange}
	h.mint.Store(math.MaxInt64)
	h.maxt.Store(math.MinInt64)
	h.minValidTime.Store(math.MinInt64)
	return h, nil
}

// Close closes the chunk files.
func (h *Head) Close() error { return h.disk.Close() }

// NumSeries is the number of series in the head.
func (h *Head) NumSeries() int { return h.index.Len() }

// MinTime and MaxTime bound the samples taken; MinTime > MaxTime while
// the head is empty.
func (h *Head) MinTime() int64 { return h.mint.Load() }

// MaxTime is the newest sample's timestamp.
func (h *Head) MaxTime() int64 { return h.maxt.Load() }

// widen stretches the head's time range to cover [mint, maxt].
func (h *Head) widen(mint, maxt int64) {
	for old := h.mint.Load(); mint < old && !h.mint.CompareAndSwap(old, mint); old = h.mint.Load() {
	}
	for old := h.maxt.Load(); maxt > old && !h.maxt.CompareAndSwap(old, maxt); old = h.maxt.Load() {
	}
}

// appendableMinValidTime is the oldest timestamp an append may have: as in
// Prometheus's head, not before what truncation dropped nor more than half
// a chunk range before the newest sample.
func (h *Head) appendableMinValidTime() int64 {
	if maxt := h.maxt.Load(); maxt != math.MinInt64 {
		return max(h.minValidTime.Load(), maxt-h.chunkRange/2)
	}
	return h.minValidTime.Load()
}

// Compact gives back memory of chunk slots series have outgrown; run it now
// and then (the store will, with its other housekeeping).
func (h *Head) Compact() int { return h.samples.Compact() }

var _ tsdb.BlockReader = (*RangeHead)(nil)
