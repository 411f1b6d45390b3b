// Package headchunks keeps the samples of a TSDB head's series, packed for
// bytes per series: each series' open chunk is Prometheus's XOR encoding
// written into a slot of a shared slab (see slab.go), the encoder's state is
// a 40-byte record in a flat table indexed by series ref, and closed chunks
// go to Prometheus's head chunk files (chunks.ChunkDiskMapper), leaving 32
// bytes of metadata in memory each. Prometheus's head keeps about 400 bytes
// per series for the same: a memSeries, a memChunk, an XOR chunk with its
// 128-byte buffer and an appender.
//
// It is step 2 of Vispyr's own head (issue 16); series refs come from
// seriesindex, and the head package joins the two.
package headchunks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// series is one series' encoder state. It holds no pointer, so the
// garbage collector never scans the table.
type series struct {
	t          int64  // last sample's timestamp
	v          uint64 // last sample's value, as bits
	tDelta     uint32 // last timestamp delta; chunks span less than 2^31 ms
	nextAt     uint32 // the open chunk is cut at its first timestamp + nextAt
	loc        uint32 // the open chunk's slot; 0 without one
	lastClosed uint32 // the newest closed chunk in Buffer.closedOf(ref); 0 without one
	n          uint16 // bytes written in the open chunk, header included
	free       uint8  // bits not yet written in its last byte
	leading    uint8
	trailing   uint8
	has        bool // the series has had a sample, so t is its last
	gone       bool // the head removed the series (Forget)
}

const (
	pageBits   = 12
	pageSize   = 1 << pageBits
	stripeBits = 12

	headerBytes = 2
	// DefaultSamplesPerChunk is Prometheus's target number of samples a chunk.
	DefaultSamplesPerChunk = 120
)

// Options configure a Buffer.
type Options struct {
	// ChunkRange is the head's block range in milliseconds: no chunk spans
	// a multiple of it, so chunks fall into one block each when the head
	// is compacted. At most 2^31-1.
	ChunkRange int64
	// SamplesPerChunk is the target samples a chunk (Prometheus's
	// samples_per_chunk); 0 is DefaultSamplesPerChunk.
	SamplesPerChunk int
	// OnWriteError is called when a closed chunk could not be written to
	// its file; the chunk is then lost from the head (Prometheus logs it the
	// same way). The WAL still has its samples.
	OnWriteError func(error)
}

// Buffer holds the samples of series refs 1..n. Appends to one series are
// serialized by the caller or by Buffer's stripe locks; any number of
// series append and read in parallel.
type Buffer struct {
	opts  Options
	disk  *chunks.ChunkDiskMapper
	slabs *slabs

	stripes [1 << stripeBits]sync.Mutex // by ref: guards the series record and its slot

	pagesMu sync.Mutex
	pages   atomic.Pointer[[]*[pageSize]series]

	closedMu sync.RWMutex
	closed   []closedChunk // [0] unused, so 0 means none

	truncMu sync.Mutex // one Truncate at a time; taken before any stripe
	moving  moving     // a truncation's lists in the making (truncate.go)
}

// closedChunk is a chunk in the head chunk files; a series' closed chunks
// are a list through prev, newest first.
type closedChunk struct {
	ref        chunks.ChunkDiskMapperRef
	mint, maxt int64
	prev       uint32
	series     uint32
}

// New returns an empty buffer that writes closed chunks to disk.
func New(disk *chunks.ChunkDiskMapper, opts Options) (*Buffer, error) {
	if opts.ChunkRange <= 0 || opts.ChunkRange > math.MaxInt32 {
		return nil, fmt.Errorf("headchunks: chunk range %d ms out of (0, 2^31)", opts.ChunkRange)
	}
	if opts.SamplesPerChunk <= 0 {
		opts.SamplesPerChunk = DefaultSamplesPerChunk
	}
	if opts.OnWriteError == nil {
		opts.OnWriteError = func(error) {}
	}
	b := &Buffer{opts: opts, disk: disk, slabs: newSlabs(), closed: make([]closedChunk, 1)}
	b.pages.Store(&[]*[pageSize]series{})
	return b, nil
}

// record returns series ref's record, creating its page if needed (or
// again, if Forget freed it).
func (b *Buffer) record(ref uint32) *series {
	if s := b.existing(ref); s != nil {
		return s
	}
	b.pagesMu.Lock()
	defer b.pagesMu.Unlock()
	pages := *b.pages.Load()
	p := int(ref >> pageBits)
	pages = append(pages[:len(pages):len(pages)], make([]*[pageSize]series, max(0, p+1-len(pages)))...)
	if pages[p] == nil {
		pages[p] = new([pageSize]series)
	}
	b.pages.Store(&pages)
	return &pages[p][ref&(pageSize-1)]
}

// existing returns series ref's record, nil if it has no page.
func (b *Buffer) existing(ref uint32) *series {
	pages := *b.pages.Load()
	if p := int(ref >> pageBits); p < len(pages) && pages[p] != nil {
		return &pages[p][ref&(pageSize-1)]
	}
	return nil
}

// stripe is the lock of series ref's record and slot.
func (b *Buffer) stripe(ref uint32) *sync.Mutex { return &b.stripes[ref&(1<<stripeBits-1)] }

// Appendable reports whether Append(ref, t, v) would take the sample, with
// the errors Prometheus's head gives: storage.ErrOutOfOrderSample before the
// series' last timestamp, storage.ErrDuplicateSampleForTimestamp for another
// value at it. The same value at the same timestamp is taken and ignored.
func (b *Buffer) Appendable(ref uint32, t int64, v float64) error {
	m := b.stripe(ref)
	m.Lock()
	defer m.Unlock()
	if s := b.existing(ref); s != nil {
		if err := appendable(s, t, v); err != errDuplicate {
			return err
		}
	}
	return nil
}

