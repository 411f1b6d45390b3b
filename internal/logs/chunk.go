package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"
)

// A chunk is one stream's entries over a time span, sorted by time and compressed
// with zstd. Columns are laid out one after the other (timestamps, line lengths,
// lines, metadata) because like values next to each other compress better.
//
//	uvarint n | n × varint ts delta | n × uvarint line length | lines |
//	uvarint names | names × string | n × (uvarint k | k × (uvarint name index | string))
//
// where string is uvarint length + bytes.
type chunkMeta struct {
	MinT, MaxT int64
	Entries    uint32
	RawBytes   uint32 // line bytes, as Loki counts a stream's volume
	Filter     trigramFilter
}

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(256<<20))
)

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// encodeChunk sorts entries by time and returns the compressed chunk and its
// metadata (with the filter of the lines' trigrams).
func encodeChunk(entries []Entry) ([]byte, chunkMeta) {
	slices.SortStableFunc(entries, func(a, b Entry) int {
		switch {
		case a.Timestamp < b.Timestamp:
			return -1
		case a.Timestamp > b.Timestamp:
			return 1
		}
		return 0
	})
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = binary.AppendUvarint(b, uint64(len(entries)))
	prev := int64(0)
	meta := chunkMeta{MinT: entries[0].Timestamp, MaxT: entries[len(entries)-1].Timestamp, Entries: uint32(len(entries))}
	for _, e := range entries {
		b = binary.AppendVarint(b, e.Timestamp-prev)
		prev = e.Timestamp
	}
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e.Line)))
		meta.RawBytes += uint32(len(e.Line))
	}
	fb := newFilterBuilder()
	for _, e := range entries {
		b = append(b, e.Line...)
		fb.add(e.Line)
	}
	meta.Filter = fb.build()
	names := map[string]int{}
	var order []string
	for _, e := range entries {
		e.Metadata.Range(func(l labels.Label) {
			if _, ok := names[l.Name]; !ok {
				names[l.Name] = len(order)
				order = append(order, l.Name)
			}
		})
	}
	b = binary.AppendUvarint(b, uint64(len(order)))
	for _, n := range order {
		b = appendString(b, n)
	}
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(e.Metadata.Len()))
		e.Metadata.Range(func(l labels.Label) {
			b = binary.AppendUvarint(b, uint64(names[l.Name]))
			b = appendString(b, l.Value)
		})
	}
	out := zenc.EncodeAll(b, nil)
	*bp = b
	bufPool.Put(bp)
	return out, meta
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorruptChunk = errors.New("corrupt chunk")

// decodeChunk decompresses data and returns its entries in [start, end) that
// pass keep (nil keeps all). Lines share one string allocation.
func decodeChunk(data []byte, start, end int64, keep func(string) bool) ([]Entry, error) {
	raw, err := zdec.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress chunk: %w", err)
	}
	r := reader{b: raw}
	n := int(r.uvarint())
	if r.err != nil || n > len(raw) {
		return nil, errCorruptChunk
	}
	ts := make([]int64, n)
	prev := int64(0)
	for i := range ts {
		prev += r.varint()
		ts[i] = prev
	}
	lens := make([]int, n)
	total := 0
	for i := range lens {
		lens[i] = int(r.uvarint())
		total += lens[i]
	}
	if r.err != nil || total < 0 || total > len(r.b) {
		return nil, errCorruptChunk
	}
	all := string(r.b[:total])
	r.b = r.b[total:]
	nn := r.uvarint()
	if r.err != nil || nn > uint64(len(r.b)) {
		return nil, errCorruptChunk
	}
	names := make([]string, nn)
	for i := range names {
		names[i] = r.str()
	}
	out := make([]Entry, 0, n)
	off := 0
	sb := labels.NewScratchBuilder(4)
	for i := 0; i < n; i++ {
		line := all[off : off+lens[i]]
		off += lens[i]
		k := int(r.uvarint())
		if r.err != nil || k > len(r.b) {
			return nil, errCorruptChunk
		}
		sb.Reset()
		for j := 0; j < k; j++ {
			ni := r.uvarint()
			v := r.str()
			if ni >= uint64(len(names)) {
				return nil, errCorruptChunk
			}
			sb.Add(names[ni], v)
		}
		if ts[i] < start || ts[i] >= end || (keep != nil && !keep(line)) {
			continue
		}
		sb.Sort()
		out = append(out, Entry{Timestamp: ts[i], Line: line, Metadata: sb.Labels()})
	}
	if r.err != nil {
		return nil, errCorruptChunk
	}
	return out, nil
}

// reader decodes varints and strings, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorruptChunk
	}
	r.b = nil
}
