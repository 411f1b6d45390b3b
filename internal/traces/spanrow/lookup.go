package spanrow

import (
	"encoding/binary"
	"strconv"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Value is one attribute value in the codec's encoding: its type byte, then its
// payload. It aliases the blob it was found in.
type Value []byte

// Lookup finds key in a map encoded by AppendMap (a row's Attrs, or the map of
// ResourceAttrs) without decoding it. Like pcommon.Map.Get it returns the first
// entry with that key. A malformed blob reports the key as absent: lookups feed
// metric labels, and a corrupt row must not stop the spans after it.
func Lookup(b []byte, key string) (Value, bool) {
	keys := [1]string{key}
	i, v := LookupFirst(b, keys[:])
	return v, i == 0
}

// LookupFirst finds, in one pass over the map encoded in b, the first of keys
// (in the order of keys) that the map has, and returns its index in keys and
// its value, or -1. It is a loop of Lookup over keys that reads the map once.
func LookupFirst(b []byte, keys []string) (int, Value) {
	best, val := -1, Value(nil)
	n, b, ok := uvarintFast(b)
	if !ok {
		return -1, nil
	}
	for ; n > 0 && best != 0; n-- {
		var kl uint64
		if kl, b, ok = uvarintFast(b); !ok || kl > uint64(len(b)) {
			return -1, nil
		}
		k := b[:kl]
		b = b[kl:]
		vl := valueLen(b)
		if vl < 0 {
			return -1, nil
		}
		limit := best
		if limit < 0 {
			limit = len(keys)
		}
		for i := range limit { // compared in place: no allocation
			if string(k) == keys[i] {
				best, val = i, Value(b[:vl])
				break
			}
		}
		b = b[vl:]
	}
	return best, val
}

// uvarintFast is binary.Uvarint with the one-byte case (lengths and counts
// of attributes nearly always) inline.
func uvarintFast(b []byte) (uint64, []byte, bool) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), b[1:], true
	}
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return v, b[n:], true
}

// valueLen is the length of the encoded value at the start of b (type byte
// included), or -1 if it is malformed.
func valueLen(b []byte) int {
	_, rest, ok := valueSize(b, 0)
	if !ok {
		return -1
	}
	return len(b) - len(rest)
}

// SameBlob reports whether a and b are the same memory. Every row of one
// resource (or scope) shares its blob, as FromTraces, FromProto and the head
// give them, so readers do per-resource work once per run of such rows.
func SameBlob(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// LookupString is Lookup followed by Value.AsString.
func LookupString(b []byte, key string) (string, bool) {
	v, ok := Lookup(b, key)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

// AsString renders v exactly as pcommon.Value.AsString renders the value it was
// encoded from. A string is returned without copying: it aliases the blob, so a
// caller that keeps it past the blob's life must clone it. Ints and bools are
// formatted directly; the rare rest (doubles, bytes, slices, maps) are decoded
// into a pcommon.Value and printed by pdata itself, so that NaN, base64 and JSON
// come out byte for byte the same.
func (v Value) AsString() string {
	if len(v) == 0 {
		return ""
	}
	d := decoder{b: v[1:]}
	switch v[0] {
	case tEmpty:
		return ""
	case tStr:
		s := d.bytes()
		return unsafe.String(unsafe.SliceData(s), len(s))
	case tInt:
		return strconv.FormatInt(d.varint(), 10)
	case tBool:
		return strconv.FormatBool(d.byte1() != 0)
	}
	pv := pcommon.NewValueEmpty()
	d = decoder{b: v}
	d.valueInto(pv, 0)
	if d.err != nil {
		return ""
	}
	return pv.AsString()
}
