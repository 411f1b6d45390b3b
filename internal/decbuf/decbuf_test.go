package decbuf

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/prometheus/prometheus/tsdb/encoding"
)

func TestUvarintBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []string // the strings read before the error, if any
		err  bool
	}{
		{"two strings", []byte{2, 'a', 'b', 1, 'c'}, []string{"ab", "c"}, false},
		{"empty", []byte{0}, []string{""}, false},
		{"length one past the end", []byte{3, 'a', 'b'}, nil, true},
		{"length past MaxInt64", binary.AppendUvarint(nil, math.MaxUint64-1), nil, true},
		{"truncated varint", []byte{0x80}, nil, true},
	} {
		d := encoding.Decbuf{B: tc.in}
		var got []string
		for d.E == nil && d.Len() > 0 {
			if b := UvarintBytes(&d); d.E == nil {
				got = append(got, string(b))
			}
		}
		if (d.E != nil) != tc.err || len(got) != len(tc.want) {
			t.Fatalf("%s: read %q, error %v", tc.name, got, d.E)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("%s: read %q, want %q", tc.name, got, tc.want)
			}
		}
		if tc.err && !errors.Is(d.E, encoding.ErrInvalidSize) {
			t.Errorf("%s: error %v, want %v", tc.name, d.E, encoding.ErrInvalidSize)
		}
	}
}
