package otlp

import (
	"bytes"
	"context"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// The OTLP gRPC TraceService for a consumer that takes raw requests: the
// same method as ptraceotlp's, whose request message keeps the bytes it
// came in after walkTraces checked them.
//
// Messages reach it through pdata's gRPC codec, which pdata registers as
// the process's "proto" codec: it hands any message with pdata's
// SizeProto/MarshalProto/UnmarshalProto methods the wire bytes, so this
// service decodes nothing with pdata's types nor protobuf's.
// TestRawTracesPassBytesThrough fails should that change.
var rawTraceService = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*rawTraceExporter)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: rawTraceExportHandler}},
	Metadata:    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

type rawTraceExporter interface {
	exportRaw(context.Context, *rawTraceRequest) (*rawMessage, error)
}

func rawTraceExportHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := &rawTraceRequest{}
	if err := dec(in); err != nil {
		return nil, err
	}
	defer in.release()
	export := srv.(rawTraceExporter).exportRaw
	if interceptor == nil {
		return export(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/opentelemetry.proto.collector.trace.v1.TraceService/Export"}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return export(ctx, req.(*rawTraceRequest))
	})
}

// rawTraceRequest is an ExportTraceServiceRequest: its bytes and span count
// once walkTraces accepted them, or, for a request it left to pdata, its
// decoded form.
type rawTraceRequest struct {
	body      []byte
	buf       *[]byte // body's buffer, from bodies
	spans     int
	isDecoded bool // decoded holds the request, body nothing
	decoded   ptraceotlp.ExportRequest
}

// bodies are the buffers requests are copied into, reused: a request of
// thousands of spans is hundreds of kB, garbage once the consumer returns
// (RawTraces' consumers keep nothing).
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// release gives body's buffer back once the request is answered.
func (r *rawTraceRequest) release() {
	if r.buf != nil {
		bodies.Put(r.buf)
		r.buf, r.body = nil, nil
	}
}

// UnmarshalProto keeps a copy of b: the codec frees its buffer on return. A request
// the walk refuses gets pdata's error, which gRPC answers as it did before
// (INTERNAL, "grpc: error unmarshalling request: ...").
func (r *rawTraceRequest) UnmarshalProto(b []byte) error {
	spans, decode, err := walkTraces(b)
	if err != nil {
		return decodeError(b, err)
	}
	if decode {
		r.isDecoded, r.decoded = true, ptraceotlp.NewExportRequest()
		return r.decoded.UnmarshalProto(b)
	}
	r.buf = bodies.Get().(*[]byte)
	*r.buf = append((*r.buf)[:0], b...)
	r.body, r.spans = *r.buf, spans
	return nil
}

func (r *rawTraceRequest) SizeProto() int              { return len(r.body) }
func (r *rawTraceRequest) MarshalProto(buf []byte) int { return copy(buf, r.body) }

// rawMessage is an encoded message, here the export response.
type rawMessage struct{ b []byte }

func (m *rawMessage) SizeProto() int              { return len(m.b) }
func (m *rawMessage) MarshalProto(buf []byte) int { return copy(buf, m.b) }
func (m *rawMessage) UnmarshalProto(b []byte) error {
	m.b = bytes.Clone(b)
	return nil
}

// decodeError is pdata's own error for b, which walkTraces refused, so that
// a client is told what it was told before the walk existed.
func decodeError(b []byte, walkErr error) error {
	if err := ptraceotlp.NewExportRequest().UnmarshalProto(b); err != nil {
		return err
	}
	return walkErr // only if the walk and pdata disagree, which the fuzz test rules out
}
