package block

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/parquet-go/parquet-go"

	"github.com/vispyr/vispyr/internal/traces/backend"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// Reader reads one block. The bloom filter is loaded on open; the index and the Parquet
// footer on first use, then kept, so repeated trace lookups cost one ranged read.
type Reader struct {
	be   backend.Raw
	Meta *Meta
	dir  string

	bloom *bloom.BloomFilter

	once  sync.Once
	err   error
	index []byte // n × (16-byte ID, u32 first row, u32 rows) after the count
	file  *parquet.File
	close func() error
}

// Close releases the open data file, if any. Call it after the block is deleted or
// no longer used; on Linux the disk space of a deleted file is freed only then.
func (r *Reader) Close() error {
	if r.close != nil {
		return r.close()
	}
	return nil
}

// Open reads a block's meta and bloom filter.
func Open(ctx context.Context, be backend.Raw, tenant, id string) (*Reader, error) {
	dir := Dir(tenant, id)
	mb, err := be.Read(ctx, dir+MetaName)
	if err != nil {
		return nil, fmt.Errorf("read block meta: %w", err)
	}
	meta, err := DecodeMeta(mb)
	if err != nil {
		return nil, err
	}
	return OpenMeta(ctx, be, meta)
}

// OpenMeta is Open for a block whose meta is already known (just written).
func OpenMeta(ctx context.Context, be backend.Raw, meta *Meta) (*Reader, error) {
	dir := Dir(meta.Tenant, meta.ID)
	bb, err := be.Read(ctx, dir+BloomName)
	if err != nil {
		return nil, fmt.Errorf("read block bloom: %w", err)
	}
	var f bloom.BloomFilter
	if err := f.UnmarshalBinary(bb); err != nil {
		return nil, fmt.Errorf("decode block bloom: %w", err)
	}
	return &Reader{be: be, Meta: meta, dir: dir, bloom: &f}, nil
}

// MayContain consults the bloom filter.
func (r *Reader) MayContain(id [16]byte) bool { return r.bloom.Test(id[:]) }

const indexEntry = 24

func (r *Reader) load(ctx context.Context) error {
	r.once.Do(func() {
		idx, err := r.be.Read(ctx, r.dir+IndexName)
		if err != nil {
			r.err = fmt.Errorf("read block index: %w", err)
			return
		}
		if err := checkIndex(idx); err != nil {
			r.err = err
			return
		}
		var ra io.ReaderAt = &objectReaderAt{be: r.be, name: r.dir + DataName, size: r.Meta.DataBytes}
		if o, ok := r.be.(backend.ReaderAtOpener); ok {
			f, err := o.OpenReaderAt(r.dir + DataName)
			if err != nil {
				r.err = fmt.Errorf("open block data: %w", err)
				return
			}
			ra, r.close = f, f.Close
		}
		f, err := parquet.OpenFile(ra, r.Meta.DataBytes, parquet.SkipBloomFilters(true), parquet.ReadBufferSize(8<<10))
		if err != nil {
			r.err = fmt.Errorf("open block data: %w", err)
			return
		}
		r.index, r.file = idx, f
	})
	return r.err
}

// checkIndex validates an index read back from storage.
func checkIndex(idx []byte) error {
	if len(idx) < 4 {
		return errors.New("decode block index: too short")
	}
	n := binary.LittleEndian.Uint32(idx)
	if uint64(len(idx)-4) != uint64(n)*indexEntry {
		return fmt.Errorf("decode block index: %d bytes for %d traces", len(idx)-4, n)
	}
	return nil
}

// lookup finds a trace's rows in the index.
func lookup(idx []byte, id [16]byte) (first, count int, ok bool) {
	n := int(binary.LittleEndian.Uint32(idx))
	body := idx[4:]
	i := sort.Search(n, func(i int) bool {
		return bytes.Compare(body[i*indexEntry:i*indexEntry+16], id[:]) >= 0
	})
	if i == n || !bytes.Equal(body[i*indexEntry:i*indexEntry+16], id[:]) {
		return 0, 0, false
	}
	e := body[i*indexEntry+16:]
	return int(binary.LittleEndian.Uint32(e)), int(binary.LittleEndian.Uint32(e[4:])), true
}

// Trace returns the spans of a trace, or nil when the block does not hold it.
func (r *Reader) Trace(ctx context.Context, id [16]byte) ([]spanrow.Span, error) {
	if !r.MayContain(id) {
		return nil, nil
	}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	first, count, ok := lookup(r.index, id)
	if !ok {
		return nil, nil
	}
	rd := parquet.NewGenericReader[spanrow.Span](r.file)
	defer rd.Close()
	if err := rd.SeekToRow(int64(first)); err != nil {
		return nil, fmt.Errorf("seek block rows: %w", err)
	}
	rows := make([]spanrow.Span, count)
	if err := readFull(rd, rows); err != nil {
		return nil, err
	}
	return rows, nil
}

