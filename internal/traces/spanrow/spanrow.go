// Package spanrow is the flat, one-row-per-span form in which the trace store keeps
// spans: in the in-memory head and as rows of the Parquet blocks. Columns that search
// filters on (IDs, service, name, kind, status, start, duration) are plain fields;
// everything else is kept losslessly in compact encoded blobs so that a trace read
// back is the trace that was sent.
package spanrow

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Span is one span. The parquet tags define the block schema: trace IDs are sorted
// and repeat for every span of a trace, so dictionary encoding stores each once;
// resource and scope blobs repeat across a whole batch and are dictionary encoded too.
type Span struct {
	TraceID       [16]byte `parquet:"trace_id,dict"`
	SpanID        [8]byte  `parquet:"span_id"`
	ParentSpanID  [8]byte  `parquet:"parent_span_id"`
	Service       string   `parquet:"service,dict"`
	Name          string   `parquet:"name,dict"`
	Kind          int32    `parquet:"kind,dict"`
	StatusCode    int32    `parquet:"status_code,dict"`
	StatusMessage string   `parquet:"status_message,dict"`
	Start         int64    `parquet:"start,delta"`
	Duration      int64    `parquet:"duration"`
	TraceState    string   `parquet:"trace_state,dict"`
	Flags         uint32   `parquet:"flags,dict"`
	Resource      []byte   `parquet:"resource,dict"`
	Scope         []byte   `parquet:"scope,dict"`
	Attrs         []byte   `parquet:"attrs"`
	Extra         []byte   `parquet:"extra"`
}

// End is the span's end time in Unix nanoseconds.
func (s *Span) End() int64 { return s.Start + s.Duration }

// IsRoot reports whether the span has no parent.
func (s *Span) IsRoot() bool { return s.ParentSpanID == [8]byte{} }

// MemSize is the heap the span holds on its own: the row struct (in its batch
// slice), its attribute bytes (a share of its batch's arena) and the strings and
// blobs allocated for it alone. Resource and scope blobs and the service name are
// shared by every span of a resource or scope and are not counted here.
func (s *Span) MemSize() int {
	return int(unsafe.Sizeof(*s)) + len(s.Attrs) + allocSize(len(s.Name)) +
		allocSize(len(s.StatusMessage)) + allocSize(len(s.TraceState)) + allocSize(len(s.Extra))
}

// allocSize approximates the heap a separate allocation of n bytes takes: Go
// rounds small objects up to its size classes, 16 bytes apart at these sizes.
func allocSize(n int) int {
	if n == 0 {
		return 0
	}
	return (n + 15) &^ 15
}

// ErrEmptyID reports a span without a trace or span ID, which OTLP forbids.
var ErrEmptyID = errors.New("span has an empty trace or span ID")

// attrScratch holds FromTraces' attribute encoding between requests.
var attrScratch = sync.Pool{New: func() any { return new(attrBuf) }}

type attrBuf struct {
	b   []byte
	off []int32
}

// FromTraces appends one row per span of td to dst.
func FromTraces(td ptrace.Traces, dst []Span) ([]Span, error) {
	dst = slices.Grow(dst, td.SpanCount())
	first := len(dst)
	// Attribute blobs are encoded into a reused scratch buffer, then copied into one
	// exactly sized arena for the batch: one allocation instead of one per span, and
	// no arena tail left empty (the head keeps the arena as long as the batch).
	scratch := attrScratch.Get().(*attrBuf)
	defer attrScratch.Put(scratch)
	scratch.b, scratch.off = scratch.b[:0], scratch.off[:0]
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource()
		resBlob := encodeResource(rs.SchemaUrl(), res)
		service := ""
		if v, ok := res.Attributes().Get("service.name"); ok {
			service = v.AsString()
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scopeBlob := encodeScope(ss.SchemaUrl(), ss.Scope())
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
					return dst[:first], fmt.Errorf("resource %d scope %d span %d (%q): %w", i, j, k, sp.Name(), ErrEmptyID)
				}
				start := int64(sp.StartTimestamp())
				// A span that ends before it starts (a skewed clock, a bad
				// SDK) is kept as an instant at its start. Tempo stores the
				// unsigned difference: a duration of centuries that tops
				// every search by duration and stretches its trace.
				dur := int64(0)
				if end := sp.EndTimestamp(); end > sp.StartTimestamp() {
					dur = int64(end - sp.StartTimestamp())
				}
				scratch.off = append(scratch.off, int32(len(scratch.b)))
				scratch.b = AppendMap(scratch.b, sp.Attributes())
				dst = append(dst, Span{
					TraceID:       sp.TraceID(),
					SpanID:        sp.SpanID(),
					ParentSpanID:  sp.ParentSpanID(),
					Service:       service,
					Name:          sp.Name(),
					Kind:          int32(sp.Kind()),
					StatusCode:    int32(sp.Status().Code()),
					StatusMessage: sp.Status().Message(),
					Start:         start,
					Duration:      dur,
					TraceState:    sp.TraceState().AsRaw(),
					Flags:         sp.Flags(),
					Resource:      resBlob,
					Scope:         scopeBlob,
					Extra:         encodeExtra(sp),
				})
			}
		}
	}
	// Blobs are cut from the arena with a capped capacity so none can grow into its
	// neighbour.
	arena := slices.Clone(scratch.b)
	scratch.off = append(scratch.off, int32(len(arena)))
	for i := range dst[first:] {
		lo, hi := scratch.off[i], scratch.off[i+1]
		dst[first+i].Attrs = arena[lo:hi:hi]
	}
	if cap(scratch.b) > 4<<20 {
		scratch.b = nil // do not keep a rare huge request's buffer
	}
	return dst, nil
}

