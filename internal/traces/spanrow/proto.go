package spanrow

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrLeaveToPdata wraps every error FromProto returns: the request is
// malformed, or uses a wire form FromProto does not read (see FromProto).
// Either way the caller decodes it with pdata, which gives the right rows or
// the right error message.
var ErrLeaveToPdata = errors.New("request left to pdata")

// leaveError is why FromProto left a request to pdata, where the reason is
// its own; the wire reader's (pdatawire's) are wrapped by leaveToPdata.
type leaveError string

func (e leaveError) Error() string { return "spanrow: " + string(e) + ": " + ErrLeaveToPdata.Error() }
func (e leaveError) Unwrap() error { return ErrLeaveToPdata }

var (
	errGroup      error = leaveError("group")
	errWireType   error = leaveError("wrong wire type")
	errTwice      error = leaveError("singular field or oneof given twice")
	errDeprecated error = leaveError("instrumentation_library_spans")
	errIDLength   error = leaveError("trace or span ID of a wrong length")
	errNoID       error = leaveError("empty trace or span ID")
	errStrindex   error = leaveError("string table index")
	errDeep       error = leaveError("attributes nested too deeply")
	errService    error = leaveError("service.name is not a string")
)

// FromProto appends one row per span of req, the protobuf bytes of an OTLP
// ExportTraceServiceRequest, to dst, without building pdata: it is the
// ingest path's decoder, and pdata's unmarshal and FromTraces cost most of
// a request's CPU, most of it in allocation.
//
// On a nil error the rows are exactly — field for field, blob byte for blob
// byte — what FromTraces gives for the ptrace.Traces that
// ptraceotlp.NewExportRequest().UnmarshalProto(req) decodes. On an error
// (always wrapping ErrLeaveToPdata) it returns dst unchanged in length and
// the caller decodes req with pdata and calls FromTraces, which then gives
// the rows or the right error. FromProto refuses, besides malformed
// requests, what pdata reads by rules of its own or what real senders do
// not send: groups, varints past 64 bits, field numbers past 2^29-1,
// ResourceSpans' deprecated instrumentation_library_spans (field 1000), a
// singular field or oneof member given twice (pdata merges messages), the
// profiles' string table indexes (KeyValue.key_strindex,
// AnyValue.string_value_strindex), attributes nested deeper than the
// codec's maxDepth, a service.name that is not a string, and spans with an
// empty (absent, zero-length or all-zero) trace or span ID, for which
// FromTraces returns ErrEmptyID.
//
// The rows keep no reference into req, whose buffer the caller may reuse.
// Repeated span names, service names, status messages and trace states
// share one string per call.
//
// spans sizes the rows: the request's span count where the caller has it
// (the OTLP receiver's walk counted them), or 0 to have FromProto count
// them first. A wrong count costs a reallocation, never a wrong row.
func FromProto(req []byte, spans int, dst []Span) ([]Span, error) {
	n := spans
	if n <= 0 {
		var err error
		if n, err = countSpans(req); err != nil {
			return dst, leaveToPdata(err)
		}
	}
	d := protoDecoders.Get().(*protoDecoder)
	defer d.release()
	first := len(dst)
	// A span FromProto reads has a trace and a span ID: at least 30 bytes
	// with its tag. A request of more spans than that is refused below, so
	// its count cannot make us allocate a hundred times its size.
	d.rows = slices.Grow(dst, min(n, len(req)/minSpanSize))
	if err := d.request(req); err != nil {
		return dst[:first], leaveToPdata(err)
	}
	return d.finish(first), nil
}

// leaveToPdata makes err, FromProto's own reason or the wire reader's
// (pdatawire's), wrap ErrLeaveToPdata.
func leaveToPdata(err error) error {
	if errors.Is(err, ErrLeaveToPdata) {
		return err
	}
	return fmt.Errorf("spanrow: %w: %w", err, ErrLeaveToPdata)
}

// minSpanSize is the size of the smallest span with IDs: a tag and length,
// a trace ID and a span ID with theirs.
const minSpanSize = 2 + 2 + 16 + 2 + 8

// protoDecoder holds FromProto's scratch between requests.
type protoDecoder struct {
	rows []Span
	// arena collects the rows' attribute and extra blobs; off holds, per
	// row, where its attributes and its extras start.
	arena []byte
	off   []int
	blob  []byte   // a resource or scope blob being built
	attrs [][]byte // a span's attributes' KeyValues
	strs  map[string]string
}

var protoDecoders = sync.Pool{New: func() any {
	return &protoDecoder{strs: make(map[string]string)}
}}

// maxInterned bounds the interning map, whose clearing costs its size.
const maxInterned = 1024