func readFull(rd *parquet.GenericReader[spanrow.Span], rows []spanrow.Span) error {
	for got := 0; got < len(rows); {
		n, err := rd.Read(rows[got:])
		got += n
		if err != nil {
			if err == io.EOF && got == len(rows) {
				return nil
			}
			return fmt.Errorf("read block rows: %w", err)
		}
	}
	return nil
}

// Scan calls fn with the spans of each trace in the block, in trace ID order, until fn
// returns false. The slice is reused between calls.
func (r *Reader) Scan(ctx context.Context, fn func(spans []spanrow.Span) bool) error {
	if err := r.load(ctx); err != nil {
		return err
	}
	rd := parquet.NewGenericReader[spanrow.Span](r.file)
	defer rd.Close()
	buf := make([]spanrow.Span, 1024)
	var cur []spanrow.Span
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := rd.Read(buf)
		for i := 0; i < n; i++ {
			if len(cur) > 0 && cur[0].TraceID != buf[i].TraceID {
				if !fn(cur) {
					return nil
				}
				cur = cur[:0]
			}
			cur = append(cur, buf[i])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("scan block rows: %w", err)
		}
	}
	if len(cur) > 0 {
		fn(cur)
	}
	return nil
}

// ReadAll returns every span of the block, for compaction.
func (r *Reader) ReadAll(ctx context.Context) ([]spanrow.Span, error) {
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	rows := make([]spanrow.Span, r.Meta.Spans)
	rd := parquet.NewGenericReader[spanrow.Span](r.file)
	defer rd.Close()
	if err := readFull(rd, rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// objectReaderAt adapts a backend object to io.ReaderAt for the Parquet reader.
type objectReaderAt struct {
	be   backend.Raw
	name string
	size int64
}

func (o *objectReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, io.EOF
	}
	var eof error
	if rest := o.size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	if err := o.be.ReadRange(context.Background(), o.name, off, p); err != nil {
		return 0, err
	}
	return len(p), eof
}

// Brief is the projection of a span that search pre-filters on: reading only these
// columns skips the attribute blobs, which are most of a block's bytes.
type Brief struct {
	TraceID    [16]byte `parquet:"trace_id"`
	Service    string   `parquet:"service"`
	Name       string   `parquet:"name"`
	StatusCode int32    `parquet:"status_code"`
	Start      int64    `parquet:"start"`
	Duration   int64    `parquet:"duration"`
}

// ScanBriefs calls fn with the brief spans of each trace and the row number of its
// first span, in trace order, until fn returns false.
func (r *Reader) ScanBriefs(ctx context.Context, fn func(spans []Brief, firstRow int) bool) error {
	if err := r.load(ctx); err != nil {
		return err
	}
	rd := parquet.NewGenericReader[Brief](r.file)
	defer rd.Close()
	buf := make([]Brief, 4096)
	var cur []Brief
	row, first := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := rd.Read(buf)
		for i := 0; i < n; i++ {
			if len(cur) > 0 && cur[0].TraceID != buf[i].TraceID {
				if !fn(cur, first) {
					return nil
				}
				cur, first = cur[:0], row
			}
			cur = append(cur, buf[i])
			row++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("scan block columns: %w", err)
		}
	}
	if len(cur) > 0 {
		fn(cur, first)
	}
	return nil
}

// RowRange is a run of rows: the spans of one trace.
type RowRange struct{ First, Count int }

// ReadRanges calls fn with the full rows of each range, which must be in ascending
// order; one reader serves all of them, so neighbouring ranges share decoded pages.
func (r *Reader) ReadRanges(ctx context.Context, ranges []RowRange, fn func([]spanrow.Span)) error {
	if err := r.load(ctx); err != nil {
		return err
	}
	rd := parquet.NewGenericReader[spanrow.Span](r.file)
	defer rd.Close()
	var rows []spanrow.Span
	for _, rg := range ranges {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := rd.SeekToRow(int64(rg.First)); err != nil {
			return fmt.Errorf("seek block rows: %w", err)
		}
		rows = append(rows[:0], make([]spanrow.Span, rg.Count)...)
		if err := readFull(rd, rows); err != nil {
			return err
		}
		fn(rows)
	}
	return nil
}
