package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The primitives below read protobuf the way the gogo-generated Unmarshal methods
// of prompb and writev2 do, quirks included (a 10th varint byte may carry more than
// one bit, packed varints are bounded by the enclosing message). The stock handler
// decodes with those methods, so accepting and refusing exactly the same bytes keeps
// our status codes identical to its; FuzzDecode checks that.

var (
	errIntOverflow    = errors.New("proto: integer overflow")
	errInvalidLength  = errors.New("proto: negative length found during unmarshaling")
	errEndOfGroup     = errors.New("proto: unexpected end of group")
	errUnexpectedEOF  = io.ErrUnexpectedEOF
	errWireEndGroup   = errors.New("proto: wiretype end group for non-group")
	errIllegalTag     = errors.New("proto: illegal tag")
	errWrongWireType  = errors.New("proto: wrong wire type")
	errIllegalWireTyp = errors.New("proto: illegal wire type")
)

// varint reads a base-128 varint at b[i:], bounded by len(b).
func varint(b []byte, i int) (uint64, int, error) {
	var x uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, i, errIntOverflow
		}
		if i >= len(b) {
			return 0, i, errUnexpectedEOF
		}
		c := b[i]
		i++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x, i, nil
		}
	}
}

// tag reads a field tag and refuses what gogo refuses: end-group wire types
// outside a group and field numbers that are zero or negative once truncated.
func tag(b []byte, i int) (num int32, wt int, next int, err error) {
	wire, next, err := varint(b, i)
	if err != nil {
		return 0, 0, next, err
	}
	num, wt = int32(wire>>3), int(wire&7)
	if wt == 4 {
		return 0, 0, next, errWireEndGroup
	}
	if num <= 0 {
		return 0, 0, next, fmt.Errorf("%w %d", errIllegalTag, num)
	}
	return num, wt, next, nil
}

// bytesField reads the length of a length-delimited field at b[i:] and returns
// the bounds of its content.
func bytesField(b []byte, i int) (start, end int, err error) {
	n, i, err := varint(b, i)
	if err != nil {
		return 0, 0, err
	}
	ln := int(n)
	if ln < 0 {
		return 0, 0, errInvalidLength
	}
	end = i + ln
	if end < 0 {
		return 0, 0, errInvalidLength
	}
	if end > len(b) {
		return 0, 0, errUnexpectedEOF
	}
	return i, end, nil
}

// fixed64 reads 8 little-endian bytes at b[i:].
func fixed64(b []byte, i int) (uint64, int, error) {
	if i+8 > len(b) {
		return 0, i, errUnexpectedEOF
	}
	return binary.LittleEndian.Uint64(b[i:]), i + 8, nil
}

// skipField skips the unknown field whose tag starts at b[pre:], groups
// included, and returns the index after it.
func skipField(b []byte, pre int) (int, error) {
	n, err := skipLen(b[pre:])
	if err != nil {
		return 0, err
	}
	if n < 0 || pre+n < 0 {
		return 0, errInvalidLength
	}
	if pre+n > len(b) {
		return 0, errUnexpectedEOF
	}
	return pre + n, nil
}

// skipLen measures one field (tag and value, or a whole group) at the start of b.
func skipLen(b []byte) (int, error) {
	i, depth := 0, 0
	for i < len(b) {
		wire, next, err := varint(b, i)
		if err != nil {
			return 0, err
		}
		i = next
		switch wire & 7 {
		case 0:
			if _, i, err = varint(b, i); err != nil {
				return 0, err
			}
		case 1:
			i += 8
		case 2:
			n, next, err := varint(b, i)
			if err != nil {
				return 0, err
			}
			if int(n) < 0 {
				return 0, errInvalidLength
			}
			i = next + int(n)
		case 3:
			depth++
		case 4:
			if depth == 0 {
				return 0, errEndOfGroup
			}
			depth--
		case 5:
			i += 4
		default:
			return 0, fmt.Errorf("%w %d", errIllegalWireTyp, wire&7)
		}
		if i < 0 {
			return 0, errInvalidLength
		}
		if depth == 0 {
			return i, nil
		}
	}
	return 0, errUnexpectedEOF
}

// wrongType names the field whose wire type does not match the schema.
func wrongType(field string, wt int) error {
	return fmt.Errorf("%w %d for field %s", errWrongWireType, wt, field)
}

func float(bits uint64) float64 { return math.Float64frombits(bits) }
