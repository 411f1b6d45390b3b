package spanrow

import (
	"encoding/binary"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/pdatawire"
)

// FromProto's protobuf reading follows pdata's generated unmarshal
// (pdata/internal/generated_proto_*.go and internal/proto) rule for rule,
// as the OTLP receiver's tracewalk.go does: tags, varints and lengths are
// read by pdatawire; unknown fields are skipped; a known field of the wrong
// wire type is an error; strings are not checked for UTF-8. Where pdata's
// rules are its own (groups and what pdatawire gives ErrOwnRule for),
// FromProto leaves the request to it.

// wfield is one field read from the wire. b aliases the request.
type wfield struct {
	num int32
	typ protowire.Type
	u   uint64 // a varint's, fixed32's or fixed64's value
	b   []byte // a length-delimited value
}

// readField reads the field at b[pos:], which must not be empty, and
// returns where the next one starts.
func readField(b []byte, pos int) (f wfield, next int, err error) {
	if c := b[pos]; c >= 1<<3 && c < 0x80 { // the common case, inlined
		f.num, f.typ, pos = int32(c>>3), protowire.Type(c&7), pos+1
	} else if f.num, f.typ, pos, err = pdatawire.Tag(b, pos); err != nil {
		return f, 0, err
	}
	switch f.typ {
	case wVarint:
		f.u, pos, err = pdatawire.Varint(b, pos)
	case wFixed64:
		if len(b)-pos < 8 {
			return f, 0, pdatawire.ErrTruncated
		}
		f.u, pos = binary.LittleEndian.Uint64(b[pos:]), pos+8
	case wFixed32:
		if len(b)-pos < 4 {
			return f, 0, pdatawire.ErrTruncated
		}
		f.u, pos = uint64(binary.LittleEndian.Uint32(b[pos:])), pos+4
	case wBytes: // pdatawire.Bytes, with one call less
		var n uint64
		if n, pos, err = pdatawire.Varint(b, pos); err == nil {
			f.b, pos, err = pdatawire.Value(b, pos, n)
		}
	case protowire.StartGroupType, protowire.EndGroupType:
		err = errGroup
	default:
		err = errWireType
	}
	if err != nil {
		return f, 0, err
	}
	return f, pos, nil
}

// eachField calls fn with each field of message b and where it lies,
// b[pos:next], until readField or fn fails. What fn stores before failing
// does not matter: the decode stops.
//
// The decoders of the request, resource spans, resources and scopes use it.
// The loops that run for every span (scope spans', scanRepeated's), status,
// event, link or attribute are kept inline: fn's indirect call and the
// variables it captures cost them about 9% more instructions in FromProto
// on spans with events and links.
func eachField(b []byte, fn func(f wfield, pos, next int) error) error {
	for pos := 0; pos < len(b); {
		f, next, err := readField(b, pos)
		if err != nil {
			return err
		}
		if err := fn(f, pos, next); err != nil {
			return err
		}
		pos = next
	}
	return nil
}

func wantBytes(f wfield) error {
	if f.typ != wBytes {
		return errWireType
	}
	return nil
}

// shortBytes reports whether the field at b[pos:] is the common case, a
// string or message of under 128 bytes with a one-byte tag, and if so its
// number and where it ends; its value is b[pos+2:end]. Hot loops inline it
// before falling back to readField.
func shortBytes(b []byte, pos int) (num int32, end int, ok bool) {
	if pos+1 >= len(b) {
		return 0, 0, false
	}
	c, n := b[pos], b[pos+1]
	end = pos + 2 + int(n)
	return int32(c >> 3), end, c < 0x80 && c&7 == 2 && c >= 1<<3 && n < 0x80 && end <= len(b)
}

// fieldSet records which singular fields (numbers below 64) a message gave.
type fieldSet uint64

// once checks that f, a singular field whose wire type must be want, is
// the first of its number: pdata keeps the last scalar and merges messages
// and FromProto does neither.
func (s *fieldSet) once(f wfield, want protowire.Type) error {
	if f.typ != want {
		return errWireType
	}
	bit := fieldSet(1) << (uint(f.num) & 63)
	if *s&bit != 0 {
		return errTwice
	}
	*s |= bit
	return nil
}

// repeated records where the values of one repeated field of a message
// lie: n of them from lo to hi. Other fields may lie between them, as
// protobuf allows; iter skips those.
type repeated struct{ n, lo, hi int }

// add records the field read at b[pos:next].
func (r *repeated) add(pos, next int) {
	if r.n == 0 {
		r.lo = pos
	}
	r.hi = next
	r.n++
}

// addBytes records f, read at b[pos:next], a value of a repeated message
// or string field.
func (r *repeated) addBytes(f wfield, pos, next int) error {
	if f.typ != wBytes {
		return errWireType
	}
	r.add(pos, next)
	return nil
}

// iter walks the values of field num recorded in r from message b, whose
// fields from r.lo to r.hi have been read without error before.
func (r repeated) iter(b []byte, num int32) fieldIter {
	return fieldIter{b: b[:r.hi], pos: r.lo, num: num}
}

type fieldIter struct {
	b   []byte
	pos int
	num int32
	v   []byte
}

// more advances to the next value and reports whether there is one.
func (it *fieldIter) more() bool {
	for it.pos < len(it.b) {
		f, next, err := readField(it.b, it.pos)
		if err != nil {
			return false // cannot happen: the fields were read before
		}
		it.pos = next
		if f.num == it.num {
			it.v = f.b
			return true
		}
	}
	return false
}

// next is the value more found.
func (it *fieldIter) next() []byte { return it.v }

// scanRepeated reads message b, whose only known field is the repeated
// length-delimited field num (an ArrayValue, a KeyValueList, the spans of
// a ScopeSpans as counted), and records where its values lie.
func scanRepeated(b []byte, num int32) (repeated, error) {
	var r repeated
	for pos := 0; pos < len(b); { // not eachField: countSpans calls it for every span
		f, next, err := readField(b, pos)
		if err != nil {
			return r, err
		}
		if f.num == num {
			if f.typ != wBytes {
				return r, errWireType
			}
			r.add(pos, next)
		}
		pos = next
	}
	return r, nil
}

// appendRaw appends b as the codec's string.
func appendRaw(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}
