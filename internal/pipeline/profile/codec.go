package profile

import (
	"encoding/binary"
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
	dst = AppendString(dst, b.Tenant)
	dst = binary.AppendUvarint(dst, uint64(len(b.Names)))
	for _, n := range b.Names {
		dst = AppendString(dst, n)
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
			dst = AppendString(dst, l.Name)
			dst = AppendString(dst, l.Value)
		})
		dst = binary.AppendVarint(dst, p.TimeNanos)
		dst = binary.AppendUvarint(dst, uint64(len(p.Samples)))
		for _, s := range p.Samples {
			dst = binary.AppendUvarint(dst, uint64(s.Stack))
			dst = binary.AppendVarint(dst, s.Value)
			dst = binary.AppendUvarint(dst, s.SpanID)
			dst = AppendString(dst, s.TraceID)
		}
	}
	return dst
}

// DecodeBatch parses what EncodeBatch wrote. It never panics on corrupt input.
func DecodeBatch(buf []byte) (*Batch, error) {
	d := NewDecoder(buf)
	if v := d.Byte(); v != batchCodecVersion {
		if d.Err() != nil {
			return nil, d.Err()
		}
		return nil, fmt.Errorf("decode batch: unknown version %d", v)
	}
	b := &Batch{Tenant: d.String()}
	b.Names = make([]string, d.Count(1))
	for i := range b.Names {
		b.Names[i] = d.String()
	}
	b.Stacks = make([][]uint32, d.Count(1))
	for i := range b.Stacks {
		s := make([]uint32, d.Count(1))
		for j := range s {
			s[j] = d.Uint32()
		}
		b.Stacks[i] = s
	}
	b.Profiles = make([]Profile, d.Count(3))
	lb := labels.NewScratchBuilder(8)
	for i := range b.Profiles {
		p := &b.Profiles[i]
		lb.Reset()
		for range d.Count(2) {
			name := d.String()
			lb.Add(name, d.String())
		}
		lb.Sort()
		p.Labels = lb.Labels()
		p.TimeNanos = d.Varint()
		p.Samples = make([]Sample, d.Count(4))
		for j := range p.Samples {
			p.Samples[j] = Sample{Stack: d.Uint32(), Value: d.Varint(), SpanID: d.Uvarint(), TraceID: d.String()}
		}
	}
	if d.Err() != nil {
		return nil, fmt.Errorf("decode batch: %w", d.Err())
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("decode batch: %d trailing bytes", d.Len())
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	return b, nil
}
