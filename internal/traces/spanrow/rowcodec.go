package spanrow

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unsafe"
)

// AppendRows appends a compact binary form of rows (as the WAL stores them). Resource
// and scope blobs shared by neighbouring rows are written once and referenced by index.
//
//	uvarint(nBlobs) { bytes } uvarint(nRows) { row }
//	row = traceID[16] spanID[8] parent[8] string(service) string(name) uvarint(kind)
//	      uvarint(status) string(statusMessage) varint(start) varint(duration)
//	      string(traceState) uvarint(flags) uvarint(resource) uvarint(scope)
//	      bytes(attrs) bytes(extra)
func AppendRows(dst []byte, rows []Span) []byte {
	var blobs [][]byte
	index := map[*byte]int{}
	ref := func(b []byte) int {
		if len(b) == 0 {
			b = []byte{}
		}
		p := unsafe.SliceData(b)
		if i, ok := index[p]; ok && len(blobs[i]) == len(b) {
			return i
		}
		index[p] = len(blobs)
		blobs = append(blobs, b)
		return len(blobs) - 1
	}
	refs := make([]int, 2*len(rows))
	size := 16
	for i := range rows {
		r := &rows[i]
		refs[2*i], refs[2*i+1] = ref(r.Resource), ref(r.Scope)
		size += 80 + len(r.Service) + len(r.Name) + len(r.StatusMessage) + len(r.TraceState) + len(r.Attrs) + len(r.Extra)
	}
	for _, b := range blobs {
		size += 5 + len(b)
	}
	dst = slices.Grow(dst, size) // one allocation: growing a large buffer dominated the cost
	dst = binary.AppendUvarint(dst, uint64(len(blobs)))
	for _, b := range blobs {
		dst = appendString(dst, unsafe.String(unsafe.SliceData(b), len(b)))
	}
	dst = binary.AppendUvarint(dst, uint64(len(rows)))
	for i := range rows {
		r := &rows[i]
		dst = append(dst, r.TraceID[:]...)
		dst = append(dst, r.SpanID[:]...)
		dst = append(dst, r.ParentSpanID[:]...)
		dst = appendString(dst, r.Service)
		dst = appendString(dst, r.Name)
		dst = binary.AppendUvarint(dst, uint64(uint32(r.Kind)))
		dst = binary.AppendUvarint(dst, uint64(uint32(r.StatusCode)))
		dst = appendString(dst, r.StatusMessage)
		dst = binary.AppendVarint(dst, r.Start)
		dst = binary.AppendVarint(dst, r.Duration)
		dst = appendString(dst, r.TraceState)
		dst = binary.AppendUvarint(dst, uint64(r.Flags))
		dst = binary.AppendUvarint(dst, uint64(refs[2*i]))
		dst = binary.AppendUvarint(dst, uint64(refs[2*i+1]))
		dst = binary.AppendUvarint(dst, uint64(len(r.Attrs)))
		dst = append(dst, r.Attrs...)
		dst = binary.AppendUvarint(dst, uint64(len(r.Extra)))
		dst = append(dst, r.Extra...)
	}
	return dst
}

// minRowSize is the fewest bytes a row can take, to bound allocations on bad input.
const minRowSize = 32 + 13

// DecodeRows decodes AppendRows output. Blobs alias b; strings are copied (and
// repeated service and span names share one copy).
func DecodeRows(b []byte) ([]Span, error) {
	d := decoder{b: b}
	n := d.count()
	blobs := make([][]byte, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		blobs = append(blobs, d.bytes())
	}
	nRows := d.uvarint()
	if d.err == nil && nRows > uint64(len(d.b)/minRowSize) {
		return nil, fmt.Errorf("decode rows: %d rows cannot fit in %d bytes", nRows, len(d.b))
	}
	rows := make([]Span, 0, nRows)
	intern := map[string]string{}
	str := func() string {
		raw := d.bytes()
		if s, ok := intern[string(raw)]; ok {
			return s
		}
		s := string(raw)
		if len(intern) < 4096 {
			intern[s] = s
		}
		return s
	}
	blob := func() []byte {
		i := d.uvarint()
		if d.err == nil && i >= uint64(len(blobs)) {
			d.fail(fmt.Errorf("blob index %d out of range", i))
			return nil
		}
		if d.err != nil {
			return nil
		}
		return blobs[i]
	}
	for i := uint64(0); i < nRows && d.err == nil; i++ {
		var r Span
		copy(r.TraceID[:], d.fixed(16))
		copy(r.SpanID[:], d.fixed(8))
		copy(r.ParentSpanID[:], d.fixed(8))
		r.Service = str()
		r.Name = str()
		r.Kind = int32(uint32(d.uvarint()))
		r.StatusCode = int32(uint32(d.uvarint()))
		r.StatusMessage = str()
		r.Start = d.varint()
		r.Duration = d.varint()
		r.TraceState = str()
		r.Flags = uint32(d.uvarint())
		r.Resource = blob()
		r.Scope = blob()
		r.Attrs = d.bytes()
		if r.Extra = d.bytes(); len(r.Extra) == 0 {
			r.Extra = nil
		}
		if d.err == nil && (r.TraceID == [16]byte{} || r.SpanID == [8]byte{}) {
			d.fail(ErrEmptyID)
		}
		rows = append(rows, r)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode rows: %w", d.err)
	}
	return rows, nil
}
