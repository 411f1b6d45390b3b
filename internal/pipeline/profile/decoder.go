package profile

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The varint primitives of the batch codec, shared with the profile store's
// block format (internal/profiles), which uses the same encoding.

// AppendString appends s with its length as a uvarint.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errShort = errors.New("unexpected end of data")

// Decoder reads varints and strings, remembering the first error so callers can
// check once at the end.
type Decoder struct {
	buf []byte
	err error
}

func (d *Decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.buf = nil
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if len(d.buf) == 0 {
		d.fail(errShort)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Varint reads a zig-zag varint.
func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Uint32 reads a uvarint that must fit in 32 bits.
func (d *Decoder) Uint32() uint32 {
	v := d.Uvarint()
	if v > 1<<32-1 {
		d.fail(fmt.Errorf("value %d overflows uint32", v))
		return 0
	}
	return uint32(v)
}

// Count reads an element count and rejects counts that cannot fit in the rest of
// the buffer (each element takes at least minSize bytes), so corrupt input cannot
// make us allocate gigabytes.
func (d *Decoder) Count(minSize int) int {
	v := d.Uvarint()
	if v > uint64(len(d.buf)/minSize) {
		d.fail(fmt.Errorf("count %d exceeds remaining %d bytes", v, len(d.buf)))
		return 0
	}
	return int(v)
}

// String reads a length-prefixed string.
func (d *Decoder) String() string {
	n := d.Uvarint()
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

// Bytes reads a length-prefixed byte slice without copying.
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

// NewDecoder reads buf.
func NewDecoder(buf []byte) *Decoder { return &Decoder{buf: buf} }

// Err is the first error met, if any.
func (d *Decoder) Err() error { return d.err }

// Len is the number of bytes not read yet.
func (d *Decoder) Len() int { return len(d.buf) }
