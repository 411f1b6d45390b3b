package otlp

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// walkTraces checks, without decoding, that b is an OTLP
// ExportTraceServiceRequest that ptraceotlp's ExportRequest.UnmarshalProto
// accepts, and counts its spans as pdata's SpanCount does. legacy reports
// spans in the deprecated instrumentation_library_spans field, which pdata
// migrates on decoding: such a request takes the decoding path.
//
// It follows pdata's generated unmarshal (internal/proto of pdata) rule for
// rule rather than protobuf's: tags are read as pdata reads them (a field
// number truncated to int32, varints of up to ten bytes whatever the last
// holds), unknown fields and groups are skipped as pdata skips them, trace
// and span IDs must be empty or 16 and 8 bytes, and strings are not checked
// for UTF-8. FuzzWalkTracesMatchesPdata holds it to that.
func walkTraces(b []byte) (spans int, legacy bool, err error) {
	var w traceWalker
	for pos := 0; pos < len(b); {
		var num int32
		var typ protowire.Type
		if num, typ, pos, err = consumeTag(b, pos); err != nil {
			return 0, false, err
		}
		if num != 1 {
			if pos, err = skipField(b, pos, typ); err != nil {
				return 0, false, err
			}
			continue
		}
		var v []byte
		if v, pos, err = consumeField(b, pos, typ, protowire.BytesType); err != nil {
			return 0, false, err
		}
		w.resource = resourceCount{}
		if err = w.walk(v, kResourceSpans); err != nil {
			return 0, false, err
		}
		r := w.resource
		if r.scopes > 0 {
			spans += r.spans
		} else {
			spans += r.legacySpans // pdata keeps the deprecated field only then
		}
		legacy = legacy || r.legacyScopes > 0
	}
	return spans, legacy, nil
}

// kind is a message of the OTLP trace schema, or the type a field holds.
type kind uint8

const (
	kUnknown kind = iota // a field pdata skips
	kVarint
	kFixed32
	kFixed64
	kBytes   // a string or bytes field: any length, any content
	kTraceID // empty or 16 bytes
	kSpanID  // empty or 8 bytes
	kResourceSpans
	kResource
	kEntityRef
	kScopeSpans
	kLegacyScopeSpans // ResourceSpans' deprecated instrumentation_library_spans
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
	kResourceSpans:    {kResource, kScopeSpans, kBytes}, // and 1000: kLegacyScopeSpans
	kResource:         {kKeyValue, kVarint, kEntityRef},
	kEntityRef:        {kBytes, kBytes, kBytes, kBytes},
	kScopeSpans:       {kScope, kSpan, kBytes},
	kLegacyScopeSpans: {kScope, kSpan, kBytes},
	kScope:            {kBytes, kBytes, kKeyValue, kVarint},
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
	if m == kResourceSpans && num == 1000 {
		return kLegacyScopeSpans
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

// resourceCount is what one ResourceSpans holds: SpanCount counts its
// scope_spans, or its deprecated field's spans when it has no scope_spans.
type resourceCount struct {
	scopes, spans             int
	legacyScopes, legacySpans int
}

type traceWalker struct{ resource resourceCount }

// walk checks b as a message m, recursing into its known message fields.
func (w *traceWalker) walk(b []byte, m kind) error {
	for pos := 0; pos < len(b); {
		var num int32
		var typ protowire.Type
		var next int
		var err error
		if c := b[pos]; c >= 1<<3 && c < 0x80 { // consumeTag's common case, inlined
			num, typ, next = int32(c>>3), protowire.Type(c&7), pos+1
		} else if num, typ, next, err = consumeLongTag(b, pos); err != nil {
			return err
		}
		k := fieldKind(m, num)
		switch {
		case k == kUnknown:
			pos, err = skipField(b, next, typ)
		case typ != k.wireType():
			return errWireType
		case typ == protowire.BytesType:
			// Most fields: strings, IDs and messages, only the last two
			// of which need a look inside.
			var v []byte
			if v, pos, err = consumeBytes(b, next); err == nil && k > kBytes {
				err = w.check(m, k, v)
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
// k in message m, and counts what SpanCount counts.
func (w *traceWalker) check(m, k kind, v []byte) error {
	switch k {
	case kTraceID:
		return idLength(v, 16)
	case kSpanID:
		return idLength(v, 8)
	case kScopeSpans:
		w.resource.scopes++
	case kLegacyScopeSpans:
		w.resource.legacyScopes++
	case kSpan:
		if m == kScopeSpans {
			w.resource.spans++
		} else {
			w.resource.legacySpans++
		}
	}
	return w.walk(v, k)
}

var (
	errTruncated   = errors.New("proto: unexpected end of data")
	errOverflow    = errors.New("proto: integer overflow")
	errFieldNumber = errors.New("proto: illegal field number")
	errWireType    = errors.New("proto: wrong wire type")
	errEndGroup    = errors.New("proto: unexpected end of group")
)

// consumeTag reads a tag as pdata does: the field number is the varint
// shifted right by 3 and truncated to int32, and must be positive.
func consumeTag(b []byte, pos int) (int32, protowire.Type, int, error) {
	if pos < len(b) && b[pos] >= 1<<3 && b[pos] < 0x80 { // fields 1 to 15: inlined
		return int32(b[pos] >> 3), protowire.Type(b[pos] & 7), pos + 1, nil
	}
	return consumeLongTag(b, pos)
}

//go:noinline
func consumeLongTag(b []byte, pos int) (int32, protowire.Type, int, error) {
	t, pos, err := consumeVarint(b, pos)
	if err != nil {
		return 0, 0, 0, err
	}
	num := int32(t >> 3)
	if num <= 0 {
		return 0, 0, 0, errFieldNumber
	}
	return num, protowire.Type(t & 7), pos, nil
}

// consumeVarint reads up to ten bytes as pdata does: bits past the 64th are
// dropped, not refused as protowire.ConsumeVarint refuses them.
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

// skipField skips an unknown field as pdata's proto.ConsumeUnknown does,
// quirks included: a group ends at its first field that is not a group
// itself, and end-group tags need not match their start.
func skipField(b []byte, pos int, typ protowire.Type) (int, error) {
	depth := 0
	for pos < len(b) {
		switch typ {
		case protowire.StartGroupType:
			depth++
		case protowire.EndGroupType:
			if depth == 0 {
				return 0, errEndGroup
			}
			depth--
		case protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type, protowire.BytesType:
			_, end, err := consumeField(b, pos, typ, typ)
			return end, err
		default:
			return 0, errWireType
		}
		if depth == 0 {
			return pos, nil
		}
		var err error
		if _, typ, pos, err = consumeTag(b, pos); err != nil {
			return 0, err
		}
	}
	return 0, errTruncated
}