func encodeResource(schemaURL string, r pcommon.Resource) []byte {
	b := appendString(nil, schemaURL)
	b = appendUvarint(b, uint64(r.DroppedAttributesCount()))
	return AppendMap(b, r.Attributes())
}

func encodeScope(schemaURL string, s pcommon.InstrumentationScope) []byte {
	b := appendString(nil, schemaURL)
	b = appendString(b, s.Name())
	b = appendString(b, s.Version())
	b = appendUvarint(b, uint64(s.DroppedAttributesCount()))
	return AppendMap(b, s.Attributes())
}

// encodeExtra keeps the rarely used parts of a span; most spans have none, and an
// empty blob costs nothing in a block.
func encodeExtra(sp ptrace.Span) []byte {
	ev, ln := sp.Events(), sp.Links()
	if ev.Len() == 0 && ln.Len() == 0 && sp.DroppedAttributesCount() == 0 &&
		sp.DroppedEventsCount() == 0 && sp.DroppedLinksCount() == 0 {
		return nil
	}
	b := appendUvarint(nil, uint64(sp.DroppedAttributesCount()))
	b = appendUvarint(b, uint64(sp.DroppedEventsCount()))
	b = appendUvarint(b, uint64(sp.DroppedLinksCount()))
	b = appendUvarint(b, uint64(ev.Len()))
	for i := 0; i < ev.Len(); i++ {
		e := ev.At(i)
		b = appendUvarint(b, uint64(e.Timestamp()))
		b = appendString(b, e.Name())
		b = appendUvarint(b, uint64(e.DroppedAttributesCount()))
		b = AppendMap(b, e.Attributes())
	}
	b = appendUvarint(b, uint64(ln.Len()))
	for i := 0; i < ln.Len(); i++ {
		l := ln.At(i)
		tid, sid := l.TraceID(), l.SpanID()
		b = append(b, tid[:]...)
		b = append(b, sid[:]...)
		b = appendString(b, l.TraceState().AsRaw())
		b = appendUvarint(b, uint64(l.Flags()))
		b = appendUvarint(b, uint64(l.DroppedAttributesCount()))
		b = AppendMap(b, l.Attributes())
	}
	return b
}

func decodeResource(b []byte, rs ptrace.ResourceSpans) error {
	d := decoder{b: b}
	rs.SetSchemaUrl(d.string())
	rs.Resource().SetDroppedAttributesCount(uint32(d.uvarint()))
	d.mapInto(rs.Resource().Attributes(), 0)
	return d.finish("resource")
}

func decodeScope(b []byte, ss ptrace.ScopeSpans) error {
	d := decoder{b: b}
	ss.SetSchemaUrl(d.string())
	ss.Scope().SetName(d.string())
	ss.Scope().SetVersion(d.string())
	ss.Scope().SetDroppedAttributesCount(uint32(d.uvarint()))
	d.mapInto(ss.Scope().Attributes(), 0)
	return d.finish("scope")
}

func decodeExtra(b []byte, sp ptrace.Span) error {
	if len(b) == 0 {
		return nil
	}
	d := decoder{b: b}
	sp.SetDroppedAttributesCount(uint32(d.uvarint()))
	sp.SetDroppedEventsCount(uint32(d.uvarint()))
	sp.SetDroppedLinksCount(uint32(d.uvarint()))
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		e := sp.Events().AppendEmpty()
		e.SetTimestamp(pcommon.Timestamp(d.uvarint()))
		e.SetName(d.string())
		e.SetDroppedAttributesCount(uint32(d.uvarint()))
		d.mapInto(e.Attributes(), 0)
	}
	n = d.count()
	for i := 0; i < n && d.err == nil; i++ {
		l := sp.Links().AppendEmpty()
		var tid pcommon.TraceID
		var sid pcommon.SpanID
		copy(tid[:], d.fixed(16))
		copy(sid[:], d.fixed(8))
		l.SetTraceID(tid)
		l.SetSpanID(sid)
		l.TraceState().FromRaw(d.string())
		l.SetFlags(uint32(d.uvarint()))
		l.SetDroppedAttributesCount(uint32(d.uvarint()))
		d.mapInto(l.Attributes(), 0)
	}
	return d.finish("span extras")
}

