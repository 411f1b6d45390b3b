package spanrow

import (
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
	d := decoder{b: b}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		k := d.bytes()
		v := d.b
		d.skip(d.byte1(), 0)
		if d.err != nil {
			return nil, false
		}
		if string(k) == key { // compared in place: no allocation
			return Value(v[:len(v)-len(d.b)]), true
		}
	}
	return nil, false
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
