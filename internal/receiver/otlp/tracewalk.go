package otlp

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/pdatawire"
)

// walkTraces checks, without decoding, that b is an OTLP
// ExportTraceServiceRequest that ptraceotlp's ExportRequest.UnmarshalProto
// accepts, and counts its spans as pdata's SpanCount does.
//
// It follows pdata's generated unmarshal (internal/proto of pdata) rule for
// rule: tags, varints and lengths are read by pdatawire, trace and span IDs
// must be empty or 16 and 8 bytes, unknown fields are skipped, strings are
// not checked for UTF-8. What pdata accepts by rules of its own and
// protobuf's parsers refuse (groups, pdatawire.ErrOwnRule) and the deprecated
// instrumentation_library_spans, which pdata migrates, it does not judge:
// decode is then true and the caller decodes b with pdata, as before the
// walk. The bytes a forwarder sends on are thus ones protobuf's parsers read
// as pdata does (but for UTF-8, which pdata checks neither decoding nor
// encoding). FuzzWalkTracesMatchesPdata holds it to that.
func walkTraces(b []byte) (spans int, decode bool, err error) {
	var w traceWalker
	err = w.walk(b, kRequest)
	if errors.Is(err, errDecode) || errors.Is(err, pdatawire.ErrOwnRule) {
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
		if c := b[pos]; c >= 1<<3 && c < 0x80 { // pdatawire.Tag's common case, inlined
			num, typ, next = int32(c>>3), protowire.Type(c&7), pos+1
		} else if num, typ, next, err = pdatawire.Tag(b, pos); err != nil {
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
			if v, pos, err = pdatawire.Bytes(b, next); err == nil && k > kBytes {
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

var errWireType = errors.New("proto: wrong wire type")

// consumeField reads the value of a known field whose wire type must be want;
// for a length-delimited one it returns the bytes.
func consumeField(b []byte, pos int, typ, want protowire.Type) ([]byte, int, error) {
	if typ != want {
		return nil, 0, errWireType
	}
	switch typ {
	case protowire.VarintType:
		_, pos, err := pdatawire.Varint(b, pos)
		return nil, pos, err
	case protowire.Fixed32Type:
		return fixed(b, pos, 4)
	case protowire.Fixed64Type:
		return fixed(b, pos, 8)
	}
	return pdatawire.Bytes(b, pos)
}

func fixed(b []byte, pos, n int) ([]byte, int, error) {
	if len(b)-pos < n {
		return nil, 0, pdatawire.ErrTruncated
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
