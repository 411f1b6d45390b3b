package block

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/vispyr/vispyr/internal/traces/backend"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// RowsPerGroup sizes Parquet row groups: small enough that a point read touches
// little, large enough that per-group metadata stays negligible.
const RowsPerGroup = 20000

// bloomFPR is the trace-ID bloom filter's false-positive rate: 1% costs ~1.2 bytes
// per trace and saves an index lookup in 99 of 100 blocks that lack the trace.
const bloomFPR = 0.01

// pageCodec compresses every column's pages, at zstd's fastest level: at the
// default level compression took about a third of a head cut's CPU; the fastest
// level cuts the cut's CPU by about 8% for 1.5% more bytes (BenchmarkBytesPerSpan).
// Readers take the codec from each column chunk, so blocks of either level read alike.
var pageCodec = zstd.Codec{Level: zstd.SpeedFastest}

// writerOptions configure the Parquet encoder of every block. No page gets
// min/max statistics in its header or bounds in the column index: nothing
// reads them (lookups go by the block's own trace index and tag postings), and
// finding them compared every value of every page twice, resource blobs
// included: a tenth of a cut.
var writerOptions = func() []parquet.WriterOption {
	opts := []parquet.WriterOption{
		parquet.MaxRowsPerRowGroup(RowsPerGroup),
		parquet.PageBufferSize(16 << 10),
		parquet.Compression(&pageCodec),
		parquet.DataPageStatistics(false),
	}
	for _, path := range parquet.SchemaOf(spanrow.Span{}).Columns() {
		opts = append(opts, parquet.SkipPageBounds(path...))
	}
	return opts
}()

// Dir is the object prefix of a block.
func Dir(tenant, id string) string { return tenant + "/" + id + "/" }

// Writer builds a block one trace at a time, so that a head cut or a compaction
// never holds a second copy of all its spans: only the encoded Parquet file, the
// index and the tag postings grow with the block.
type Writer struct {
	// Shared, if set, reports whether other blocks or heads hold spans of a trace;
	// such traces are marked split in the index (see TraceEntry.Split).
	Shared func(id [16]byte) bool
	// LatestEnd, if set, caps the block's time range (Unix ns): a span stamped
	// years ahead would otherwise give the block a newest end that retention
	// never reaches. Tempo clamps the same way to ingestion time plus its
	// ingestion_time_range_slack. The spans themselves are stored unchanged.
	LatestEnd int64

	pw    *parquet.GenericWriter[spanrow.Span]
	data  bytes.Buffer
	rows  []spanrow.Span // buffered for pw: it encodes large batches far faster
	index []byte
	z     *Summarizer
	tags  *tagIndexer
	meta  Meta
}

// writeBatch is how many rows the Writer hands the Parquet encoder at once: one
// trace (10 rows) per call costs about three times as much CPU as 1000.
const writeBatch = 1024

// NewWriter starts a block.
func NewWriter(tenant, id string, level int) *Writer {
	w := &Writer{z: NewSummarizer(), tags: newTagIndexer(),
		meta: Meta{Format: FormatVersion, ID: id, Tenant: tenant, Level: level}}
	w.pw = parquet.NewGenericWriter[spanrow.Span](&w.data, writerOptions...)
	w.index = binary.LittleEndian.AppendUint32(w.index, 0) // trace count, set by Finish
	return w
}

// ExpectBytes makes room for a Parquet file of about n bytes. Grown by doubling
// instead, the buffer was allocated, cleared and copied several times over, a
// tenth of a head cut's CPU.
func (w *Writer) ExpectBytes(n int) { w.data.Grow(n) }

// AddTrace appends the spans of one trace, sorted and deduplicated (spanrow.Sort,
// spanrow.Dedupe). Traces must come in ascending trace ID order. The slice may be
// reused after the call; the attribute bytes it points to must stay unchanged until
// Finish.
func (w *Writer) AddTrace(rows []spanrow.Span) error {
	if len(rows) == 0 {
		return nil
	}
	if err := w.reserve(rows[0].TraceID, len(rows)); err != nil {
		return err
	}
	n := len(w.rows)
	w.rows = append(w.rows, rows...)
	w.indexTrace(w.rows[n:])
	return nil
}

// AddTracePtrs is AddTrace for spans given by pointer, as a head holds them
// (sorted by spanrow.SortTrace, deduplicated by spanrow.DedupePtrs): each span
// is copied once, straight into the rows buffered for the encoder.
func (w *Writer) AddTracePtrs(spans []*spanrow.Span) error {
	if len(spans) == 0 {
		return nil
	}
	if err := w.reserve(spans[0].TraceID, len(spans)); err != nil {
		return err
	}
	n := len(w.rows)
	for _, sp := range spans {
		w.rows = append(w.rows, *sp)
	}
	w.indexTrace(w.rows[n:])
	return nil
}

