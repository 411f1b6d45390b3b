package spanrow

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// pcommon.Map has no append that skips the duplicate-key check, so filling it
// with PutEmpty costs O(n²): 100k attributes on one span took seconds for
// every search that read it. pdata's protobuf decoder does append, so a map
// with more than bigMap entries is translated to OTLP protobuf (a
// TracesData with one resource holding the attributes) and decoded by pdata
// in linear time. Smaller maps, the usual case, keep the direct path.
const bigMap = 128

// OTLP protobuf field numbers (opentelemetry/proto/common/v1, trace/v1).
const (
	fResourceSpans = 1 // TracesData.resource_spans
	fResource      = 1 // ResourceSpans.resource
	fAttributes    = 1 // Resource.attributes
	fKey           = 1 // KeyValue.key
	fValue         = 2 // KeyValue.value
	fStr           = 1 // AnyValue.string_value
	fBool          = 2
	fInt           = 3
	fDouble        = 4
	fArray         = 5
	fKvlist        = 6
	fBytes         = 7
	fValues        = 1 // ArrayValue.values, KeyValueList.values
)

// bigMapInto decodes n entries into m through protobuf. A key repeated in
// the input keeps its first value.
func (d *decoder) bigMapInto(m pcommon.Map, n, depth int) {
	kvs := d.protoKVs(nil, n, depth)
	if d.err != nil {
		return
	}
	// kvs is a Resource message already: each entry carries the attributes tag.
	var res []byte
	res = protowire.AppendTag(res, fResource, protowire.BytesType)
	res = protowire.AppendBytes(res, kvs)
	var td []byte
	td = protowire.AppendTag(td, fResourceSpans, protowire.BytesType)
	td = protowire.AppendBytes(td, res)
	traces, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(td)
	if err != nil {
		d.fail(fmt.Errorf("decode %d attributes: %w", n, err))
		return
	}
	traces.ResourceSpans().At(0).Resource().Attributes().MoveTo(m)
}

// protoKVs appends n entries as repeated field-1 KeyValue messages (the
// shape of Resource.attributes and KeyValueList.values).
func (d *decoder) protoKVs(dst []byte, n, depth int) []byte {
	seen := make(map[string]struct{}, n)
	var kv []byte
	for i := 0; i < n && d.err == nil; i++ {
		k := d.bytes()
		kv = protowire.AppendTag(kv[:0], fKey, protowire.BytesType)
		kv = protowire.AppendBytes(kv, k)
		kv = protowire.AppendTag(kv, fValue, protowire.BytesType)
		kv = protowire.AppendBytes(kv, d.protoValue(nil, depth))
		if _, dup := seen[string(k)]; dup {
			continue
		}
		seen[string(k)] = struct{}{}
		dst = protowire.AppendTag(dst, fAttributes, protowire.BytesType)
		dst = protowire.AppendBytes(dst, kv)
	}
	return dst
}

// protoValue appends the fields of one AnyValue.
func (d *decoder) protoValue(dst []byte, depth int) []byte {
	switch t := d.byte1(); t {
	case tEmpty:
	case tStr:
		dst = protowire.AppendTag(dst, fStr, protowire.BytesType)
		dst = protowire.AppendBytes(dst, d.bytes())
	case tInt:
		dst = protowire.AppendTag(dst, fInt, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(d.varint()))
	case tDouble:
		if b := d.fixed(8); b != nil {
			dst = protowire.AppendTag(dst, fDouble, protowire.Fixed64Type)
			dst = protowire.AppendFixed64(dst, binary.LittleEndian.Uint64(b))
		}
	case tBool:
		dst = protowire.AppendTag(dst, fBool, protowire.VarintType)
		dst = protowire.AppendVarint(dst, protowire.EncodeBool(d.byte1() != 0))
	case tBytes:
		dst = protowire.AppendTag(dst, fBytes, protowire.BytesType)
		dst = protowire.AppendBytes(dst, d.bytes())
	case tSlice:
		if depth+1 > maxDepth {
			d.fail(errors.New("attributes nested too deeply"))
			return dst
		}
		n := d.count()
		var arr []byte
		for i := 0; i < n && d.err == nil; i++ {
			arr = protowire.AppendTag(arr, fValues, protowire.BytesType)
			arr = protowire.AppendBytes(arr, d.protoValue(nil, depth+1))
		}
		dst = protowire.AppendTag(dst, fArray, protowire.BytesType)
		dst = protowire.AppendBytes(dst, arr)
	case tMap:
		if depth+1 > maxDepth {
			d.fail(errors.New("attributes nested too deeply"))
			return dst
		}
		kvs := d.protoKVs(nil, d.count(), depth+1)
		dst = protowire.AppendTag(dst, fKvlist, protowire.BytesType)
		dst = protowire.AppendBytes(dst, kvs)
	default:
		if d.err == nil {
			d.fail(fmt.Errorf("unknown attribute value type %d", t))
		}
	}
	return dst
}
