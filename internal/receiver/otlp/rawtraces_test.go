package otlp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// rawRecorder takes requests as bytes, as the trace forwarder does; decoded
// ones (JSON, deprecated fields) still reach the recorder.
type rawRecorder struct {
	recorder
	bodies [][]byte
}

func (r *rawRecorder) ConsumeRawTraces(ctx context.Context, req []byte, spans int) error {
	if r.err != nil {
		return r.err
	}
	r.bodies = append(r.bodies, bytes.Clone(req))
	r.spans += spans
	r.tenants = append(r.tenants, pipeline.Tenant(ctx))
	return nil
}

// dialTraces serves the trace service for traces and dials it.
func dialTraces(t *testing.T, traces pipeline.Traces, inflight *limits.Inflight) *grpc.ClientConn {
	t.Helper()
	srv := grpc.NewServer()
	RegisterGRPC(srv, traces, nil, inflight)
	return dialGRPC(t, serveGRPC(t, srv))
}

// serveGRPC serves srv on a free loopback port until the test ends.
func serveGRPC(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// dialGRPC dials addr without TLS until the test ends.
func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// bytesCodec sends a request's bytes as they are, as a client with its own
// encoder (or a broken one) would.
type bytesCodec struct{}

func (bytesCodec) Marshal(v any) ([]byte, error)   { return v.([]byte), nil }
func (bytesCodec) Unmarshal(b []byte, v any) error { *(v.(*[]byte)) = bytes.Clone(b); return nil }
func (bytesCodec) Name() string                    { return "proto" }

func exportBytes(ctx context.Context, conn *grpc.ClientConn, body []byte) ([]byte, error) {
	var reply []byte
	err := conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", body, &reply, grpc.ForceCodec(bytesCodec{}))
	return reply, err
}

// A consumer that takes bytes gets the request's own bytes by gRPC and
// OTLP/HTTP protobuf, with pdata's span count and the sender's tenant; JSON
// and requests pdata must migrate reach it decoded.
func TestRawTracesPassBytesThrough(t *testing.T) {
	td := telemetrygenTraces(3)
	want := marshalTraces(t, td)
	rec := &rawRecorder{}
	conn := dialTraces(t, rec, limits.NewInflight(1<<30))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "X-Scope-OrgID", "team-r")
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatal(err)
	}
	srv := newTestHTTP(t, rec, 1<<20, limits.NewInflight(1<<30))
	if resp := post(t, srv.URL+"/v1/traces", "application/x-protobuf", "", want, "X-Scope-OrgID", "team-r"); resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP: %d", resp.StatusCode)
	}
	if len(rec.bodies) != 2 || !bytes.Equal(rec.bodies[0], want) || !bytes.Equal(rec.bodies[1], want) {
		t.Fatalf("raw consumer got %d bodies, want the request's bytes twice", len(rec.bodies))
	}
	if rec.spans != 2*td.SpanCount() || rec.tenants[0] != "team-r" || rec.tenants[1] != "team-r" {
		t.Fatalf("spans %d (want %d), tenants %v", rec.spans, 2*td.SpanCount(), rec.tenants)
	}

	js, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if resp := post(t, srv.URL+"/v1/traces", "application/json", "", js); resp.StatusCode != http.StatusOK {
		t.Fatalf("JSON: %d", resp.StatusCode)
	}
	if resp := post(t, srv.URL+"/v1/traces", "application/x-protobuf", "", legacyRequest(false)); resp.StatusCode != http.StatusOK {
		t.Fatalf("deprecated field by HTTP: %d", resp.StatusCode)
	}
	if _, err := exportBytes(context.Background(), conn, legacyRequest(false)); err != nil {
		t.Fatalf("deprecated field by gRPC: %v", err)
	}
	if len(rec.bodies) != 2 || rec.spans != 2*td.SpanCount()+td.SpanCount()+2+2 {
		t.Fatalf("after JSON and migrated requests: %d raw bodies, %d spans", len(rec.bodies), rec.spans)
	}
}