func (d *protoDecoder) release() {
	d.rows = nil
	if cap(d.arena) > 4<<20 || cap(d.blob) > 1<<20 || cap(d.attrs) > 1<<16 {
		d.arena, d.blob, d.attrs = nil, nil, nil // do not keep a rare huge request's buffers
	}
	d.arena, d.off, d.blob = d.arena[:0], d.off[:0], d.blob[:0]
	clear(d.attrs[:cap(d.attrs)]) // keep no references into the request
	d.attrs = d.attrs[:0]
	clear(d.strs)
	protoDecoders.Put(d)
}

// intern returns b as a string shared with earlier equal ones.
func (d *protoDecoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.strs) < maxInterned {
		d.strs[s] = s
	}
	return s
}

// finish copies the blobs into one exactly sized arena for the batch and
// cuts each row's from it, with capped capacities so that none can grow
// into its neighbour.
func (d *protoDecoder) finish(first int) []Span {
	arena := slices.Clone(d.arena)
	d.off = append(d.off, len(arena))
	rows := d.rows[first:]
	for i := range rows {
		a, x, end := d.off[2*i], d.off[2*i+1], d.off[2*i+2]
		rows[i].Attrs = arena[a:x:x]
		if x < end {
			rows[i].Extra = arena[x:end:end]
		}
	}
	return d.rows
}

// OTLP protobuf field numbers (opentelemetry/proto/trace/v1, common/v1).
const (
	pReqResourceSpans = 1

	pRSResource   = 1
	pRSScopeSpans = 2
	pRSSchemaURL  = 3
	pRSDeprecated = 1000

	pResAttributes = 1
	pResDropped    = 2
	pResEntityRefs = 3

	pSSScope     = 1
	pSSSpans     = 2
	pSSSchemaURL = 3

	pScopeName       = 1
	pScopeVersion    = 2
	pScopeAttributes = 3
	pScopeDropped    = 4

	pSpanTraceID       = 1
	pSpanSpanID        = 2
	pSpanTraceState    = 3
	pSpanParentSpanID  = 4
	pSpanName          = 5
	pSpanKind          = 6
	pSpanStart         = 7
	pSpanEnd           = 8
	pSpanAttributes    = 9
	pSpanDroppedAttrs  = 10
	pSpanEvents        = 11
	pSpanDroppedEvents = 12
	pSpanLinks         = 13
	pSpanDroppedLinks  = 14
	pSpanStatus        = 15
	pSpanFlags         = 16

	pEventTime       = 1
	pEventName       = 2
	pEventAttributes = 3
	pEventDropped    = 4

	pLinkTraceID    = 1
	pLinkSpanID     = 2
	pLinkTraceState = 3
	pLinkAttributes = 4
	pLinkDropped    = 5
	pLinkFlags      = 6

	pStatusMessage = 2
	pStatusCode    = 3

	pKVKey      = 1
	pKVValue    = 2
	pKVStrindex = 3

	pAnyStrindex = 8
	pListValues  = 1 // ArrayValue.values, KeyValueList.values
)

const (
	wVarint  = protowire.VarintType
	wFixed32 = protowire.Fixed32Type
	wFixed64 = protowire.Fixed64Type
	wBytes   = protowire.BytesType
)