func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", what, d.err)
	}
	return nil
}

func appendUvarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// ToTraces rebuilds OTLP traces from rows, grouping spans that share a resource and
// scope as the sender did. Spans keep the order of rows.
func ToTraces(rows []Span) (ptrace.Traces, error) {
	td := ptrace.NewTraces()
	type key struct{ res, scope string }
	scopes := map[key]ptrace.ScopeSpans{}
	resources := map[string]ptrace.ResourceSpans{}
	for i := range rows {
		r := &rows[i]
		k := key{string(r.Resource), string(r.Scope)}
		ss, ok := scopes[k]
		if !ok {
			rs, ok := resources[k.res]
			if !ok {
				rs = td.ResourceSpans().AppendEmpty()
				if err := decodeResource(r.Resource, rs); err != nil {
					return td, err
				}
				resources[k.res] = rs
			}
			ss = rs.ScopeSpans().AppendEmpty()
			if err := decodeScope(r.Scope, ss); err != nil {
				return td, err
			}
			scopes[k] = ss
		}
		if err := r.appendTo(ss.Spans().AppendEmpty()); err != nil {
			return td, err
		}
	}
	return td, nil
}

func (r *Span) appendTo(sp ptrace.Span) error {
	sp.SetTraceID(r.TraceID)
	sp.SetSpanID(r.SpanID)
	sp.SetParentSpanID(r.ParentSpanID)
	sp.SetName(r.Name)
	sp.SetKind(ptrace.SpanKind(r.Kind))
	sp.Status().SetCode(ptrace.StatusCode(r.StatusCode))
	sp.Status().SetMessage(r.StatusMessage)
	sp.SetStartTimestamp(pcommon.Timestamp(r.Start))
	sp.SetEndTimestamp(pcommon.Timestamp(r.End()))
	sp.TraceState().FromRaw(r.TraceState)
	sp.SetFlags(r.Flags)
	if err := DecodeMap(r.Attrs, sp.Attributes()); err != nil {
		return err
	}
	return decodeExtra(r.Extra, sp)
}

// SortTrace orders rows by trace ID, then start time, then span ID: the block order.
func Sort(rows []Span) {
	sort.Slice(rows, func(i, j int) bool { return Less(&rows[i], &rows[j]) })
}

// SortTrace orders the spans of one trace by Less. As they share a trace ID,
// it compares only start times and span IDs, as integers: sorting the spans
// of every trace of a head cut to a block spent most of its time in
// bytes.Compare of trace IDs that were always equal.
func SortTrace(spans []*Span) { slices.SortFunc(spans, compareInTrace) }

func compareInTrace(a, b *Span) int {
	if a.Start != b.Start {
		return cmp.Compare(a.Start, b.Start)
	}
	// Big-endian, so that the order is bytes.Compare's, as in Compare.
	return cmp.Compare(binary.BigEndian.Uint64(a.SpanID[:]), binary.BigEndian.Uint64(b.SpanID[:]))
}

// Less is the block order.
func Less(a, b *Span) bool { return Compare(a, b) < 0 }

// Compare is the block order as a three-way comparison.
func Compare(a, b *Span) int {
	if c := bytes.Compare(a.TraceID[:], b.TraceID[:]); c != 0 {
		return c
	}
	if a.Start != b.Start {
		return cmp.Compare(a.Start, b.Start)
	}
	return bytes.Compare(a.SpanID[:], b.SpanID[:])
}

// Dedupe removes rows with the same trace ID, span ID and start from rows sorted with
// Sort (so duplicates are adjacent), keeping the first. The same span is stored twice
// when a WAL is replayed after its block was written, or when a client retries.
func Dedupe(rows []Span) []Span {
	if len(rows) < 2 {
		return rows
	}
	out := rows[:1]
	for i := 1; i < len(rows); i++ {
		if sameSpan(&out[len(out)-1], &rows[i]) {
			continue
		}
		out = append(out, rows[i])
	}
	return out
}

// DedupePtrs is Dedupe for spans given by pointer (sorted with SortTrace).
func DedupePtrs(spans []*Span) []*Span {
	if len(spans) < 2 {
		return spans
	}
	out := spans[:1]
	for _, r := range spans[1:] {
		if !sameSpan(out[len(out)-1], r) {
			out = append(out, r)
		}
	}
	return out
}

// sameSpan reports whether a and b are one span stored twice.
func sameSpan(a, b *Span) bool {
	return a.TraceID == b.TraceID && a.SpanID == b.SpanID && a.Start == b.Start
}
