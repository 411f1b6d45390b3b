package head

import (
	"fmt"
	"math"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/tombstones"

	"github.com/vispyr/vispyr/internal/metrics/seriesindex"
)

// RangeHead is the head's samples in [mint, maxt] as a block, for
// tsdb.NewBlockQuerier and for compaction into a block
// (LeveledCompactor.Write), as Prometheus's tsdb.RangeHead is for its head.
type RangeHead struct {
	head       *Head
	mint, maxt int64
}

// Range returns the head's samples in [mint, maxt] as a block.
func (h *Head) Range(mint, maxt int64) *RangeHead { return &RangeHead{head: h, mint: mint, maxt: maxt} }

// Index lists the head's series with their chunks in the range.
func (r *RangeHead) Index() (tsdb.IndexReader, error) {
	ir := &indexReader{Reader: r.head.index.Reader(), head: r.head, mint: r.mint, maxt: r.maxt}
	r.head.readers.add(ir, r.mint) // until Close, truncation keeps what it reads
	// A truncation that started before it was added, and does not wait for
	// it, raised MinTime first: the reader lists no chunk before it.
	ir.mint = max(r.mint, r.head.MinTime())
	return ir, nil
}

// Chunks reads the chunks Index lists.
func (r *RangeHead) Chunks() (tsdb.ChunkReader, error) { return chunkReader{r.head}, nil }

// Tombstones is empty: deletion is a later step.
func (r *RangeHead) Tombstones() (tombstones.Reader, error) {
	return tombstones.NewMemTombstones(), nil
}

var rangeHeadULID = ulid.MustParse("0000000000XXXXXXXXXXXHEAD0")

// Meta is the range as a block's meta; as Prometheus's RangeHead's, its
// MaxTime is inclusive.
func (r *RangeHead) Meta() tsdb.BlockMeta {
	return tsdb.BlockMeta{
		ULID: rangeHeadULID, MinTime: r.mint, MaxTime: r.maxt,
		Stats: tsdb.BlockStats{NumSeries: uint64(r.head.index.Len())},
	}
}

// Size is 0: a head has no size on disk that retention counts.
func (r *RangeHead) Size() int64 { return 0 }

// MinTime, MaxTime and BlockMaxTime are what LeveledCompactor.Write asks
// of a head it writes into a block: the range, and its exclusive end.
func (r *RangeHead) MinTime() int64 { return r.mint }

// MaxTime is the range's inclusive end.
func (r *RangeHead) MaxTime() int64 { return r.maxt }

// BlockMaxTime is the end of the block the range makes, exclusive.
func (r *RangeHead) BlockMaxTime() int64 { return r.maxt + 1 }

func (r *RangeHead) String() string {
	return fmt.Sprintf("vispyr head range (mint: %d, maxt: %d)", r.mint, r.maxt)
}

type indexReader struct {
	*seriesindex.Reader
	head       *Head
	mint, maxt int64
}

// Series gives series ref's labels and its chunks in the range; with chks
// nil only the labels, as Prometheus's head reader does.
func (ir *indexReader) Series(ref storage.SeriesRef, builder *labels.ScratchBuilder, chks *[]chunks.Meta) error {
	if ref > math.MaxUint32 || !ir.head.index.AppendLabels(builder, uint32(ref)) {
		return storage.ErrNotFound // removed since the postings were read
	}
	if chks == nil {
		return nil
	}
	*chks = ir.head.samples.Chunks(uint32(ref), ir.mint, ir.maxt, (*chks)[:0])
	return nil
}

type chunkReader struct{ head *Head }

func (cr chunkReader) ChunkOrIterable(m chunks.Meta) (chunkenc.Chunk, chunkenc.Iterable, error) {
	c, err := cr.head.samples.Chunk(m)
	return c, nil, err
}

func (chunkReader) Close() error { return nil }
