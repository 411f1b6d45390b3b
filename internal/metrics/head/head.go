// Package head is Vispyr's own TSDB head: the in-memory part of the metrics
// store that takes appends and answers queries until its samples are
// compacted into blocks. It joins seriesindex (labels to series refs) and
// headchunks (each series' samples) and serves them as a tsdb.BlockReader,
// so Prometheus's block queriers and LeveledCompactor read it as they read
// Prometheus's own head. It is built for bytes per series (issue 16): about
// 67 bytes of index and 40 of encoder state a series, plus its chunk,
// against about 730 bytes in Prometheus's head.
//
// It takes float samples only (histograms are refused) and has no
// out-of-order window; exemplars it logs in its WAL with their samples but
// keeps none (Options.OnExemplar). See DESIGN notes in bench/README.md,
// "memory".
package head

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/vispyr/vispyr/internal/metrics/headchunks"
	"github.com/vispyr/vispyr/internal/metrics/seriesindex"
	"github.com/vispyr/vispyr/internal/wal"
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
	// WALDir is the head's write-ahead log; empty for none (tests). With
	// one, a Commit returns once its samples are written to it (a kill -9
	// loses none, as with the TSDB's WAL), and New replays it.
	WALDir string
	// WALSegmentSize is the size of a WAL segment file; 0 is 128 MiB.
	// TruncateWAL drops whole segments.
	WALSegmentSize int64
	Logger         *slog.Logger
	// Registerer takes the WAL's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// OutOfOrderBlocks marks the blocks CompactOldest writes as the TSDB
	// marks those of its out-of-order head. For a head beside a TSDB's:
	// the TSDB takes its in-order blocks' end, at open, as the time below
	// which its own WAL's samples are in blocks, and drops them.
	OutOfOrderBlocks bool
	// OnExemplar hears, while New replays the WAL, of each exemplar the
	// WAL holds for a series still in the head, with the series' labels,
	// in the order committed: the caller keeps exemplars (the head only
	// logs them, Appender's AppendExemplar), as the TSDB's head refills
	// its exemplar storage from its WAL. Nil skips them.
	OnExemplar func(labels.Labels, exemplar.Exemplar)
}

// Head holds the series and samples not yet in blocks.
type Head struct {
	index      *seriesindex.Index
	samples    *headchunks.Buffer
	disk       *chunks.ChunkDiskMapper
	log        *walLog // nil without a WAL
	logger     *slog.Logger
	chunkRange int64
	blockMeta  *tsdb.BlockMeta // the base of the blocks CompactOldest writes, or nil

	mint, maxt   atomic.Int64 // of the samples taken; mint > maxt while empty
	minValidTime atomic.Int64 // samples before it are refused (set by truncation)

	truncMu  sync.Mutex    // one truncation or compaction at a time
	commitMu sync.RWMutex  // held by commits, and by truncation against them (truncate.go)
	readers  readers       // open index readers, which truncation waits for
	removals atomic.Uint64 // truncations that removed series, for appenders holding refs (settle)
	appended atomic.Uint64 // samples committed, for the store's metrics
}

// New opens the head and replays its WAL. The chunk files a former run
// wrote are removed first: the WAL holds every sample they do (reading
// them back instead of re-encoding is a later step), and their series refs
// would not be checked against the WAL's.
func New(opts Options) (*Head, error) {
	if opts.ChunkRange == 0 {
		opts.ChunkRange = 2 * 3600 * 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.RemoveAll(opts.ChunkDir); err != nil {
		return nil, fmt.Errorf("head: remove old chunk files: %w", err)
	}
	disk, err := chunks.NewChunkDiskMapper(nil, opts.ChunkDir, chunkenc.NewPool(), chunks.DefaultWriteBufferSize, chunks.DefaultWriteQueueSize)
	if err != nil {
		return nil, fmt.Errorf("head: open chunk files: %w", err)
	}
	samples, err := headchunks.New(disk, headchunks.Options{ChunkRange: opts.ChunkRange, OnWriteError: opts.OnWriteError})
	if err != nil {
		return nil, errors.Join(err, disk.Close())
	}
	h := &Head{index: seriesindex.New(), samples: samples, disk: disk, chunkRange: opts.ChunkRange, logger: opts.Logger}
	if opts.OutOfOrderBlocks { // as the TSDB's own compaction of its out-of-order head
		h.blockMeta = &tsdb.BlockMeta{}
		h.blockMeta.Compaction.SetOutOfOrder()
	}
	h.mint.Store(math.MaxInt64)
	h.maxt.Store(math.MinInt64)
	h.minValidTime.Store(math.MinInt64)
	if opts.WALDir != "" {
		if err := h.openWAL(opts); err != nil {
			return nil, errors.Join(err, disk.Close())
		}
	}
	return h, nil
}

func (h *Head) openWAL(opts Options) error {
	// Acknowledged once written, as the TSDB's head acknowledges: with an
	// fsync per commit, four remote-write senders spent most of their time
	// waiting for the disk (bench/README.md, "The own head wired in").
	w, err := wal.Open(opts.WALDir, wal.Options{Name: "metrics_head", SegmentSize: opts.WALSegmentSize,
		Logger: opts.Logger, Registerer: opts.Registerer, AckOnWrite: true})
	if err != nil {
		return fmt.Errorf("head: open WAL: %w", err)
	}
	h.log = &walLog{w: w}
	start := time.Now()
	st, err := h.replay(opts.Logger, opts.OnExemplar)
	if err != nil {
		return errors.Join(err, w.Close())
	}
	opts.Logger.Info("metrics head replayed", "series", st.series, "samples", st.samples,
		"remapped_series", st.remapped, "samples_of_unknown_series", st.unknownRefs,
		"samples_refused", st.refused, "exemplars", st.exemplars, "exemplars_of_unknown_series", st.exemplarsOfUnknownSeries,
		"bad_records", st.badRecords, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Close closes the WAL and the chunk files.
func (h *Head) Close() error {
	var err error
	if h.log != nil {
		err = h.log.w.Close()
	}
	return errors.Join(err, h.disk.Close())
}

// HasSeries reports whether the head holds series lset.
func (h *Head) HasSeries(lset labels.Labels) bool {
	_, ok := h.index.Lookup(lset)
	return ok
}

// SeriesLabels returns series ref's labels, empty if the head does not
// hold it.
func (h *Head) SeriesLabels(ref uint32) labels.Labels { return h.index.Labels(ref) }

// SamplesAppended is the number of samples commits have added to the head
// (what Prometheus's head counts in prometheus_tsdb_head_samples_appended_total).
func (h *Head) SamplesAppended() uint64 { return h.appended.Load() }

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
