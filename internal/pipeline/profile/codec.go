package profile

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
)

// batchCodecVersion is the first byte of every encoded batch so the WAL format can
// change without misreading old segments.
const batchCodecVersion = 1

// EncodeBatch appends the binary form of b to dst. The form is varint based and
// self-contained, which is what a WAL record needs.
func EncodeBatch(dst []byte, b *Batch) []byte {
	dst = append(dst, batchCodecVersion)
	dst = appendString(dst, b.Tenant)
	dst = binary.AppendUvarint(dst, uint64(len(b.Names)))
	for _, n := range b.Names {
		dst = appendString(dst, n)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Stacks)))
	for _, s := range b.Stacks {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		for _, id := range s {
			dst = binary.AppendUvarint(dst, uint64(id))
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Profiles)))
	for i := range b.Profiles {
		p := &b.Profiles[i]
		dst = binary.AppendUvarint(dst, uint64(p.Labels.Len()))
		p.Labels.Range(func(l labels.Label) {
			dst = appendString(dst, l.Name)
			dst = appendString(dst, l.Value)
		})
		dst = binary.AppendVarint(dst, p.TimeNanos)
		dst = binary.AppendUvarint(dst, uint64(len(p.Samples)))
		for _, s := range p.Samples {
			dst = binary.AppendUvarint(dst, uint64(s.Stack))
			dst = binary.AppendVarint(dst, s.Value)
			dst = binary.AppendUvarint(dst, s.SpanID)
			dst = appendString(dst, s.TraceID)
		}
	}
	return dst
}

// DecodeBatch parses what EncodeBatch wrote. It never panics on corrupt input.
func DecodeBatch(buf []byte) (*Batch, error) {
	d := decoder{buf: buf}
	if v := d.byte(); v != batchCodecVersion {
		if d.err != nil {
			return nil, d.err
		}
		return nil, fmt.Errorf("decode batch: unknown version %d", v)
	}
	b := &Batch{Tenant: d.string()}
	b.Names = make([]string, d.count(1))
	for i := range b.Names {
		b.Names[i] = d.string()
	}
	b.Stacks = make([][]uint32, d.count(1))
	for i := range b.Stacks {
		s := make([]uint32, d.count(1))
		for j := range s {
			s[j] = d.uint32()
		}
		b.Stacks[i] = s
	}
	b.Profiles = make([]Profile, d.count(3))
	lb := labels.NewScratchBuilder(8)
	for i := range b.Profiles {
		p := &b.Profiles[i]
		lb.Reset()
		for range d.count(2) {
			name := d.string()
			lb.Add(name, d.string())
		}
		lb.Sort()
		p.Labels = lb.Labels()
		p.TimeNanos = d.varint()
		p.Samples = make([]Sample, d.count(4))
		for j := range p.Samples {
			p.Samples[j] = Sample{Stack: d.uint32(), Value: d.varint(), SpanID: d.uvarint(), TraceID: d.string()}
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode batch: %w", d.err)
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("decode batch: %d trailing bytes", len(d.buf))
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	return b, nil
}

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