// reserve checks that trace id comes after the last one added and makes room
// for its n spans in the buffered rows.
func (w *Writer) reserve(id [16]byte, n int) error {
	if t := w.meta.Traces; t > 0 {
		prev := w.index[4+(t-1)*indexEntry:]
		if bytes.Compare(prev[:16], id[:]) >= 0 {
			return fmt.Errorf("write block: trace %x out of order", id)
		}
	}
	if len(w.rows)+n > writeBatch {
		return w.flushRows()
	}
	return nil
}

// indexTrace records a trace whose rows were just buffered: its index entry,
// summary, tags and the block's time range.
func (w *Writer) indexTrace(rows []spanrow.Span) {
	id := rows[0].TraceID
	start, end := rows[0].Start, rows[0].End()
	var maxSpan int64
	for i := range rows {
		start, end = min(start, rows[i].Start), max(end, rows[i].End())
		maxSpan = max(maxSpan, rows[i].Duration)
	}
	split := w.Shared != nil && w.Shared(id)
	if split {
		w.meta.SplitTraces++
	}
	w.index = appendIndexEntry(w.index, indexRecord{ID: id, First: w.meta.Spans, Count: len(rows), Split: split,
		Start: start, Duration: end - start, MaxSpan: maxSpan})
	w.tags.addTrace(uint32(w.meta.Traces), rows, w.z)
	w.z.AddTraceDuration(end - start)
	if w.LatestEnd != 0 {
		start, end = min(start, w.LatestEnd), min(end, w.LatestEnd)
	}
	if w.meta.Spans == 0 {
		w.meta.MinStart, w.meta.MaxEnd = start, end
	}
	w.meta.MinStart, w.meta.MaxEnd = min(w.meta.MinStart, start), max(w.meta.MaxEnd, end)
	w.meta.Spans += len(rows)
	w.meta.Traces++
}

func (w *Writer) flushRows() error {
	if len(w.rows) == 0 {
		return nil
	}
	if _, err := w.pw.Write(w.rows); err != nil {
		return fmt.Errorf("encode block rows: %w", err)
	}
	clear(w.rows) // drop references to the caller's buffers
	w.rows = w.rows[:0]
	return nil
}

// Index is the trace index of a finished block, for Reader.SeedIndex.
func (w *Writer) Index() Index { return Index(slices.Clip(w.index)) }

// Spans is how many spans were added so far.
func (w *Writer) Spans() int { return w.meta.Spans }

// Finish writes the block's objects and returns its meta. The meta is written last,
// so a crash leaves no visible half block.
func (w *Writer) Finish(ctx context.Context, be backend.Raw) (*Meta, error) {
	if w.meta.Spans == 0 {
		return nil, fmt.Errorf("write block: no spans")
	}
	if err := w.flushRows(); err != nil {
		return nil, err
	}
	if err := w.pw.Close(); err != nil {
		return nil, fmt.Errorf("finish block file: %w", err)
	}
	binary.LittleEndian.PutUint32(w.index, uint32(w.meta.Traces))
	filter := bloom.NewWithEstimates(uint(w.meta.Traces), bloomFPR)
	for i := range w.meta.Traces {
		filter.Add(w.index[4+i*indexEntry : 4+i*indexEntry+16])
	}
	bloomBytes, err := filter.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode bloom filter: %w", err)
	}
	tagBytes := w.tags.encode()
	meta := new(Meta) // a copy: the caller keeps it for the block's life, not the writer
	*meta = w.meta
	meta.Created = time.Now().UTC()
	meta.Summary = w.z.Summary()
	meta.DataBytes, meta.IndexBytes, meta.BloomBytes = int64(w.data.Len()), int64(len(w.index)), int64(len(bloomBytes))
	meta.TagsBytes = int64(len(tagBytes))
	metaBytes, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode block meta: %w", err)
	}
	dir := Dir(meta.Tenant, meta.ID)
	for _, o := range []struct {
		name string
		b    []byte
	}{{DataName, w.data.Bytes()}, {IndexName, w.index}, {BloomName, bloomBytes}, {TagsName, tagBytes}, {MetaName, metaBytes}} {
		if err := be.Write(ctx, dir+o.name, o.b); err != nil {
			return nil, fmt.Errorf("write block %s: %w", o.name, err)
		}
	}
	return meta, nil
}

// Write stores rows (sorted by spanrow.Sort and deduplicated) as a new block and
// returns its meta.
func Write(ctx context.Context, be backend.Raw, tenant, id string, level int, rows []spanrow.Span) (*Meta, error) {
	w := NewWriter(tenant, id, level)
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && rows[end].TraceID == rows[start].TraceID {
			end++
		}
		if err := w.AddTrace(rows[start:end]); err != nil {
			return nil, err
		}
		start = end
	}
	return w.Finish(ctx, be)
}

// Delete removes a block, meta first so that it disappears atomically for readers.
func Delete(ctx context.Context, be backend.Raw, tenant, id string) error {
	dir := Dir(tenant, id)
	for _, name := range []string{MetaName, TagsName, BloomName, IndexName, DataName} {
		if err := be.Delete(ctx, dir+name); err != nil {
			return fmt.Errorf("delete block %s: %w", id, err)
		}
	}
	return nil
}