// countSpans counts req's spans, so that the rows are allocated once.
func countSpans(req []byte) (int, error) {
	n := 0
	err := eachField(req, func(f wfield, _, _ int) error {
		if f.num != pReqResourceSpans {
			return nil
		}
		if err := wantBytes(f); err != nil {
			return err
		}
		return eachField(f.b, func(g wfield, _, _ int) error {
			switch {
			case g.num == pRSDeprecated:
				return errDeprecated
			case g.num != pRSScopeSpans:
				return nil
			case g.typ != wBytes:
				return errWireType
			}
			c, err := countField(g.b, pSSSpans)
			n += c
			return err
		})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// countField counts the values of the length-delimited field num of message b.
func countField(b []byte, num int32) (int, error) {
	r, err := scanRepeated(b, num)
	return r.n, err
}

// request decodes the request's resource spans in order.
func (d *protoDecoder) request(req []byte) error {
	return eachField(req, func(f wfield, _, _ int) error {
		if f.num != pReqResourceSpans {
			return nil
		}
		if err := wantBytes(f); err != nil {
			return err
		}
		return d.resourceSpans(f.b)
	})
}

// resourceSpans decodes one ResourceSpans. Its resource and schema URL may
// follow its scope spans on the wire, so it reads them first.
func (d *protoDecoder) resourceSpans(b []byte) error {
	var res, schema []byte
	var scopes repeated
	var seen fieldSet
	err := eachField(b, func(f wfield, pos, next int) error {
		switch f.num {
		case pRSResource:
			res = f.b
			return seen.once(f, wBytes)
		case pRSSchemaURL:
			schema = f.b
			return seen.once(f, wBytes)
		case pRSScopeSpans:
			return scopes.addBytes(f, pos, next)
		case pRSDeprecated:
			return errDeprecated
		}
		return nil
	})
	if err != nil {
		return err
	}
	resBlob, service, err := d.resource(schema, res)
	if err != nil {
		return err
	}
	for it := scopes.iter(b, pRSScopeSpans); it.more(); {
		if err := d.scopeSpans(it.next(), resBlob, service); err != nil {
			return err
		}
	}
	return nil
}

// resource encodes a resource blob as encodeResource does, and finds the
// service name as FromTraces does: the first service.name attribute.
func (d *protoDecoder) resource(schema, b []byte) ([]byte, string, error) {
	var attrs repeated
	var dropped uint64
	var seen fieldSet
	err := eachField(b, func(f wfield, pos, next int) error {
		switch f.num {
		case pResAttributes:
			return attrs.addBytes(f, pos, next)
		case pResDropped:
			dropped = f.u
			return seen.once(f, wVarint)
		case pResEntityRefs: // FromTraces ignores them; pdata checks their fields
			if err := wantBytes(f); err != nil {
				return err
			}
			return checkStrings(f.b, 4)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	blob := appendRaw(d.blob[:0], schema)
	blob = appendUvarint(blob, uint64(uint32(dropped)))
	mapAt := len(blob)
	blob, err = d.appendMap(blob, b, attrs, pResAttributes, 0)
	d.blob = blob
	if err != nil {
		return nil, "", err
	}
	service, err := serviceName(blob[mapAt:])
	if err != nil {
		return nil, "", err
	}
	return slices.Clone(blob), d.intern(service), nil
}

// serviceName finds the value of the first service.name in an encoded map.
func serviceName(m []byte) ([]byte, error) {
	d := decoder{b: m}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		key := d.bytes()
		t := d.byte1()
		if string(key) != "service.name" {
			d.skip(t, 0)
			continue
		}
		if t != tStr {
			return nil, errService
		}
		return d.bytes(), d.err
	}
	return nil, d.err
}

// checkStrings checks message b whose fields 1 to n are strings, as pdata
// does an EntityRef's.
func checkStrings(b []byte, n int32) error {
	return eachField(b, func(f wfield, _, _ int) error {
		if f.num <= n {
			return wantBytes(f)
		}
		return nil
	})
}

// scopeSpans decodes one ScopeSpans, its scope and schema URL first.
func (d *protoDecoder) scopeSpans(b, resBlob []byte, service string) error {
	var scope, schema []byte
	var spans repeated
	var seen fieldSet
	for pos := 0; pos < len(b); { // not eachField: the loop runs for every span
		f, next, err := readField(b, pos)
		if err != nil {
			return err
		}
		switch f.num {
		case pSSScope, pSSSchemaURL:
			if err := seen.once(f, wBytes); err != nil {
				return err
			}
			if f.num == pSSScope {
				scope = f.b
			} else {
				schema = f.b
			}
		case pSSSpans:
			if f.typ != wBytes {
				return errWireType
			}
			spans.add(pos, next)
		}
		pos = next
	}
	scopeBlob, err := d.scope(schema, scope)
	if err != nil {
		return err
	}
	tmpl := Span{Service: service, Resource: resBlob, Scope: scopeBlob}
	for it := spans.iter(b, pSSSpans); it.more(); {
		if err := d.span(it.next(), &tmpl); err != nil {
			return err
		}
	}
	return nil
}

// scope encodes a scope blob as encodeScope does.
func (d *protoDecoder) scope(schema, b []byte) ([]byte, error) {
	var name, version []byte
	var attrs repeated
	var dropped uint64
	var seen fieldSet
	err := eachField(b, func(f wfield, pos, next int) error {
		switch f.num {
		case pScopeName:
			name = f.b
			return seen.once(f, wBytes)
		case pScopeVersion:
			version = f.b
			return seen.once(f, wBytes)
		case pScopeAttributes:
			return attrs.addBytes(f, pos, next)
		case pScopeDropped:
			dropped = f.u
			return seen.once(f, wVarint)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	blob := appendRaw(d.blob[:0], schema)
	blob = appendRaw(blob, name)
	blob = appendRaw(blob, version)
	blob = appendUvarint(blob, uint64(uint32(dropped)))
	blob, err = d.appendMap(blob, b, attrs, pScopeAttributes, 0)
	d.blob = blob
	if err != nil {
		return nil, err
	}
	return slices.Clone(blob), nil
}