// Bad input gets the answer it got before the raw path (same code, same
// message, pdata's), and the consumers' errors map as for decoded spans.
func TestRawTracesAnswerAsDecoded(t *testing.T) {
	bodies := append(oddRequests(), []byte("\xff\xff\xff garbage"), legacyRequest(true))
	full := marshalTraces(t, telemetrygenTraces(1))
	bodies = append(bodies, full[:len(full)/2], full[:len(full)-1])

	plain, raw := &recorder{}, &rawRecorder{}
	plainConn, rawConn := dialTraces(t, plain, limits.NewInflight(1<<30)), dialTraces(t, raw, limits.NewInflight(1<<30))
	plainHTTP := newTestHTTP(t, plain, 1<<20, limits.NewInflight(1<<30))
	rawHTTP := newTestHTTP(t, raw, 1<<20, limits.NewInflight(1<<30))
	bad := 0
	for _, b := range bodies {
		_, perr := exportBytes(context.Background(), plainConn, b)
		_, rerr := exportBytes(context.Background(), rawConn, b)
		if status.Code(perr) != status.Code(rerr) || status.Convert(perr).Message() != status.Convert(rerr).Message() {
			t.Errorf("gRPC %x: decoded path answers %v, raw path %v", b, perr, rerr)
		}
		presp := post(t, plainHTTP.URL+"/v1/traces", "application/x-protobuf", "", b)
		rresp := post(t, rawHTTP.URL+"/v1/traces", "application/x-protobuf", "", b)
		pb, _ := io.ReadAll(presp.Body)
		rb, _ := io.ReadAll(rresp.Body)
		if presp.StatusCode != rresp.StatusCode || !bytes.Equal(pb, rb) {
			t.Errorf("HTTP %x: decoded path answers %d %q, raw path %d %q", b, presp.StatusCode, pb, rresp.StatusCode, rb)
		}
		if perr != nil {
			bad++
		}
	}
	if bad == 0 || bad == len(bodies) {
		t.Fatalf("%d of %d requests refused: the cases should hold good and bad ones", bad, len(bodies))
	}
	if plain.spans != raw.spans {
		t.Errorf("spans taken: %d decoded, %d raw", plain.spans, raw.spans)
	}

	one := marshalTraces(t, sampleTraces(3))
	for _, tc := range []struct {
		err      error
		grpcCode codes.Code
		httpCode int
	}{
		{pipeline.ErrOverloaded, codes.ResourceExhausted, http.StatusTooManyRequests},
		{pipeline.Invalid(errors.New("bad span")), codes.InvalidArgument, http.StatusBadRequest},
		{errors.New("queue broken"), codes.Unavailable, http.StatusServiceUnavailable},
	} {
		raw.err = tc.err
		_, err := exportBytes(context.Background(), rawConn, one)
		if status.Code(err) != tc.grpcCode {
			t.Errorf("%v: gRPC %v, want %v", tc.err, err, tc.grpcCode)
		}
		if tc.grpcCode == codes.ResourceExhausted && !hasRetryInfo(err) {
			t.Errorf("%v: RESOURCE_EXHAUSTED without RetryInfo", tc.err)
		}
		resp := post(t, rawHTTP.URL+"/v1/traces", "application/x-protobuf", "", one)
		if resp.StatusCode != tc.httpCode || (tc.httpCode != http.StatusBadRequest && resp.Header.Get("Retry-After") == "") {
			t.Errorf("%v: HTTP %d Retry-After=%q, want %d", tc.err, resp.StatusCode, resp.Header.Get("Retry-After"), tc.httpCode)
		}
	}

	raw.err = &pipeline.PartialError{Rejected: 1, Err: errors.New("1 span refused")}
	reply, err := exportBytes(context.Background(), rawConn, one)
	got := ptraceotlp.NewExportResponse()
	if err != nil || got.UnmarshalProto(reply) != nil || got.PartialSuccess().RejectedSpans() != 1 {
		t.Errorf("gRPC partial success: %v, rejected %d", err, got.PartialSuccess().RejectedSpans())
	}
	resp := post(t, rawHTTP.URL+"/v1/traces", "application/x-protobuf", "", one)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || got.UnmarshalProto(b) != nil || got.PartialSuccess().RejectedSpans() != 1 {
		t.Errorf("HTTP partial success: %d, rejected %d", resp.StatusCode, got.PartialSuccess().RejectedSpans())
	}
}

func hasRetryInfo(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.RetryDelay.AsDuration() > 0 {
			return true
		}
	}
	return false
}

// The in-flight budget is charged per span on the raw path too.
func TestRawTracesGRPCOverloadedBudget(t *testing.T) {
	rec := &rawRecorder{}
	conn := dialTraces(t, rec, limits.NewInflight(bytesPerItem)) // one span's worth
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := exportBytes(ctx, conn, marshalTraces(t, sampleTraces(1))); err != nil {
		t.Fatalf("one span: %v", err)
	}
	_, err := exportBytes(ctx, conn, marshalTraces(t, sampleTraces(2)))
	if status.Code(err) != codes.ResourceExhausted || !hasRetryInfo(err) {
		t.Fatalf("two spans over a one-span budget: %v, want RESOURCE_EXHAUSTED with RetryInfo", err)
	}
	if rec.spans != 1 {
		t.Fatalf("%d spans taken, want 1", rec.spans)
	}
}
