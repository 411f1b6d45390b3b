package block

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/parquet-go/parquet-go"

	"github.com/vispyr/vispyr/internal/traces/backend"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// Reader reads one block. The bloom filter is loaded on open; the Parquet footer on
// first use, then kept; the trace index and tag postings on first use, then kept
// while the IndexCache has room. A failed read is retried by the next use.
type Reader struct {
	be   backend.Raw
	Meta *Meta
	dir  string

	bloom *bloom.BloomFilter

	fileMu sync.Mutex
	file   *parquet.File
	close  func() error

	cache *IndexCache
	elem  *list.Element // the cache's entry; guarded by cache.mu
	idxMu sync.Mutex    // serialises loading
	idx   atomic.Pointer[indexes]
}

// indexes are the parts of a block lookups and searches need before any span. The
// tags are read only once a search needs them: a lookup by ID needs only the index.
type indexes struct {
	index Index
	tags  *TagIndex
}

func (x *indexes) size() int64 {
	n := int64(len(x.index))
	if x.tags != nil {
		n += x.tags.size
	}
	return n
}

// Close releases the open data file, if any, and the cached indexes. Call it after
// the block is deleted or no longer used; on Linux the disk space of a deleted file
// is freed only then.
func (r *Reader) Close() error {
	if r.cache != nil {
		r.cache.forget(r)
	}
	r.idx.Store(nil)
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	if r.close != nil {
		err := r.close()
		r.close, r.file = nil, nil
		return err
	}
	return nil
}

// Open reads a block's meta and bloom filter. cache (may be nil: no bound) holds its
// indexes once read.
func Open(ctx context.Context, be backend.Raw, cache *IndexCache, tenant, id string) (*Reader, error) {
	dir := Dir(tenant, id)
	mb, err := be.Read(ctx, dir+MetaName)
	if err != nil {
		return nil, fmt.Errorf("read block meta: %w", err)
	}
	meta, err := DecodeMeta(mb)
	if err != nil {
		return nil, err
	}
	return OpenMeta(ctx, be, cache, meta)
}

// OpenMeta is Open for a block whose meta is already known (just written).
func OpenMeta(ctx context.Context, be backend.Raw, cache *IndexCache, meta *Meta) (*Reader, error) {
	dir := Dir(meta.Tenant, meta.ID)
	bb, err := be.Read(ctx, dir+BloomName)
	if err != nil {
		return nil, fmt.Errorf("read block bloom: %w", err)
	}
	var f bloom.BloomFilter
	if err := f.UnmarshalBinary(bb); err != nil {
		return nil, fmt.Errorf("decode block bloom: %w", err)
	}
	return &Reader{be: be, Meta: meta, dir: dir, bloom: &f, cache: cache}, nil
}

// MayContain consults the bloom filter.
func (r *Reader) MayContain(id [16]byte) bool { return r.bloom.Test(id[:]) }

// BloomKey is a trace ID hashed once for the bloom filters of many blocks: a
// head cut asks every block about each of its traces, and hashing the ID
// again for every block was most of that cost.
type BloomKey struct {
	id   [16]byte
	locs []uint64
}

// bloomK is the number of hash functions of the filters Finish writes.
var _, bloomK = bloom.EstimateParameters(RowsPerGroup, bloomFPR)

// NewBloomKey hashes id for MayContainKey.
func NewBloomKey(id [16]byte) BloomKey { return BloomKey{id, bloom.Locations(id[:], bloomK)} }

// MayContainKey is MayContain for a hashed trace ID.
func (r *Reader) MayContainKey(k BloomKey) bool {
	if r.bloom.K() != uint(len(k.locs)) { // a filter made with other parameters
		return r.bloom.Test(k.id[:])
	}
	return r.bloom.TestLocations(k.locs)
}

// load opens the Parquet file and reads its footer, once.
func (r *Reader) load(ctx context.Context) (*parquet.File, error) {
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	if r.file != nil {
		return r.file, nil
	}
	var ra io.ReaderAt = &objectReaderAt{be: r.be, name: r.dir + DataName, size: r.Meta.DataBytes}
	var closeFn func() error
	if o, ok := r.be.(backend.ReaderAtOpener); ok {
		f, err := o.OpenReaderAt(r.dir + DataName)
		if err != nil {
			return nil, fmt.Errorf("open block data: %w", err)
		}
		ra, closeFn = f, f.Close
	}
	f, err := parquet.OpenFile(ra, r.Meta.DataBytes, parquet.SkipBloomFilters(true), parquet.ReadBufferSize(8<<10))
	if err != nil {
		if closeFn != nil {
			closeFn()
		}
		return nil, fmt.Errorf("open block data: %w", err)
	}
	r.file, r.close = f, closeFn
	return f, nil
}

