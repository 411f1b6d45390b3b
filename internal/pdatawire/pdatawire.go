// Package pdatawire reads protobuf's wire format by the rules of pdata's
// generated unmarshal (pdata/internal/proto), so that code that reads OTLP
// without pdata accepts and refuses what pdata does: a tag's field number
// is its varint shifted right by 3 and must be positive; varints take up to
// ten bytes; lengths must fit in the message. What pdata reads by rules of
// its own, which protobuf's parsers do not share (varints whose bits past
// the 64th are set, which it drops; field numbers past 2^29-1, which it
// truncates to int32), gives ErrOwnRule: the caller leaves it to pdata.
//
// Each function reads the value at b[pos:] and returns where the next one
// starts. The OTLP receiver's walk and spanrow.FromProto use them; fuzz
// tests hold both to pdata.
package pdatawire

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

var (
	ErrTruncated   = errors.New("proto: unexpected end of data")
	ErrOverflow    = errors.New("proto: integer overflow")
	ErrFieldNumber = errors.New("proto: illegal field number")
	// ErrOwnRule marks what pdata reads by rules of its own.
	ErrOwnRule = errors.New("proto: read by pdata's own rules")
)

// Tag reads a tag: its field number and wire type.
func Tag(b []byte, pos int) (int32, protowire.Type, int, error) {
	t, pos, err := Varint(b, pos)
	switch {
	case err != nil:
		return 0, 0, 0, err
	case t>>3 > uint64(protowire.MaxValidNumber):
		return 0, 0, 0, ErrOwnRule
	case t>>3 == 0:
		return 0, 0, 0, ErrFieldNumber
	}
	return int32(t >> 3), protowire.Type(t & 7), pos, nil
}

// Varint reads a varint; one byte, the common case, without a loop.
func Varint(b []byte, pos int) (uint64, int, error) {
	if pos < len(b) && b[pos] < 0x80 {
		return uint64(b[pos]), pos + 1, nil
	}
	return LongVarint(b, pos)
}

// LongVarint reads a varint of any length, up to ten bytes.
func LongVarint(b []byte, pos int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if pos >= len(b) {
			return 0, 0, ErrTruncated
		}
		c := b[pos]
		pos++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if shift == 63 && c > 1 {
				return 0, 0, ErrOwnRule
			}
			return v, pos, nil
		}
	}
	return 0, 0, ErrOverflow
}

// Bytes reads a length-delimited value, whose capacity ends with it.
func Bytes(b []byte, pos int) ([]byte, int, error) {
	n, pos, err := Varint(b, pos)
	if err != nil {
		return nil, 0, err
	}
	return Value(b, pos, n)
}

// Value is the value of length n, read before it, that starts at b[pos:].
// It inlines, for loops that read the length themselves.
func Value(b []byte, pos int, n uint64) ([]byte, int, error) {
	if n > uint64(len(b)-pos) {
		return nil, 0, ErrTruncated
	}
	end := pos + int(n)
	return b[pos:end:end], end, nil
}
