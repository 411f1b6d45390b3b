// Package decbuf reads what Prometheus's encoding.Decbuf reads where one of
// its methods would panic on corrupt input instead of setting its error.
package decbuf

import "github.com/prometheus/prometheus/tsdb/encoding"

// UvarintBytes reads a length-prefixed byte string, as Decbuf.UvarintBytes
// does, which converts the length to int before it checks it: a corrupt
// length past MaxInt64 slices out of range there. A length past the end
// sets d.E to encoding.ErrInvalidSize and returns nil.
func UvarintBytes(d *encoding.Decbuf) []byte {
	n := d.Uvarint64()
	if d.E == nil && n > uint64(len(d.B)) {
		d.E = encoding.ErrInvalidSize
	}
	if d.E != nil {
		return nil
	}
	b := d.B[:n]
	d.B = d.B[n:]
	return b
}
