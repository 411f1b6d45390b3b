package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/encoding"

	"github.com/vispyr/vispyr/internal/decbuf"
)

// A chunk is one stream's entries over a time span, sorted by time. The
// columns a count needs (timestamps, line lengths, structured metadata) are
// compressed apart from the lines, so count_over_time, rate and
// bytes_over_time never decompress a line:
//
//	byte chunkV2 | uvarint len(columns) | zstd(columns) | zstd(lines)
//
//	columns: uvarint n | n × varint ts delta (>= 0) | n × uvarint line length |
//	         uvarint names | names × string |
//	         uvarint sets | sets × (uvarint k | k × (uvarint name index | string)) |
//	         n × uvarint set index
//	lines:   the n lines, one after the other
//
// where string is uvarint length + bytes. Entries with the same metadata share
// one set, so a chunk's metadata is decoded once per distinct set.
//
// Chunks written before (v1) are one zstd frame (its first byte is 0x28):
//
//	uvarint n | n × varint ts delta | n × uvarint line length | lines |
//	uvarint names | names × string | n × (uvarint k | k × (uvarint name index | string))
//
// They are still read; compaction copies them as they are.
type chunkMeta struct {
	MinT, MaxT int64
	Entries    uint32
	RawBytes   uint32 // line bytes, as Loki counts a stream's volume
	Filter     trigramFilter
}

const chunkV2 = 2

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(256<<20))
)

// chunkEncoder holds an encoding's scratch space between chunks.
type chunkEncoder struct {
	cols, lines, rec []byte
	sets             map[string]int
	names            map[string]int
	order            []string
}

var encoders = sync.Pool{New: func() any { return &chunkEncoder{sets: map[string]int{}, names: map[string]int{}} }}

// encodeChunk sorts entries by time and returns the compressed chunk and its
// metadata (with the filter of the lines' trigrams).
func encodeChunk(entries []Entry) ([]byte, chunkMeta) {
	slices.SortStableFunc(entries, func(a, b Entry) int { return cmpInt(a.Timestamp, b.Timestamp) })
	enc := encoders.Get().(*chunkEncoder)
	defer encoders.Put(enc)
	clear(enc.sets)
	clear(enc.names)
	enc.order = enc.order[:0]
	meta := chunkMeta{MinT: entries[0].Timestamp, MaxT: entries[len(entries)-1].Timestamp, Entries: uint32(len(entries))}

	b := binary.AppendUvarint(enc.cols[:0], uint64(len(entries)))
	prev := int64(0)
	for _, e := range entries {
		b = binary.AppendVarint(b, e.Timestamp-prev)
		prev = e.Timestamp
	}
	fb := newFilterBuilder()
	lines := enc.lines[:0]
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e.Line)))
		meta.RawBytes += uint32(len(e.Line))
		lines = append(lines, e.Line...)
		fb.add(e.Line)
	}
	meta.Filter = fb.build()

	// Metadata: name table, distinct sets, then each entry's set.
	for _, e := range entries {
		e.Metadata.Range(func(l labels.Label) {
			if _, ok := enc.names[l.Name]; !ok {
				enc.names[l.Name] = len(enc.order)
				enc.order = append(enc.order, l.Name)
			}
		})
	}
	b = binary.AppendUvarint(b, uint64(len(enc.order)))
	for _, n := range enc.order {
		b = appendString(b, n)
	}
	idx := make([]int, len(entries))
	var sets []byte
	for i, e := range entries {
		rec := binary.AppendUvarint(enc.rec[:0], uint64(e.Metadata.Len()))
		e.Metadata.Range(func(l labels.Label) {
			rec = binary.AppendUvarint(rec, uint64(enc.names[l.Name]))
			rec = appendString(rec, l.Value)
		})
		enc.rec = rec
		k, ok := enc.sets[string(rec)]
		if !ok {
			k = len(enc.sets)
			enc.sets[string(rec)] = k
			sets = append(sets, rec...)
		}
		idx[i] = k
	}
	b = binary.AppendUvarint(b, uint64(len(enc.sets)))
	b = append(b, sets...)
	for _, k := range idx {
		b = binary.AppendUvarint(b, uint64(k))
	}

	cols := zenc.EncodeAll(b, nil)
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(cols)+len(lines)/3)
	out = append(out, chunkV2)
	out = binary.AppendUvarint(out, uint64(len(cols)))
	out = append(out, cols...)
	out = zenc.EncodeAll(lines, out)
	enc.cols, enc.lines = b, lines
	return out, meta
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorruptChunk = errors.New("corrupt chunk")

