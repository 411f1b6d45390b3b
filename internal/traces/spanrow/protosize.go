package spanrow

import (
	"errors"
	"math/bits"
)

var (
	errNested      = errors.New("attributes nested too deeply")
	errUnknownType = errors.New("unknown attribute value type")
)

// ProtoSize is the size of the span r was built from in OTLP protobuf, as
// ptrace.ProtoMarshaler.SpanSize gives it (Tempo's traces_spanmetrics_size_total
// adds it up), computed from the row's fields and blobs without decoding them.
//
// One span cannot be sized exactly: one sent with an end time of 0 and a later
// start. FromTraces keeps it as an instant ending at its start, so the row has
// an end time and ProtoSize counts its 9 bytes where pdata counted none.
func ProtoSize(r *Span) int {
	n := idSize(r.TraceID[:]) + idSize(r.SpanID[:]) + idSize(r.ParentSpanID[:])
	n += stringSize(len(r.TraceState)) + stringSize(len(r.Name))
	if r.Flags != 0 {
		n += 6 // two-byte tag, fixed32
	}
	if r.Kind != 0 {
		n += 1 + sov(uint64(r.Kind))
	}
	if r.Start != 0 {
		n += 9
	}
	if r.End() != 0 {
		n += 9
	}
	n += attrsSize(r.Attrs)
	n += extraSize(r.Extra)
	status := stringSize(len(r.StatusMessage))
	if r.StatusCode != 0 {
		status += 1 + sov(uint64(r.StatusCode))
	}
	return n + 1 + sov(uint64(status)) + status // the status message is always written
}

// sov is the length of v as a protobuf varint.
func sov(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// stringSize is an optional string or bytes field: absent when empty.
func stringSize(l int) int {
	if l == 0 {
		return 0
	}
	return 1 + sov(uint64(l)) + l
}

// embedded is a field holding a message of l bytes, written even when empty.
func embedded(l int) int { return 1 + sov(uint64(l)) + l }

// idSize is a trace or span ID: pdata always writes the field, empty for a zero ID.
func idSize(id []byte) int {
	for _, c := range id {
		if c != 0 {
			return embedded(len(id))
		}
	}
	return embedded(0)
}

func uintField(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + sov(v)
}

// attrsSize is the repeated KeyValue field of the map encoded in b.
func attrsSize(b []byte) int {
	d := decoder{b: b}
	n := d.mapSize(0)
	if d.err != nil {
		return 0
	}
	return n
}

// mapSize reads a map and returns the size of its entries as repeated KeyValue
// messages (the same for a span's attributes and a kvlist's values).
func (d *decoder) mapSize(depth int) int {
	n := 0
	c := d.count()
	for i := 0; i < c && d.err == nil; i++ {
		kv := stringSize(len(d.bytes()))
		kv += embedded(d.valueSize(depth)) // the value is always written
		n += embedded(kv)
	}
	return n
}

// valueSize reads one value and returns the size of its AnyValue message.
func (d *decoder) valueSize(depth int) int {
	if depth > maxDepth {
		d.fail(errNested)
		return 0
	}
	switch t := d.byte1(); t {
	case tEmpty:
		return 0
	case tStr, tBytes:
		return embedded(len(d.bytes())) // a oneof member is written even when empty
	case tInt:
		return 1 + sov(uint64(d.varint()))
	case tDouble:
		d.fixed(8)
		return 9
	case tBool:
		d.byte1()
		return 2
	case tSlice:
		n := 0
		c := d.count()
		for i := 0; i < c && d.err == nil; i++ {
			n += embedded(d.valueSize(depth + 1))
		}
		return embedded(n)
	case tMap:
		return embedded(d.mapSize(depth + 1))
	default:
		d.fail(errUnknownType)
		return 0
	}
}

// extraSize sizes what encodeExtra keeps: dropped counts, events and links.
func extraSize(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	d := decoder{b: b}
	n := uintField(d.uvarint()) + uintField(d.uvarint()) + uintField(d.uvarint())
	c := d.count()
	for i := 0; i < c && d.err == nil; i++ {
		ev := 0
		if d.uvarint() != 0 {
			ev += 9
		}
		ev += stringSize(len(d.bytes()))
		ev += uintField(d.uvarint())
		ev += d.mapSize(0)
		n += embedded(ev)
	}
	c = d.count()
	for i := 0; i < c && d.err == nil; i++ {
		ln := idSize(d.fixed(16)) + idSize(d.fixed(8))
		ln += stringSize(len(d.bytes()))
		if d.uvarint() != 0 {
			ln += 5 // fixed32 flags
		}
		ln += uintField(d.uvarint())
		ln += d.mapSize(0)
		n += embedded(ln)
	}
	if d.err != nil {
		return 0
	}
	return n
}
