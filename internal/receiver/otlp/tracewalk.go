package otlp

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// walkTraces checks, without decoding, that b is an OTLP
// ExportTraceServiceRequest that ptraceotlp's ExportRequest.UnmarshalProto
// accepts, and counts its spans as pdata's SpanCount does.
//
// It follows pdata's generated unmarshal (internal/proto of pdata) rule for
// rule: trace and span IDs must be empty or 16 and 8 bytes, unknown fields
// are skipped, strings are not checked for UTF-8. What pdata accepts by
// rules of its own and protobuf's parsers refuse (groups, varints past 64
// bits, field numbers past 2^29-1) and the deprecated
// instrumentation_library_spans, which pdata migrates, it does not judge:
// decode is then true and the caller decodes b with pdata, as before the
// walk. The bytes a forwarder sends on are thus ones protobuf's parsers read
// as pdata does (but for UTF-8, which pdata checks neither decoding nor
// encoding). FuzzWalkTracesMatchesPdata holds it to that.
func walkTraces(b []byte) (spans int, decode bool, err error) {
	var w traceWalker
	err = w.walk(b, kRequest)
	if errors.Is(err, errDecode) {
		return 0, true, nil
	}
	return w.spans, false, err
}

// errDecode stops a walk that met something it leaves to pdata.
var errDecode = errors.New("left to pdata")

// kind is a message of the OTLP trace schema, or the type a field holds.
type kind uint8

const (
	kUnknown kind = iota // a field pdata skips
	kDecode              // a field the walk leaves to pdata
	kVarint
	kFixed32
	kFixed64
	kBytes   // a string or bytes field: any length, any content
	kTraceID // empty or 16 bytes
	kSpanID  // empty or 8 bytes
	kRequest
	kResourceSpans
	kResource
	kEntityRef
	kScopeSpans
	kScope
	kSpan
	kEvent
	kLink
	kStatus
	kKeyValue
	kAnyValue
	kArrayValue
	kKeyValueList
)

// schema lists, for each message, the kind of its fields 1, 2, ... from the
// OTLP protos (opentelemetry-proto v1, as pdata compiles them).
var schema = [...][]kind{
	kRequest:       {kResourceSpans},
	kResourceSpans: {kResource, kScopeSpans, kBytes}, // and 1000: kDecode
	kResource:      {kKeyValue, kVarint, kEntityRef},
	kEntityRef:     {kBytes, kBytes, kBytes, kBytes},
	kScopeSpans:    {kScope, kSpan, kBytes},
	kScope:         {kBytes, kBytes, kKeyValue, kVarint},
	kSpan: {kTraceID, kSpanID, kBytes, kSpanID, kBytes, kVarint, kFixed64, kFixed64,
		kKeyValue, kVarint, kEvent, kVarint, kLink, kVarint, kStatus, kFixed32},
	kEvent:        {kFixed64, kBytes, kKeyValue, kVarint},
	kLink:         {kTraceID, kSpanID, kBytes, kKeyValue, kVarint, kFixed32},
	kStatus:       {kUnknown, kBytes, kVarint}, // 1 was the deprecated code, which pdata skips
	kKeyValue:     {kBytes, kAnyValue, kVarint},
	kAnyValue:     {kBytes, kVarint, kVarint, kFixed64, kArrayValue, kKeyValueList, kBytes, kVarint},
	kArrayValue:   {kAnyValue},
	kKeyValueList: {kKeyValue},
}

// fieldKinds is schema as a table indexed by message and field number.
var fieldKinds = func() (t [len(schema)][17]kind) {
	for m, fields := range schema {
		copy(t[m][1:], fields)
	}
	return t
}()

// fieldKind is what field num of message m holds.
func fieldKind(m kind, num int32) kind {
	if uint32(num) < uint32(len(fieldKinds[0])) {
		return fieldKinds[m][num]
	}
	if m == kResourceSpans && num == 1000 { // instrumentation_library_spans
		return kDecode
	}
	return kUnknown
}

// wireType is the wire type pdata requires of a known field of kind k.
func (k kind) wireType() protowire.Type {
	switch k {
	case kVarint:
		return protowire.VarintType
	case kFixed32:
		return protowire.Fixed32Type
	case kFixed64:
		return protowire.Fixed64Type
	}
	return protowire.BytesType
}

type traceWalker struct{ spans int }