// chunkCols is a chunk's columns, decoded; the lines are decompressed only
// when asked for. Its buffers are reused from chunk to chunk.
type chunkCols struct {
	ts    []int64
	sizes []int32
	names []string
	sets  [][]byte // each distinct metadata set's record, checked, in raw
	set   []uint32 // each entry's set
	total int      // the lines' bytes

	raw    []byte // the decompressed columns (v2) or the whole chunk (v1)
	linesZ []byte // v2: the compressed lines
	lines  []byte // v1: the lines, in raw
	lbuf   []byte // v2: the lines, decompressed by readLines(false)
	v1     bool
	setIdx map[string]uint32 // v1: a record's set
}

// parse reads a chunk's columns.
func (c *chunkCols) parse(data []byte) error {
	if len(data) > 0 && data[0] == chunkV2 {
		return c.parseV2(data[1:])
	}
	return c.parseV1(data)
}

func (c *chunkCols) parseV2(data []byte) error {
	r := &encoding.Decbuf{B: data}
	n := r.Uvarint64()
	if r.E != nil || n > uint64(len(r.B)) {
		return errCorruptChunk
	}
	raw, err := zdec.DecodeAll(r.B[:n], c.raw[:0])
	if err != nil {
		return fmt.Errorf("decompress chunk columns: %w", err)
	}
	c.raw, c.linesZ, c.lines, c.v1 = raw, r.B[n:], nil, false
	r = &encoding.Decbuf{B: raw}
	if err := c.readTimesAndSizes(r); err != nil {
		return err
	}
	if err := c.readNames(r); err != nil {
		return err
	}
	ns := r.Uvarint64()
	if r.E != nil || ns > uint64(len(r.B)) {
		return errCorruptChunk
	}
	c.sets = c.sets[:0]
	for range ns {
		rec, err := c.readSet(r)
		if err != nil {
			return err
		}
		c.sets = append(c.sets, rec)
	}
	c.set = c.set[:0]
	for range c.ts {
		k := r.Uvarint64()
		if k >= ns {
			return errCorruptChunk
		}
		c.set = append(c.set, uint32(k))
	}
	if r.E != nil || len(r.B) != 0 {
		return errCorruptChunk
	}
	return nil
}

func (c *chunkCols) parseV1(data []byte) error {
	raw, err := zdec.DecodeAll(data, c.raw[:0])
	if err != nil {
		return fmt.Errorf("decompress chunk: %w", err)
	}
	c.raw, c.linesZ, c.v1 = raw, nil, true
	r := &encoding.Decbuf{B: raw}
	if err := c.readTimesAndSizes(r); err != nil {
		return err
	}
	if c.total > len(r.B) {
		return errCorruptChunk
	}
	c.lines, r.B = r.B[:c.total], r.B[c.total:]
	if err := c.readNames(r); err != nil {
		return err
	}
	if c.setIdx == nil {
		c.setIdx = map[string]uint32{}
	}
	clear(c.setIdx)
	c.sets, c.set = c.sets[:0], c.set[:0]
	for range c.ts {
		rec, err := c.readSet(r)
		if err != nil {
			return err
		}
		k, ok := c.setIdx[string(rec)]
		if !ok {
			k = uint32(len(c.sets))
			c.setIdx[string(rec)] = k
			c.sets = append(c.sets, rec)
		}
		c.set = append(c.set, k)
	}
	if r.E != nil {
		return errCorruptChunk
	}
	return nil
}

// readTimesAndSizes reads the timestamp and line length columns: times must
// not go backwards (the encoder sorts them; readers rely on it).
func (c *chunkCols) readTimesAndSizes(r *encoding.Decbuf) error {
	n := r.Uvarint64()
	if r.E != nil || n > uint64(len(r.B)) {
		return errCorruptChunk
	}
	c.ts, c.sizes, c.total = c.ts[:0], c.sizes[:0], 0
	prev := int64(0)
	for i := range n {
		d := r.Varint64()
		if d < 0 && i > 0 {
			return errCorruptChunk
		}
		prev += d
		c.ts = append(c.ts, prev)
	}
	for range n {
		l := r.Uvarint64()
		if l > math.MaxInt32 || uint64(c.total)+l > math.MaxInt32 {
			return errCorruptChunk
		}
		c.sizes = append(c.sizes, int32(l))
		c.total += int(l)
	}
	if r.E != nil {
		return errCorruptChunk
	}
	return nil
}

