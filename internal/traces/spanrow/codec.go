package spanrow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The attribute codec is a compact, self-describing binary form of a pcommon.Map.
// Blocks and the head keep attributes in it instead of OTLP protobuf because it is
// smaller (no field tags) and because identical maps encode to identical bytes, which
// lets Parquet's dictionary encoding store a repeated resource once.
//
//	map   = uvarint(count) { string(key) value }
//	value = type-byte payload
//	string = uvarint(len) bytes

const (
	tEmpty byte = iota
	tStr
	tInt
	tDouble
	tBool
	tBytes
	tSlice
	tMap
)

// maxDepth bounds nesting so that a hostile blob cannot exhaust the stack.
const maxDepth = 64

var errShort = errors.New("truncated attribute data")

// AppendMap appends the encoding of m to dst.
func AppendMap(dst []byte, m pcommon.Map) []byte {
	dst = binary.AppendUvarint(dst, uint64(m.Len()))
	m.Range(func(k string, v pcommon.Value) bool {
		dst = appendString(dst, k)
		dst = appendValue(dst, v)
		return true
	})
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendValue(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		dst = append(dst, tStr)
		return appendString(dst, v.Str())
	case pcommon.ValueTypeInt:
		dst = append(dst, tInt)
		return binary.AppendVarint(dst, v.Int())
	case pcommon.ValueTypeDouble:
		dst = append(dst, tDouble)
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		b := byte(0)
		if v.Bool() {
			b = 1
		}
		return append(dst, tBool, b)
	case pcommon.ValueTypeBytes:
		dst = append(dst, tBytes)
		raw := v.Bytes().AsRaw()
		dst = binary.AppendUvarint(dst, uint64(len(raw)))
		return append(dst, raw...)
	case pcommon.ValueTypeSlice:
		dst = append(dst, tSlice)
		s := v.Slice()
		dst = binary.AppendUvarint(dst, uint64(s.Len()))
		for i := 0; i < s.Len(); i++ {
			dst = appendValue(dst, s.At(i))
		}
		return dst
	case pcommon.ValueTypeMap:
		dst = append(dst, tMap)
		return AppendMap(dst, v.Map())
	default:
		return append(dst, tEmpty)
	}
}

// decoder reads the codec from a byte slice, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(errShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) fixed(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail(errShort)
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

// count reads an element count and rejects counts that cannot fit in the rest of the
// input (every element takes at least one byte), so corrupt data cannot make us allocate.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("attribute count %d exceeds remaining %d bytes", n, len(d.b)))
		return 0
	}
	return int(n)
}

func (d *decoder) mapInto(m pcommon.Map, depth int) {
	if depth > maxDepth {
		d.fail(errors.New("attributes nested too deeply"))
		return
	}
	n := d.count()
	if n > bigMap {
		d.bigMapInto(m, n, depth)
		return
	}
	m.EnsureCapacity(n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		d.valueInto(m.PutEmpty(k), depth)
	}
}

func (d *decoder) valueInto(v pcommon.Value, depth int) {
	switch t := d.byte1(); t {
	case tEmpty:
	case tStr:
		v.SetStr(d.string())
	case tInt:
		v.SetInt(d.varint())
	case tDouble:
		if b := d.fixed(8); b != nil {
			v.SetDouble(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
	case tBool:
		v.SetBool(d.byte1() != 0)
	case tBytes:
		v.SetEmptyBytes().FromRaw(d.bytes())
	case tSlice:
		if depth+1 > maxDepth {
			d.fail(errors.New("attributes nested too deeply"))
			return
		}
		s := v.SetEmptySlice()
		n := d.count()
		s.EnsureCapacity(n)
		for i := 0; i < n && d.err == nil; i++ {
			d.valueInto(s.AppendEmpty(), depth+1)
		}
	case tMap:
		d.mapInto(v.SetEmptyMap(), depth+1)
	default:
		if d.err == nil {
			d.fail(fmt.Errorf("unknown attribute value type %d", t))
		}
	}
}

// DecodeMap decodes b (as written by AppendMap) into m, which it clears first.
func DecodeMap(b []byte, m pcommon.Map) error {
	m.Clear()
	d := decoder{b: b}
	d.mapInto(m, 0)
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes after attributes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("decode attributes: %w", d.err)
	}
	return nil
}

// ScanScalars calls fn for every top-level attribute in b (encoded by AppendMap) with
// its TraceQL type ("string", "int", "float", "bool") and value as text, without
// building a pcommon.Map. Non-scalar values are reported with an empty type.
func ScanScalars(b []byte, fn func(key, typ, value string)) error {
	d := decoder{b: b}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		key := d.bytes()
		typ, val := d.scalar()
		if d.err == nil {
			fn(string(key), typ, val)
		}
	}
	return d.err
}

