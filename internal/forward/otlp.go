package forward

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	commoncfg "github.com/prometheus/common/config"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// Traces forwards spans by OTLP to every traces destination: ConsumeTraces
// returns once the spans are fsync'd in every destination's queue.
type Traces struct {
	queues []Queue
}

var _ pipeline.RawTraces = (*Traces)(nil)

// ConsumeTraces queues td as one OTLP export request.
func (t *Traces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if t.Full() {
		return overloaded(ErrQueueFull)
	}
	raw, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return fmt.Errorf("marshal forwarded spans: %w", err)
	}
	return appendCounted(t.queues, tenantOf(ctx), td.SpanCount(), raw)
}

// ConsumeRawTraces queues req, an export request the receiver checked, as it
// came: the queue record holds the bytes the destinations will get.
func (t *Traces) ConsumeRawTraces(ctx context.Context, req []byte, spans int) error {
	if t.Full() {
		return overloaded(ErrQueueFull)
	}
	return appendCounted(t.queues, tenantOf(ctx), spans, req)
}

// appendCountedBody appends a request body prefixed with its item count, so
// that the sender batches by items without decoding.
func appendCountedBody(dst []byte, items int, raw []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(items))
	return append(dst, raw...)
}

// concatCodec batches whole records by concatenating their protobuf bodies:
// concatenated messages decode as one whose repeated fields are joined, so
// OTLP export requests and Pyroscope push requests batch without decoding.
// Records go to shards round robin; spans need no order.
type concatCodec struct{ next atomic.Uint64 }

func (c *concatCodec) split(body []byte, emit func(uint64, []byte, int, int64)) error {
	n, l := binary.Uvarint(body)
	if l <= 0 {
		return errBadRecord
	}
	emit(c.next.Add(1), body[l:], int(n), 0)
	return nil
}

func (*concatCodec) encode(parts [][]byte) ([]byte, error) {
	if len(parts) == 1 {
		return parts[0], nil
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}

// newOTLPSender sends export requests to an OTLP/HTTP base URL
// (base/v1/traces) or, for grpc:// and grpcs://, by OTLP gRPC.
func newOTLPSender(d *Destination) (sender, func() error, error) {
	switch {
	case strings.HasPrefix(d.URL, "grpc://"), strings.HasPrefix(d.URL, "grpcs://"):
		return newOTLPGRPCSender(d)
	default:
		s, err := newHTTPSender(d, strings.TrimSuffix(d.URL, "/")+"/v1/traces",
			map[string]string{"Content-Type": "application/x-protobuf"})
		if err != nil {
			return nil, nil, err
		}
		return s.send, func() error { return nil }, nil
	}
}

func newOTLPGRPCSender(d *Destination) (sender, func() error, error) {
	target, secure := strings.CutPrefix(d.URL, "grpcs://")
	if !secure {
		target = strings.TrimPrefix(d.URL, "grpc://")
	}
	target = strings.TrimSuffix(target, "/")
	creds := insecure.NewCredentials()
	if secure {
		tc, err := commoncfg.NewTLSConfig(&d.TLSConfig)
		if err != nil {
			return nil, nil, fmt.Errorf("tls_config: %w", err)
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", target, err)
	}
	send := func(ctx context.Context, tenant string, body []byte) error {
		md := metadata.New(d.Headers)
		if tenant != "" {
			md.Set("X-Scope-OrgID", tenant)
		}
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), d.Queue.Timeout)
		defer cancel()
		// The queued body is already an ExportTraceServiceRequest: it goes
		// out as it is (the answer, a partial-success note, is not read).
		var reply []byte
		return grpcError(conn.Invoke(ctx, otlpTraceExport, body, &reply, grpc.ForceCodec(passCodec{})))
	}
	return send, conn.Close, nil
}

// otlpTraceExport is the OTLP gRPC trace export method.
const otlpTraceExport = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// passCodec sends protobuf bytes as they are and keeps the answer's bytes.
type passCodec struct{}

func (passCodec) Marshal(v any) ([]byte, error)   { return v.([]byte), nil }
func (passCodec) Unmarshal(b []byte, v any) error { *(v.(*[]byte)) = b; return nil }
func (passCodec) Name() string                    { return "proto" }

// grpcError classifies an OTLP gRPC answer as the OTLP specification does:
// the retryable codes are retried (RetryInfo honoured), the others drop.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return &sendError{retryable: true, err: err}
	}
	e := &sendError{
		reason: "grpc_" + strings.ToLower(st.Code().String()),
		err:    fmt.Errorf("export: %s: %s", st.Code(), st.Message()),
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange,
		codes.Unavailable, codes.DataLoss, codes.ResourceExhausted:
		e.retryable = true
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.RetryDelay != nil {
				e.retryAfter = ri.RetryDelay.AsDuration()
			}
		}
	}
	return e
}
