package profiles

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The block sections use the same varint form as the batch codec
// (internal/pipeline/profile); these are the block decoder's own primitives.

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errShort = errors.New("unexpected end of data")

// decoder reads varints and strings, remembering the first error so callers can
// check once at the end.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.buf = nil
}

func (d *decoder) byte() byte {
	if len(d.buf) == 0 {
		d.fail(errShort)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail(fmt.Errorf("value %d overflows uint32", v))
		return 0
	}
	return uint32(v)
}

// count reads an element count and rejects counts that cannot fit in the rest of
// the buffer (each element takes at least minSize bytes), so corrupt input cannot
// make us allocate gigabytes.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if v > uint64(len(d.buf)/minSize) {
		d.fail(fmt.Errorf("count %d exceeds remaining %d bytes", v, len(d.buf)))
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

// bytes reads a length-prefixed byte slice without copying.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}
