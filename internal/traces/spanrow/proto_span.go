package spanrow

import (
	"encoding/binary"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/pdatawire"
)

// spanWire is the wire type of each singular field of Span; the repeated
// ones (attributes, events, links) are read apart.
var spanWire = [...]protowire.Type{
	pSpanTraceID: wBytes, pSpanSpanID: wBytes, pSpanTraceState: wBytes,
	pSpanParentSpanID: wBytes, pSpanName: wBytes, pSpanKind: wVarint,
	pSpanStart: wFixed64, pSpanEnd: wFixed64, pSpanDroppedAttrs: wVarint,
	pSpanDroppedEvents: wVarint, pSpanDroppedLinks: wVarint, pSpanStatus: wBytes,
	pSpanFlags: wFixed32,
}

// spanFields is what a span's fields say, before its row is encoded.
type spanFields struct {
	traceState, name, statusMessage []byte
	start, end                      uint64
	// Counts are uint32 in pdata, which truncates the varint.
	droppedAttrs, droppedEvents, droppedLinks uint32
	events, links                             repeated
}

// span appends the row of one span to d.rows, filled in place; tmpl holds
// its resource's and scope's parts.
func (d *protoDecoder) span(b []byte, tmpl *Span) error {
	d.rows = append(d.rows, *tmpl)
	row := &d.rows[len(d.rows)-1]
	var s spanFields
	var seen fieldSet
	// The span's attributes, the most of its fields, are kept as they are
	// read rather than read again as events and links are.
	d.attrs = d.attrs[:0]
	for pos := 0; pos < len(b); {
		var f wfield
		var next int
		if num, end, ok := shortBytes(b, pos); ok {
			f, next = wfield{num: num, typ: wBytes, b: b[pos+2 : end : end]}, end
		} else if c := b[pos]; c&7 == 1 && c < 0x80 && c >= 1<<3 && pos+9 <= len(b) { // timestamps
			f, next = wfield{num: int32(c >> 3), typ: wFixed64, u: binary.LittleEndian.Uint64(b[pos+1:])}, pos+9
		} else {
			var err error
			if f, next, err = readField(b, pos); err != nil {
				return err
			}
		}
		switch f.num {
		case pSpanAttributes, pSpanEvents, pSpanLinks:
			if f.typ != wBytes {
				return errWireType
			}
			if f.num == pSpanAttributes {
				d.attrs = append(d.attrs, f.b)
			} else {
				s.repeatedOf(f.num).add(pos, next)
			}
		default:
			if uint32(f.num) < uint32(len(spanWire)) {
				if err := seen.once(f, spanWire[f.num]); err != nil {
					return err
				}
				if err := s.scalar(f, row); err != nil {
					return err
				}
			}
		}
		pos = next
	}
	if row.TraceID == [16]byte{} || row.SpanID == [8]byte{} {
		return errNoID
	}
	return d.appendRow(b, &s, row)
}

func (s *spanFields) repeatedOf(num int32) *repeated {
	if num == pSpanEvents {
		return &s.events
	}
	return &s.links
}

// scalar takes in a singular field of a span, whose wire type is checked.
func (s *spanFields) scalar(f wfield, row *Span) error {
	switch f.num {
	case pSpanTraceID:
		return setID(row.TraceID[:], f.b)
	case pSpanSpanID:
		return setID(row.SpanID[:], f.b)
	case pSpanParentSpanID:
		return setID(row.ParentSpanID[:], f.b)
	case pSpanTraceState:
		s.traceState = f.b
	case pSpanName:
		s.name = f.b
	case pSpanKind:
		row.Kind = int32(f.u)
	case pSpanStart:
		s.start = f.u
	case pSpanEnd:
		s.end = f.u
	case pSpanDroppedAttrs:
		s.droppedAttrs = uint32(f.u)
	case pSpanDroppedEvents:
		s.droppedEvents = uint32(f.u)
	case pSpanDroppedLinks:
		s.droppedLinks = uint32(f.u)
	case pSpanFlags:
		row.Flags = uint32(f.u)
	case pSpanStatus:
		return s.status(f.b, row)
	}
	return nil
}

// setID copies a trace or span ID, which pdata takes empty (as zeros) or of
// its exact length.
func setID(dst, v []byte) error {
	switch len(v) {
	case 0:
	case len(dst):
		copy(dst, v)
	default:
		return errIDLength
	}
	return nil
}

// status reads a Status. Its field 1, the deprecated code, pdata skips as
// an unknown field.
func (s *spanFields) status(b []byte, row *Span) error {
	var seen fieldSet
	for pos := 0; pos < len(b); {
		f, next, err := readField(b, pos)
		if err != nil {
			return err
		}
		switch f.num {
		case pStatusMessage:
			if err := seen.once(f, wBytes); err != nil {
				return err
			}
			s.statusMessage = f.b
		case pStatusCode:
			if err := seen.once(f, wVarint); err != nil {
				return err
			}
			row.StatusCode = int32(f.u)
		}
		pos = next
	}
	return nil
}