// indexes returns the block's index, and its tags if withTags, reading what is not
// cached. A version 1 block has neither in this form: only its rows can be read (to
// upgrade it).
func (r *Reader) indexes(ctx context.Context, withTags bool) (*indexes, error) {
	if r.Meta.Format != FormatVersion {
		return nil, errOldFormat
	}
	missing := func(x *indexes) bool { return x == nil || (withTags && x.tags == nil) }
	x := r.idx.Load()
	if missing(x) {
		r.idxMu.Lock()
		if x = r.idx.Load(); missing(x) {
			nx, err := r.loadIndexes(ctx, x, withTags)
			if err != nil {
				r.idxMu.Unlock()
				return nil, err
			}
			r.idx.Store(nx)
			x = nx
		}
		r.idxMu.Unlock()
	}
	if r.cache != nil {
		r.cache.touch(r, x.size())
	}
	return x, nil
}

// SeedIndex gives a just-written block the index its writer built (Writer.Index),
// so that lookups need not read it back.
func (r *Reader) SeedIndex(idx Index) {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	if r.idx.Load() == nil {
		x := &indexes{index: idx}
		r.idx.Store(x)
		if r.cache != nil {
			r.cache.touch(r, x.size())
		}
	}
}

// Warm opens the Parquet footer now, so that the first lookup after a block is
// written does not pay for it.
func (r *Reader) Warm(ctx context.Context) error {
	_, err := r.load(ctx)
	return err
}

// dropIndexes forgets the cached indexes; users holding them keep them until done.
func (r *Reader) dropIndexes() { r.idx.Store(nil) }

// loadIndexes reads what have lacks: the index, and the tags if withTags.
func (r *Reader) loadIndexes(ctx context.Context, have *indexes, withTags bool) (*indexes, error) {
	x := &indexes{}
	if have != nil {
		*x = *have
	}
	if x.index == nil {
		raw, err := r.be.Read(ctx, r.dir+IndexName)
		if err != nil {
			return nil, fmt.Errorf("read block index: %w", err)
		}
		idx, err := checkIndex(raw)
		if err != nil {
			return nil, err
		}
		if idx.Len() != r.Meta.Traces {
			return nil, fmt.Errorf("decode block index: %d traces, meta says %d", idx.Len(), r.Meta.Traces)
		}
		x.index = idx
	}
	if withTags && x.tags == nil {
		raw, err := r.be.Read(ctx, r.dir+TagsName)
		if err != nil {
			return nil, fmt.Errorf("read block tags: %w", err)
		}
		if x.tags, err = decodeTags(raw, x.index.Len()); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// errOldFormat is returned for lookups in a version 1 block awaiting its upgrade.
var errOldFormat = errors.New("block has the old format 1; it is rewritten on start")

// Index returns the block's trace index.
func (r *Reader) Index(ctx context.Context) (Index, error) {
	x, err := r.indexes(ctx, false)
	if err != nil {
		return nil, err
	}
	return x.index, nil
}

// Tags returns the block's tag postings.
func (r *Reader) Tags(ctx context.Context) (*TagIndex, error) {
	x, err := r.indexes(ctx, true)
	if err != nil {
		return nil, err
	}
	return x.tags, nil
}

// Trace returns the spans of a trace, or nil when the block does not hold it.
func (r *Reader) Trace(ctx context.Context, id [16]byte) ([]spanrow.Span, error) {
	if !r.MayContain(id) {
		return nil, nil
	}
	idx, err := r.Index(ctx)
	if err != nil {
		return nil, err
	}
	e, ok := idx.Lookup(id)
	if !ok {
		return nil, nil
	}
	file, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	first, count := e.First, e.Count
	rd := parquet.NewGenericReader[spanrow.Span](file)
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
	file, err := r.load(ctx)
	if err != nil {
		return err
	}
	rd := parquet.NewGenericReader[spanrow.Span](file)
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
	file, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]spanrow.Span, r.Meta.Spans)
	rd := parquet.NewGenericReader[spanrow.Span](file)
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

// ReadTraces calls fn with the rows of each trace, which must be in ascending row
// order, until fn returns false; one reader serves all of them, so neighbouring
// traces share decoded pages. The slice is reused between calls.
func (r *Reader) ReadTraces(ctx context.Context, traces []TraceEntry, fn func(TraceEntry, []spanrow.Span) bool) error {
	file, err := r.load(ctx)
	if err != nil {
		return err
	}
	rd := parquet.NewGenericReader[spanrow.Span](file)
	defer rd.Close()
	var rows []spanrow.Span
	for _, t := range traces {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := rd.SeekToRow(int64(t.First)); err != nil {
			return fmt.Errorf("seek block rows: %w", err)
		}
		rows = append(rows[:0], make([]spanrow.Span, t.Count)...)
		if err := readFull(rd, rows); err != nil {
			return err
		}
		if !fn(t, rows) {
			return nil
		}
	}
	return nil
}