func (c *chunkCols) readNames(r *encoding.Decbuf) error {
	nn := r.Uvarint64()
	if r.E != nil || nn > uint64(len(r.B)) {
		return errCorruptChunk
	}
	c.names = c.names[:0]
	for range nn {
		c.names = append(c.names, string(decbuf.UvarintBytes(r)))
	}
	if r.E != nil {
		return errCorruptChunk
	}
	return nil
}

// readSet checks one metadata record and returns its bytes.
func (c *chunkCols) readSet(r *encoding.Decbuf) ([]byte, error) {
	rec := r.B
	k := r.Uvarint64()
	if r.E != nil || k > uint64(len(r.B)) {
		return nil, errCorruptChunk
	}
	for range k {
		if ni := r.Uvarint64(); ni >= uint64(len(c.names)) {
			return nil, errCorruptChunk
		}
		decbuf.UvarintBytes(r)
	}
	if r.E != nil {
		return nil, errCorruptChunk
	}
	return rec[:len(rec)-len(r.B)], nil
}

// meta decodes set k's labels.
func (c *chunkCols) meta(k uint32, sb *labels.ScratchBuilder) labels.Labels {
	r := &encoding.Decbuf{B: c.sets[k]}
	sb.Reset()
	for range int(r.Uvarint64()) {
		ni := r.Uvarint64()
		sb.Add(c.names[ni], string(decbuf.UvarintBytes(r)))
	}
	sb.Sort()
	return sb.Labels()
}

// span returns the entries with timestamps in [start, end): times are sorted.
func (c *chunkCols) span(start, end int64) (lo, hi int) {
	lo = sort.Search(len(c.ts), func(i int) bool { return c.ts[i] >= start })
	hi = sort.Search(len(c.ts), func(i int) bool { return c.ts[i] >= end })
	return lo, max(lo, hi)
}

// readLines returns the lines, one after the other. With fresh, the bytes
// are the caller's to keep; without, they are valid until the next parse.
func (c *chunkCols) readLines(fresh bool) ([]byte, error) {
	if c.v1 {
		if fresh {
			return slices.Clone(c.lines), nil
		}
		return c.lines, nil
	}
	var dst []byte
	if !fresh {
		dst = c.lbuf[:0]
	}
	lines, err := zdec.DecodeAll(c.linesZ, dst)
	if err != nil {
		return nil, fmt.Errorf("decompress chunk lines: %w", err)
	}
	if !fresh {
		c.lbuf = lines
	}
	if len(lines) != c.total {
		return nil, errCorruptChunk
	}
	return lines, nil
}

// decodeChunk returns the entries of a chunk in [start, end) that pass keep
// (nil keeps all). Lines share one allocation and entries of one metadata
// set one labels value.
func decodeChunk(data []byte, start, end int64, keep func(string) bool) ([]Entry, error) {
	var c chunkCols
	if err := c.parse(data); err != nil {
		return nil, err
	}
	lo, hi := c.span(start, end)
	if lo == hi {
		return nil, nil
	}
	b, err := c.readLines(true)
	if err != nil {
		return nil, err
	}
	all := unsafe.String(unsafe.SliceData(b), len(b)) // b is ours alone and never written again
	metas := make([]labels.Labels, len(c.sets))
	decoded := make([]bool, len(c.sets))
	sb := labels.NewScratchBuilder(4)
	out := make([]Entry, 0, hi-lo)
	off := 0
	for i := range lo {
		off += int(c.sizes[i])
	}
	for i := lo; i < hi; i++ {
		line := all[off : off+int(c.sizes[i])]
		off += int(c.sizes[i])
		if keep != nil && !keep(line) {
			continue
		}
		k := c.set[i]
		if !decoded[k] {
			metas[k], decoded[k] = c.meta(k, &sb), true
		}
		out = append(out, Entry{Timestamp: c.ts[i], Line: line, Metadata: metas[k]})
	}
	return out, nil
}
