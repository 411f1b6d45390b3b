package pdatawire

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// The rules where pdata and protobuf agree are protowire's; the cases
// pdata reads by rules of its own give ErrOwnRule.
func TestRules(t *testing.T) {
	ten := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	for _, tc := range []struct {
		name string
		b    []byte
		v    uint64
		n    int
		err  error
	}{
		{"one byte", []byte{0x7f}, 0x7f, 1, nil},
		{"two bytes", []byte{0x80, 0x01}, 0x80, 2, nil},
		{"ten bytes", ten, 1<<64 - 1, 10, nil},
		{"bits past the 64th", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 0, 0, ErrOwnRule},
		{"eleven bytes", append(bytes.Repeat([]byte{0x80}, 10), 0x01), 0, 0, ErrOverflow},
		{"truncated", []byte{0x80}, 0, 0, ErrTruncated},
		{"empty", nil, 0, 0, ErrTruncated},
	} {
		v, n, err := Varint(tc.b, 0)
		if v != tc.v || n != tc.n || !errors.Is(err, tc.err) {
			t.Errorf("Varint %s = %d, %d, %v; want %d, %d, %v", tc.name, v, n, err, tc.v, tc.n, tc.err)
		}
		if pv, pn := protowire.ConsumeVarint(tc.b); tc.err == nil && (pv != v || pn != n) {
			t.Errorf("Varint %s = %d, %d; protowire reads %d, %d", tc.name, v, n, pv, pn)
		}
	}
}

func TestTag(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		num  int32
		typ  protowire.Type
		err  error
	}{
		{"field 1, bytes", protowire.AppendTag(nil, 1, protowire.BytesType), 1, protowire.BytesType, nil},
		{"largest field", protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.Fixed32Type), int32(protowire.MaxValidNumber), protowire.Fixed32Type, nil},
		{"field 0", []byte{0x02}, 0, 0, ErrFieldNumber},
		{"field 2^29", protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3), 0, 0, ErrOwnRule},
		{"truncated", []byte{0x8a}, 0, 0, ErrTruncated},
	} {
		num, typ, _, err := Tag(tc.b, 0)
		if num != tc.num || typ != tc.typ || !errors.Is(err, tc.err) {
			t.Errorf("Tag %s = %d, %d, %v; want %d, %d, %v", tc.name, num, typ, err, tc.num, tc.typ, tc.err)
		}
	}
}

func TestBytes(t *testing.T) {
	msg := []byte{0x03, 'a', 'b', 'c', 0xff}
	v, end, err := Bytes(msg, 0)
	if string(v) != "abc" || end != 4 || err != nil {
		t.Fatalf("Bytes = %q, %d, %v", v, end, err)
	}
	if cap(v) != len(v) {
		t.Errorf("value's capacity %d runs past it", cap(v))
	}
	if _, _, err := Bytes([]byte{0x04, 'a', 'b', 'c'}, 0); !errors.Is(err, ErrTruncated) {
		t.Errorf("length past the end: %v", err)
	}
}