func appendable(s *series, t int64, v float64) error {
	switch {
	case !s.has || t > s.t:
		return nil
	case t < s.t:
		return storage.ErrOutOfOrderSample
	case math.Float64bits(v) != s.v:
		return fmt.Errorf("%w (new value %v, last %v)", storage.ErrDuplicateSampleForTimestamp, v, math.Float64frombits(s.v))
	}
	return errDuplicate
}

var errDuplicate = errors.New("same sample again")

// Append adds sample (t, v) to series ref (from 1), cutting the open chunk
// first where Prometheus's head would.
func (b *Buffer) Append(ref uint32, t int64, v float64) error {
	if ref == 0 {
		return errRefZero
	}
	m := b.stripe(ref)
	m.Lock()
	defer m.Unlock()
	return b.appendLocked(ref, b.record(ref), t, v)
}

// appendLocked is Append with the stripe of series ref (record s) held.
func (b *Buffer) appendLocked(ref uint32, s *series, t int64, v float64) error {
	if err := appendable(s, t, v); err != nil {
		if err == errDuplicate {
			return nil
		}
		return err
	}
	if s.loc != 0 && b.mustCut(s, t) {
		b.cut(ref, s)
	}
	if s.loc == 0 {
		b.start(s, t)
	}
	b.write(s, t, v)
	return nil
}

// mustCut reports whether the open chunk is full before t is added: past
// its share of the chunk range, twice the target samples, or bytes that
// another sample could take over chunkenc's 1 KiB.
func (b *Buffer) mustCut(s *series, t int64) bool {
	chunk := b.slabs.bytes(s.loc)
	num := int(binary.BigEndian.Uint16(chunk))
	if int(s.n) > chunkenc.MaxBytesPerXORChunkBeforeAppend || num >= 2*b.opts.SamplesPerChunk {
		return true
	}
	mint := firstTimestamp(chunk)
	if num == b.opts.SamplesPerChunk/4 {
		s.nextAt = uint32(spreadEnd(mint, s.t, mint+int64(s.nextAt), 4) - mint)
	}
	return t >= mint+int64(s.nextAt)
}

// spreadEnd is Prometheus's estimate of where a chunk should end so that
// the chunks up to end, filling at the rate seen so far, share its samples
// evenly: a quarter full at cur, the chunk ends at start + (end-start)/n.
func spreadEnd(start, cur, end int64, ratioToFull float64) int64 {
	n := float64(end-start) / (float64(cur-start+1) * ratioToFull)
	if n <= 1 {
		return end
	}
	return int64(float64(start) + float64(end-start)/math.Floor(n))
}

// start opens a chunk for a first sample at t, ending no later than the
// end of t's chunk range (computed as Prometheus does, which for t < 0
// rounds towards zero).
func (b *Buffer) start(s *series, t int64) {
	s.loc = b.slabs.alloc(0)
	s.n, s.free = headerBytes, 0
	end := (t/b.opts.ChunkRange + 1) * b.opts.ChunkRange
	s.nextAt = uint32(end - t)
}

// write appends (t, v) to the open chunk. The sample is encoded aside
// first, from the chunk's last, partly written byte, so that the chunk moves
// to a bigger slot only when the sample does not fit, and slots carry no
// headroom.
func (b *Buffer) write(s *series, t int64, v float64) {
	chunk := b.slabs.bytes(s.loc)
	num := binary.BigEndian.Uint16(chunk)
	w := bitWriter{free: s.free}
	from := int(s.n)
	if s.free > 0 {
		from--
		w.buf[0], w.n = chunk[from], 1
	}
	w.appendSample(s, num, t, v)
	if need := from + w.n; need > len(chunk) {
		chunk = b.grow(s, need)
	}
	copy(chunk[from:], w.buf[:w.n])
	binary.BigEndian.PutUint16(chunk, num+1)
	s.n, s.free, s.has = uint16(from+w.n), w.free, true
}

// grow moves the open chunk to a slot of at least need bytes.
func (b *Buffer) grow(s *series, need int) []byte {
	loc := b.slabs.alloc(classFor(need))
	chunk := b.slabs.bytes(loc)
	copy(chunk, b.slabs.bytes(s.loc)[:s.n])
	b.slabs.release(s.loc)
	s.loc = loc
	return chunk
}

// firstTimestamp decodes an XOR chunk's first sample's timestamp.
func firstTimestamp(chunk []byte) int64 {
	t, _ := binary.Varint(chunk[headerBytes:])
	return t
}

// cut writes the open chunk to the head chunk files and frees its slot.
func (b *Buffer) cut(ref uint32, s *series) {
	data := append([]byte(nil), b.slabs.bytes(s.loc)[:s.n]...)
	mint := firstTimestamp(data)
	chk, _ := chunkenc.FromData(chunkenc.EncXOR, data)
	diskRef := b.disk.WriteChunk(chunks.HeadSeriesRef(ref), mint, s.t, chk, false, b.writeDone)
	b.link(ref, s, closedChunk{ref: diskRef, mint: mint, maxt: s.t})
	b.slabs.release(s.loc)
	s.loc, s.n, s.free = 0, 0, 0
}

func (b *Buffer) writeDone(err error) {
	if err != nil {
		b.opts.OnWriteError(fmt.Errorf("headchunks: write closed chunk: %w", err))
	}
}