// walk checks b as a message m, recursing into its known message fields.
func (w *traceWalker) walk(b []byte, m kind) error {
	for pos := 0; pos < len(b); {
		var num int32
		var typ protowire.Type
		var next int
		var err error
		if c := b[pos]; c >= 1<<3 && c < 0x80 { // consumeTag's common case, inlined
			num, typ, next = int32(c>>3), protowire.Type(c&7), pos+1
		} else if num, typ, next, err = consumeTag(b, pos); err != nil {
			return err
		}
		k := fieldKind(m, num)
		switch {
		case k == kUnknown:
			pos, err = skipField(b, next, typ)
		case k == kDecode:
			return errDecode
		case typ != k.wireType():
			return errWireType
		case typ == protowire.BytesType:
			// Most fields: strings, IDs and messages, only the last two
			// of which need a look inside.
			var v []byte
			if v, pos, err = consumeBytes(b, next); err == nil && k > kBytes {
				err = w.check(k, v)
			}
		default:
			_, pos, err = consumeField(b, next, typ, typ)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var errIDLength = errors.New("invalid length for trace or span ID")

func idLength(v []byte, want int) error {
	if len(v) != 0 && len(v) != want {
		return errIDLength
	}
	return nil
}

// check checks the value v of a trace or span ID or a message field of kind
// k, and counts the spans.
func (w *traceWalker) check(k kind, v []byte) error {
	switch k {
	case kTraceID:
		return idLength(v, 16)
	case kSpanID:
		return idLength(v, 8)
	case kSpan:
		w.spans++
	}
	return w.walk(v, k)
}

var (
	errTruncated   = errors.New("proto: unexpected end of data")
	errOverflow    = errors.New("proto: integer overflow")
	errFieldNumber = errors.New("proto: illegal field number")
	errWireType    = errors.New("proto: wrong wire type")
)

// consumeTag reads a tag as pdata does: the field number is the varint
// shifted right by 3 and truncated to int32, and must be positive. Field
// numbers past protobuf's largest, which pdata truncates, are left to it.
func consumeTag(b []byte, pos int) (int32, protowire.Type, int, error) {
	t, pos, err := consumeVarint(b, pos)
	switch {
	case err != nil:
		return 0, 0, 0, err
	case t>>3 > uint64(protowire.MaxValidNumber):
		return 0, 0, 0, errDecode
	case t>>3 == 0:
		return 0, 0, 0, errFieldNumber
	}
	return int32(t >> 3), protowire.Type(t & 7), pos, nil
}

// consumeVarint reads up to ten bytes as pdata does. One whose bits past
// the 64th are set, which pdata drops and protobuf refuses, is left to pdata.
func consumeVarint(b []byte, pos int) (uint64, int, error) {
	if pos < len(b) && b[pos] < 0x80 { // one byte: inlined
		return uint64(b[pos]), pos + 1, nil
	}
	return consumeLongVarint(b, pos)
}

//go:noinline
func consumeLongVarint(b []byte, pos int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if pos >= len(b) {
			return 0, 0, errTruncated
		}
		c := b[pos]
		pos++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if shift == 63 && c > 1 {
				return 0, 0, errDecode
			}
			return v, pos, nil
		}
	}
	return 0, 0, errOverflow
}

// consumeField reads the value of a known field whose wire type must be want;
// for a length-delimited one it returns the bytes.
func consumeField(b []byte, pos int, typ, want protowire.Type) ([]byte, int, error) {
	if typ != want {
		return nil, 0, errWireType
	}
	switch typ {
	case protowire.VarintType:
		_, pos, err := consumeVarint(b, pos)
		return nil, pos, err
	case protowire.Fixed32Type:
		return fixed(b, pos, 4)
	case protowire.Fixed64Type:
		return fixed(b, pos, 8)
	}
	return consumeBytes(b, pos)
}

// consumeBytes reads a length-delimited value.
func consumeBytes(b []byte, pos int) ([]byte, int, error) {
	n, pos, err := consumeVarint(b, pos)
	if err != nil {
		return nil, 0, err
	}
	if n > uint64(len(b)-pos) {
		return nil, 0, errTruncated
	}
	end := pos + int(n)
	return b[pos:end], end, nil
}

func fixed(b []byte, pos, n int) ([]byte, int, error) {
	if len(b)-pos < n {
		return nil, 0, errTruncated
	}
	return nil, pos + n, nil
}

// skipField skips an unknown field. Groups, which pdata skips by rules of
// its own (a group ends at its first field that is not a group), are left
// to it.
func skipField(b []byte, pos int, typ protowire.Type) (int, error) {
	switch typ {
	case protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type, protowire.BytesType:
		_, end, err := consumeField(b, pos, typ, typ)
		return end, err
	case protowire.StartGroupType, protowire.EndGroupType:
		return 0, errDecode
	}
	return 0, errWireType
}