// scalar reads one value, returning its type and text, or "" for non-scalars
// (which it skips).
func (d *decoder) scalar() (typ, val string) {
	switch t := d.byte1(); t {
	case tStr:
		return "string", string(d.bytes())
	case tInt:
		return "int", strconv.FormatInt(d.varint(), 10)
	case tDouble:
		if b := d.fixed(8); b != nil {
			return "float", strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)), 'g', -1, 64)
		}
		return "", ""
	case tBool:
		return "bool", strconv.FormatBool(d.byte1() != 0)
	default:
		// Skip by decoding into a throwaway value; rare enough not to matter.
		d.b = append([]byte{t}, d.b...)
		d.valueInto(pcommon.NewValueEmpty(), 0)
		return "", ""
	}
}

// ResourceAttrs returns the attribute part of a resource blob.
func ResourceAttrs(res []byte) ([]byte, bool) {
	d := decoder{b: res}
	d.bytes()
	d.uvarint()
	return d.b, d.err == nil
}

// skip passes over a value of type t without building it.
func (d *decoder) skip(t byte, depth int) {
	if depth > maxDepth {
		d.fail(errors.New("attributes nested too deeply"))
		return
	}
	switch t {
	case tEmpty:
	case tStr, tBytes:
		d.bytes()
	case tInt:
		d.varint()
	case tDouble:
		d.fixed(8)
	case tBool:
		d.byte1()
	case tSlice:
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			d.skip(d.byte1(), depth+1)
		}
	case tMap:
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			d.bytes()
			d.skip(d.byte1(), depth+1)
		}
	default:
		d.fail(fmt.Errorf("unknown attribute value type %d", t))
	}
}

// Scalar is one attribute value as EachScalar reports it. Str aliases the encoded
// input and must not be kept.
type Scalar struct {
	Kind  ScalarKind
	Str   []byte
	Int   int64
	Float float64
	Bool  bool
}

// ScalarKind is the type of a Scalar.
type ScalarKind uint8

const (
	KindOther ScalarKind = iota // arrays, maps, bytes, empty
	KindString
	KindInt
	KindFloat
	KindBool
)

// EachScalar is ScanScalars without allocating: keys and strings alias b. It is
// for hot loops that test attributes (search over the head).
func EachScalar(b []byte, fn func(key []byte, v Scalar)) error {
	d := decoder{b: b}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		key := d.bytes()
		var v Scalar
		switch t := d.byte1(); t {
		case tStr:
			v = Scalar{Kind: KindString, Str: d.bytes()}
		case tInt:
			v = Scalar{Kind: KindInt, Int: d.varint()}
		case tDouble:
			if b := d.fixed(8); b != nil {
				v = Scalar{Kind: KindFloat, Float: math.Float64frombits(binary.LittleEndian.Uint64(b))}
			}
		case tBool:
			v = Scalar{Kind: KindBool, Bool: d.byte1() != 0}
		default:
			d.skip(t, 0)
		}
		if d.err == nil {
			fn(key, v)
		}
	}
	return d.err
}
