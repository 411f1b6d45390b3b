package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// recorder keeps what reached the pipeline, and can be told to fail.
type recorder struct {
	spans   int
	points  int
	tenants []string
	err     error
}

func (r *recorder) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if r.err != nil {
		return r.err
	}
	r.spans += td.SpanCount()
	r.tenants = append(r.tenants, pipeline.Tenant(ctx))
	return nil
}

func (r *recorder) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if r.err != nil {
		return r.err
	}
	r.points += md.DataPointCount()
	r.tenants = append(r.tenants, pipeline.Tenant(ctx))
	return nil
}

func sampleTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range n {
		s := ss.Spans().AppendEmpty()
		s.SetName("GET /cart")
		s.SetTraceID(pcommon.TraceID{1, 2, 3})
		s.SetSpanID(pcommon.SpanID{byte(i + 1)})
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(time.Millisecond)))
	}
	return td
}

func sampleMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("requests")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(3)
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	return md
}

// tracesAndMetrics is a recorder, raw or not.
type tracesAndMetrics interface {
	pipeline.Traces
	pipeline.Metrics
}

func newTestHTTP(t *testing.T, rec tracesAndMetrics, maxBytes int64, inflight *limits.Inflight) *httptest.Server {
	t.Helper()
	h := NewHTTP(rec, rec, maxBytes, inflight, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, contentType, contentEncoding string, body []byte, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestHTTPAcceptsProtobufJSONAndGzip(t *testing.T) {
	rec := &recorder{}
	srv := newTestHTTP(t, rec, 1<<20, limits.NewInflight(1<<30))

	protoBody, _ := ptraceotlp.NewExportRequestFromTraces(sampleTraces(3)).MarshalProto()
	jsonBody, _ := ptraceotlp.NewExportRequestFromTraces(sampleTraces(2)).MarshalJSON()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(protoBody)
	_ = zw.Close()

	for _, tc := range []struct {
		name, ct, ce string
		body         []byte
	}{
		{"protobuf", "application/x-protobuf", "", protoBody},
		{"json", "application/json", "", jsonBody},
		{"gzip protobuf", "application/x-protobuf", "gzip", gz.Bytes()},
	} {
		resp := post(t, srv.URL+"/v1/traces", tc.ct, tc.ce, tc.body, "X-Scope-OrgID", "team-a")
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s: status %d: %s", tc.name, resp.StatusCode, b)
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ct {
			t.Errorf("%s: response Content-Type %q, want %q", tc.name, got, tc.ct)
		}
	}
	if rec.spans != 8 {
		t.Errorf("spans received = %d, want 8", rec.spans)
	}
	if rec.tenants[0] != "team-a" {
		t.Errorf("tenant = %q, want team-a", rec.tenants[0])
	}

	mBody, _ := pmetricotlp.NewExportRequestFromMetrics(sampleMetrics()).MarshalProto()
	if resp := post(t, srv.URL+"/v1/metrics", "application/x-protobuf", "", mBody); resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics status %d", resp.StatusCode)
	}
	if rec.points != 1 {
		t.Errorf("data points received = %d, want 1", rec.points)
	}
}

func TestHTTPRejectsBadInputClearly(t *testing.T) {
	rec := &recorder{}
	srv := newTestHTTP(t, rec, 1024, limits.NewInflight(1<<30))
	valid, _ := ptraceotlp.NewExportRequestFromTraces(sampleTraces(1)).MarshalProto()
	big, _ := ptraceotlp.NewExportRequestFromTraces(sampleTraces(100)).MarshalProto()
	var bomb bytes.Buffer // small on the wire, over the limit once inflated
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 1<<20))
	_ = zw.Close()

	f := func(name, ct, ce string, body []byte, wantCode int, wantMsg string) {
		t.Helper()
		resp := post(t, srv.URL+"/v1/traces", ct, ce, body)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantCode || !strings.Contains(string(b), wantMsg) {
			t.Errorf("%s: got %d %q, want %d containing %q", name, resp.StatusCode, b, wantCode, wantMsg)
		}
	}
	f("wrong content type", "text/plain", "", valid, http.StatusUnsupportedMediaType, "Content-Type")
	f("garbage protobuf", "application/x-protobuf", "", []byte("\xff\xff\xff garbage"), http.StatusBadRequest, "decode OTLP traces")
	f("garbage json", "application/json", "", []byte("{not json"), http.StatusBadRequest, "decode OTLP traces")
	f("truncated gzip", "application/x-protobuf", "gzip", bomb.Bytes()[:20], http.StatusBadRequest, "gzip")
	f("unknown encoding", "application/x-protobuf", "br", valid, http.StatusUnsupportedMediaType, "Content-Encoding")
	f("oversized body", "application/x-protobuf", "", big, http.StatusRequestEntityTooLarge, "too large")
	f("gzip bomb", "application/x-protobuf", "gzip", bomb.Bytes(), http.StatusRequestEntityTooLarge, "too large")
	if rec.spans != 0 {
		t.Errorf("bad requests reached the pipeline: %d spans", rec.spans)
	}
	// And the server still serves.
	if resp := post(t, srv.URL+"/v1/traces", "application/x-protobuf", "", valid); resp.StatusCode != http.StatusOK {
		t.Fatalf("valid request after bad ones: %d", resp.StatusCode)
	}
}