// appendRow encodes the span's attributes and extras into the arena and
// appends its row, as FromTraces does.
func (d *protoDecoder) appendRow(b []byte, s *spanFields, row *Span) error {
	row.Name = d.intern(s.name)
	row.StatusMessage = d.intern(s.statusMessage)
	row.TraceState = d.intern(s.traceState)
	row.Start = int64(s.start)
	// A span that ends before it starts is kept as an instant at its start,
	// as FromTraces does.
	if s.end > s.start {
		row.Duration = int64(s.end - s.start)
	}
	var err error
	d.off = append(d.off, len(d.arena))
	d.arena = binary.AppendUvarint(d.arena, uint64(len(d.attrs)))
	for _, kv := range d.attrs {
		if d.arena, err = d.appendKeyValue(d.arena, kv, 0); err != nil {
			return err
		}
	}
	d.off = append(d.off, len(d.arena))
	if s.events.n != 0 || s.links.n != 0 || s.droppedAttrs != 0 || s.droppedEvents != 0 || s.droppedLinks != 0 {
		if d.arena, err = d.appendExtra(d.arena, b, s); err != nil {
			return err
		}
	}
	return nil
}

// appendExtra appends the encoding encodeExtra gives.
func (d *protoDecoder) appendExtra(dst, b []byte, s *spanFields) ([]byte, error) {
	dst = appendUvarint(dst, uint64(s.droppedAttrs))
	dst = appendUvarint(dst, uint64(s.droppedEvents))
	dst = appendUvarint(dst, uint64(s.droppedLinks))
	dst = appendUvarint(dst, uint64(s.events.n))
	var err error
	for it := s.events.iter(b, pSpanEvents); it.more(); {
		if dst, err = d.appendEvent(dst, it.next()); err != nil {
			return dst, err
		}
	}
	dst = appendUvarint(dst, uint64(s.links.n))
	for it := s.links.iter(b, pSpanLinks); it.more(); {
		if dst, err = d.appendLink(dst, it.next()); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func (d *protoDecoder) appendEvent(dst, b []byte) ([]byte, error) {
	var name []byte
	var ts uint64
	var dropped uint32
	var attrs repeated
	var seen fieldSet
	for pos := 0; pos < len(b); {
		f, next, err := readField(b, pos)
		if err != nil {
			return dst, err
		}
		switch f.num {
		case pEventTime:
			err = seen.once(f, wFixed64)
			ts = f.u
		case pEventName:
			err = seen.once(f, wBytes)
			name = f.b
		case pEventAttributes:
			err = attrs.addBytes(f, pos, next)
		case pEventDropped:
			err = seen.once(f, wVarint)
			dropped = uint32(f.u)
		}
		if err != nil {
			return dst, err
		}
		pos = next
	}
	dst = appendUvarint(dst, ts)
	dst = appendRaw(dst, name)
	dst = appendUvarint(dst, uint64(dropped))
	return d.appendMap(dst, b, attrs, pEventAttributes, 0)
}

func (d *protoDecoder) appendLink(dst, b []byte) ([]byte, error) {
	var traceID [16]byte
	var spanID [8]byte
	var traceState []byte
	var flags, dropped uint32
	var attrs repeated
	var seen fieldSet
	for pos := 0; pos < len(b); {
		f, next, err := readField(b, pos)
		if err != nil {
			return dst, err
		}
		switch f.num {
		case pLinkTraceID:
			if err = seen.once(f, wBytes); err == nil {
				err = setID(traceID[:], f.b)
			}
		case pLinkSpanID:
			if err = seen.once(f, wBytes); err == nil {
				err = setID(spanID[:], f.b)
			}
		case pLinkTraceState:
			err = seen.once(f, wBytes)
			traceState = f.b
		case pLinkAttributes:
			err = attrs.addBytes(f, pos, next)
		case pLinkDropped:
			err = seen.once(f, wVarint)
			dropped = uint32(f.u)
		case pLinkFlags:
			err = seen.once(f, wFixed32)
			flags = uint32(f.u)
		}
		if err != nil {
			return dst, err
		}
		pos = next
	}
	dst = append(dst, traceID[:]...)
	dst = append(dst, spanID[:]...)
	dst = appendRaw(dst, traceState)
	dst = appendUvarint(dst, uint64(flags))
	dst = appendUvarint(dst, uint64(dropped))
	return d.appendMap(dst, b, attrs, pLinkAttributes, 0)
}

// appendMap appends, as AppendMap does, the map whose entries are the
// KeyValue values of field num of message b, recorded in r. pdata keeps
// every entry, repeated keys too, in order, and so does AppendMap.
func (d *protoDecoder) appendMap(dst, b []byte, r repeated, num int32, depth int) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(r.n))
	var err error
	for it := r.iter(b, num); it.more(); {
		if dst, err = d.appendKeyValue(dst, it.next(), depth); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func (d *protoDecoder) appendKeyValue(dst, b []byte, depth int) ([]byte, error) {
	if out, ok := appendCommonKeyValue(dst, b); ok {
		return out, nil
	}
	var key, value []byte
	var seen fieldSet
	for pos := 0; pos < len(b); {
		f, next, err := readField(b, pos)
		if err != nil {
			return dst, err
		}
		switch f.num {
		case pKVKey:
			err = seen.once(f, wBytes)
			key = f.b
		case pKVValue:
			err = seen.once(f, wBytes)
			value = f.b
		case pKVStrindex:
			err = errStrindex
		}
		if err != nil {
			return dst, err
		}
		pos = next
	}
	dst = appendRaw(dst, key)
	// An absent value is an empty AnyValue, as is a present one without a
	// oneof member.
	return d.appendAnyValue(dst, value, depth)
}

// anyWire is the wire type of AnyValue's oneof members 1 to 7.
var anyWire = [...]protowire.Type{
	fStr: wBytes, fBool: wVarint, fInt: wVarint, fDouble: wFixed64,
	fArray: wBytes, fKvlist: wBytes, fBytes: wBytes,
}

// appendAnyValue appends, as appendValue does, the AnyValue b.
func (d *protoDecoder) appendAnyValue(dst, b []byte, depth int) ([]byte, error) {
	var v wfield
	for pos := 0; pos < len(b); {
		f, next, err := readField(b, pos)
		if err != nil {
			return dst, err
		}
		switch {
		case f.num == pAnyStrindex:
			return dst, errStrindex
		case uint32(f.num) >= uint32(len(anyWire)):
		case f.typ != anyWire[f.num]:
			return dst, errWireType
		case v.num != 0: // pdata keeps the last member; real senders give one
			return dst, errTwice
		default:
			v = f
		}
		pos = next
	}
	switch v.num {
	case fStr:
		return appendRaw(append(dst, tStr), v.b), nil
	case fBool:
		b := byte(0)
		if v.u != 0 {
			b = 1
		}
		return append(dst, tBool, b), nil
	case fInt:
		return binary.AppendVarint(append(dst, tInt), int64(v.u)), nil
	case fDouble:
		return binary.LittleEndian.AppendUint64(append(dst, tDouble), v.u), nil
	case fBytes:
		return appendRaw(append(dst, tBytes), v.b), nil
	case fArray:
		return d.appendArray(dst, v.b, depth)
	case fKvlist:
		return d.appendKvlist(dst, v.b, depth)
	}
	return append(dst, tEmpty), nil
}

func (d *protoDecoder) appendArray(dst, b []byte, depth int) ([]byte, error) {
	if depth+1 > maxDepth {
		return dst, errDeep
	}
	r, err := scanRepeated(b, pListValues)
	if err != nil {
		return dst, err
	}
	dst = binary.AppendUvarint(append(dst, tSlice), uint64(r.n))
	for it := r.iter(b, pListValues); it.more(); {
		if dst, err = d.appendAnyValue(dst, it.next(), depth+1); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func (d *protoDecoder) appendKvlist(dst, b []byte, depth int) ([]byte, error) {
	if depth+1 > maxDepth {
		return dst, errDeep
	}
	r, err := scanRepeated(b, pListValues)
	if err != nil {
		return dst, err
	}
	return d.appendMap(append(dst, tMap), b, r, pListValues, depth+1)
}

// appendCommonKeyValue appends the KeyValue b if it has the form encoders
// write for most attributes, and reports whether it did: a short key and a
// short value holding a string or an int, in either order (pdata writes the
// value first, protobuf's generated code the key). Reading that form field
// by field would give the same.
func appendCommonKeyValue(dst, b []byte) ([]byte, bool) {
	const keyTag, valueTag = pKVKey<<3 | 2, pKVValue<<3 | 2
	const strTag, intTag = fStr<<3 | 2, fInt<<3 | 0
	if len(b) < 4 || b[1] >= 0x80 {
		return dst, false
	}
	p := 2 + int(b[1])
	if p+2 > len(b) || b[p+1] >= 0x80 || p+2+int(b[p+1]) != len(b) {
		return dst, false
	}
	var key, v []byte
	switch {
	case b[0] == keyTag && b[p] == valueTag:
		key, v = b[2:p], b[p+2:]
	case b[0] == valueTag && b[p] == keyTag:
		v, key = b[2:p], b[p+2:]
	default:
		return dst, false
	}
	if len(v) < 2 {
		return dst, false
	}
	switch v[0] {
	case strTag:
		if v[1] >= 0x80 || int(v[1]) != len(v)-2 {
			return dst, false
		}
		dst = appendRaw(dst, key)
		return appendRaw(append(dst, tStr), v[2:]), true
	case intTag:
		u, n, err := pdatawire.Varint(v, 1)
		if err != nil || n != len(v) {
			return dst, false
		}
		dst = appendRaw(dst, key)
		return binary.AppendVarint(append(dst, tInt), int64(u)), true
	}
	return dst, false
}
