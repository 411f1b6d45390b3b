package spanrow

import (
	"encoding/binary"

	"google.golang.org/protobuf/encoding/protowire"
)

// ProtoSize is the size of the span r was built from in OTLP protobuf, as
// ptrace.ProtoMarshaler.SpanSize gives it (Tempo's traces_spanmetrics_size_total
// adds it up), computed from the row's fields and blobs without decoding them.
//
// One span cannot be sized exactly: one sent with an end time of 0 and a later
// start. FromTraces keeps it as an instant ending at its start, so the row has
// an end time and ProtoSize counts its 9 bytes where pdata counted none.
func ProtoSize(r *Span) int {
	n := idSizes(r)
	n += stringSize(len(r.TraceState)) + stringSize(len(r.Name))
	if r.Flags != 0 {
		n += 6 // two-byte tag, fixed32
	}
	if r.Kind != 0 {
		n += 1 + protowire.SizeVarint(uint64(r.Kind))
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
		status += 1 + protowire.SizeVarint(uint64(r.StatusCode))
	}
	return n + 1 + protowire.SizeVarint(uint64(status)) + status // the status message is always written
}

// stringSize is an optional string or bytes field: absent when empty.
func stringSize(l int) int {
	if l == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(uint64(l)) + l
}

// embedded is a field holding a message of l bytes, written even when empty.
func embedded(l int) int { return 1 + protowire.SizeVarint(uint64(l)) + l }

// idSize is a trace or span ID: pdata always writes the field, empty for a zero ID.
func idSize(id []byte) int {
	for _, c := range id {
		if c != 0 {
			return embedded(len(id))
		}
	}
	return embedded(0)
}

// idSizes are the span's own IDs, compared as arrays rather than byte by byte.
func idSizes(r *Span) int {
	n := 3 * embedded(0)
	if r.TraceID != [16]byte{} {
		n += 16
	}
	if r.SpanID != [8]byte{} {
		n += 8
	}
	if r.ParentSpanID != [8]byte{} {
		n += 8
	}
	return n
}

func uintField(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

// attrsSize is the repeated KeyValue field of the map encoded in b.
func attrsSize(b []byte) int {
	n, _, ok := mapSize(b, 0)
	if !ok {
		return 0
	}
	return n
}

// mapSize reads a map from the start of b and returns the size of its entries
// as repeated KeyValue messages (the same for a span's attributes and a
// kvlist's values), and the rest of b. It slices b directly rather than going
// through a decoder: it runs for every span of span metrics.
func mapSize(b []byte, depth int) (int, []byte, bool) {
	c, b, ok := uvarintFast(b)
	if !ok || c > uint64(len(b)) {
		return 0, nil, false
	}
	n := 0
	for ; c > 0; c-- {
		var kl uint64
		if kl, b, ok = uvarintFast(b); !ok || kl > uint64(len(b)) {
			return 0, nil, false
		}
		b = b[kl:]
		var vs int
		if vs, b, ok = valueSize(b, depth); !ok {
			return 0, nil, false
		}
		n += embedded(stringSize(int(kl)) + embedded(vs)) // the value is always written
	}
	return n, b, true
}

// valueSize reads one value from the start of b and returns the size of its
// AnyValue message and the rest of b.
func valueSize(b []byte, depth int) (int, []byte, bool) {
	if len(b) == 0 || depth > maxDepth {
		return 0, nil, false
	}
	t := b[0]
	b = b[1:]
	switch t {
	case tEmpty:
		return 0, b, true
	case tStr, tBytes:
		l, b, ok := uvarintFast(b)
		if !ok || l > uint64(len(b)) {
			return 0, nil, false
		}
		return embedded(int(l)), b[l:], true // a oneof member is written even when empty
	case tInt:
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, nil, false
		}
		return 1 + protowire.SizeVarint(uint64(v)), b[n:], true
	case tDouble:
		if len(b) < 8 {
			return 0, nil, false
		}
		return 9, b[8:], true
	case tBool:
		if len(b) < 1 {
			return 0, nil, false
		}
		return 2, b[1:], true
	case tSlice:
		c, b, ok := uvarintFast(b)
		if !ok || c > uint64(len(b)) {
			return 0, nil, false
		}
		n := 0
		for ; c > 0; c-- {
			var es int
			if es, b, ok = valueSize(b, depth+1); !ok {
				return 0, nil, false
			}
			n += embedded(es)
		}
		return embedded(n), b, true
	case tMap:
		n, b, ok := mapSize(b, depth+1)
		return embedded(n), b, ok
	}
	return 0, nil, false
}

// mapSize is the package-level mapSize on the decoder's input.
func (d *decoder) mapSize() int {
	if d.err != nil {
		return 0
	}
	n, rest, ok := mapSize(d.b, 0)
	if !ok {
		d.fail(errShort)
		return 0
	}
	d.b = rest
	return n
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
		ev += d.mapSize()
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
		ln += d.mapSize()
		n += embedded(ln)
	}
	if d.err != nil {
		return 0
	}
	return n
}