func TestHTTPOverloadAnswers429WithRetryAfter(t *testing.T) {
	rec := &recorder{}
	srv := newTestHTTP(t, rec, 1<<20, limits.NewInflight(16)) // smaller than any request
	body, _ := ptraceotlp.NewExportRequestFromTraces(sampleTraces(1)).MarshalProto()
	resp := post(t, srv.URL+"/v1/traces", "application/x-protobuf", "", body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d Retry-After=%q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// A consumer shedding load maps to the same answer.
	rec2 := &recorder{err: pipeline.ErrOverloaded}
	srv2 := newTestHTTP(t, rec2, 1<<20, limits.NewInflight(1<<30))
	resp = post(t, srv2.URL+"/v1/traces", "application/x-protobuf", "", body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("consumer overload: got %d, want 429 with Retry-After", resp.StatusCode)
	}
	rec3 := &recorder{err: pipeline.Invalid(errors.New("span too large"))}
	srv3 := newTestHTTP(t, rec3, 1<<20, limits.NewInflight(1<<30))
	if resp = post(t, srv3.URL+"/v1/traces", "application/x-protobuf", "", body); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("invalid data: got %d, want 400", resp.StatusCode)
	}
}

func TestGRPCExportAndErrors(t *testing.T) {
	rec := &recorder{}
	srv := grpc.NewServer()
	RegisterGRPC(srv, rec, rec, limits.NewInflight(1<<30))
	conn := dialGRPC(t, serveGRPC(t, srv))

	ctx := metadata.AppendToOutgoingContext(context.Background(), "X-Scope-OrgID", "team-b")
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(sampleTraces(4))); err != nil {
		t.Fatal(err)
	}
	if _, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(sampleMetrics())); err != nil {
		t.Fatal(err)
	}
	if rec.spans != 4 || rec.points != 1 || rec.tenants[0] != "team-b" {
		t.Fatalf("received spans=%d points=%d tenants=%v", rec.spans, rec.points, rec.tenants)
	}

	rec.err = pipeline.ErrOverloaded
	_, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(sampleTraces(1)))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("overloaded consumer: got %v, want RESOURCE_EXHAUSTED", err)
	}
	rec.err = pipeline.Invalid(errors.New("bad span"))
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(sampleTraces(1)))
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid data: got %v, want INVALID_ARGUMENT", err)
	}
}

// FuzzHTTPTraces feeds arbitrary bodies through decoding: never a panic,
// anything that is not a valid request is a 4xx, and a consumer that takes
// requests as bytes gets the very answer a decoding one gets.
func FuzzHTTPTraces(f *testing.F) {
	valid, _ := ptraceotlp.NewExportRequestFromTraces(sampleTraces(2)).MarshalProto()
	js, _ := ptraceotlp.NewExportRequestFromTraces(sampleTraces(1)).MarshalJSON()
	f.Add(valid, false)
	f.Add(js, true)
	f.Add([]byte{0x0a, 0x80}, false)
	f.Add(legacyRequest(false), false)
	h := NewHTTP(&recorder{}, &recorder{}, 1<<20, limits.NewInflight(1<<30), slog.New(slog.DiscardHandler)).Handler()
	raw := NewHTTP(&rawRecorder{}, &recorder{}, 1<<20, limits.NewInflight(1<<30), slog.New(slog.DiscardHandler)).Handler()
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := "application/x-protobuf"
		if asJSON {
			ct = "application/json"
		}
		serve := func(h http.Handler) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			return w
		}
		w, rw := serve(h), serve(raw)
		if w.Code != http.StatusOK && (w.Code < 400 || w.Code >= 500) {
			t.Fatalf("status %d for fuzzed body", w.Code)
		}
		if rw.Code != w.Code || !bytes.Equal(rw.Body.Bytes(), w.Body.Bytes()) {
			t.Fatalf("decoding consumer answered %d %q, raw one %d %q", w.Code, w.Body, rw.Code, rw.Body)
		}
	})
}

// A consumer that keeps part of a batch is answered as OTLP partial success:
// 200 with the refused count and reason, over HTTP and gRPC alike.
func TestPartialSuccessIsReported(t *testing.T) {
	partial := &pipeline.PartialError{Rejected: 2, Err: errors.New("2 spans refused: trace too long")}
	rec := &recorder{err: partial}
	srv := newTestHTTP(t, rec, 1<<20, limits.NewInflight(1<<30))
	body, _ := ptraceotlp.NewExportRequestFromTraces(sampleTraces(3)).MarshalProto()
	resp := post(t, srv.URL+"/v1/traces", "application/x-protobuf", "", body)
	b, _ := io.ReadAll(resp.Body)
	got := ptraceotlp.NewExportResponse()
	if err := got.UnmarshalProto(b); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP: %d %v", resp.StatusCode, err)
	}
	if got.PartialSuccess().RejectedSpans() != 2 || !strings.Contains(got.PartialSuccess().ErrorMessage(), "trace too long") {
		t.Errorf("HTTP partial success = %d %q", got.PartialSuccess().RejectedSpans(), got.PartialSuccess().ErrorMessage())
	}

	gs := grpc.NewServer()
	RegisterGRPC(gs, rec, rec, limits.NewInflight(1<<30))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	gresp, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(sampleTraces(3)))
	if err != nil || gresp.PartialSuccess().RejectedSpans() != 2 {
		t.Errorf("gRPC partial success: %v rejected=%d", err, gresp.PartialSuccess().RejectedSpans())
	}
}
