package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const (
	tracesPerRequest = 100
	spansPerTrace    = 10
	exportMethod     = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
)

// Load is every request of a run, marshalled before the clock starts.
type Load struct {
	Bodies [][]byte
	IDs    [][16]byte // every trace ID, in send order
	// Errors are the trace IDs whose svc-b server span has status 500: what
	// the selective query must find.
	Errors       int
	EncodedBytes int64
	Spans        int
}

// traceID is a bijection of n (multiplying by an odd constant mod 2^64), so
// IDs are distinct yet look random, behind a per-run prefix.
func traceID(prefix uint64, n uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], prefix)
	binary.BigEndian.PutUint64(id[8:], (n+1)*0x9E3779B97F4A7C15)
	return id
}

// NewLoad builds requests traces of 10 spans each: spans 0-4 in svc-a (a
// frontend), 5-9 in svc-b (a backend calling a database). Start times are
// spread over the hour before now, so searches cover an hour of data.
func NewLoad(requests int, prefix uint64) (*Load, error) {
	l := &Load{Bodies: make([][]byte, requests)}
	end := time.Now().Add(-time.Minute)
	total := requests * tracesPerRequest
	step := time.Hour / time.Duration(total)
	n := 0
	for r := range requests {
		td := ptrace.NewTraces()
		a := newService(td, "svc-a")
		b := newService(td, "svc-b")
		for range tracesPerRequest {
			id := traceID(prefix, uint64(n))
			start := end.Add(-time.Hour + time.Duration(n)*step)
			isErr := n%1000 == 7
			if isErr {
				l.Errors++
			}
			addTrace(a, b, id, start, n, isErr)
			l.IDs = append(l.IDs, id)
			n++
		}
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			return nil, fmt.Errorf("marshal request: %w", err)
		}
		l.Bodies[r] = body
		l.EncodedBytes += int64(len(body))
		l.Spans += tracesPerRequest * spansPerTrace
	}
	return l, nil
}

func newService(td ptrace.Traces, name string) ptrace.SpanSlice {
	rs := td.ResourceSpans().AppendEmpty()
	attrs := rs.Resource().Attributes()
	attrs.PutStr("service.name", name)
	attrs.PutStr("service.version", "1.4.2")
	attrs.PutStr("deployment.environment", "prod")
	attrs.PutStr("host.name", name+"-7f9c6d5b8-x2kqp")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("github.com/example/" + name)
	return ss.Spans()
}

var routes = []string{"/api/orders/{id}", "/api/users/{id}", "/api/cart", "/api/search", "/healthz"}

// addTrace appends one trace: a root server span in svc-a, two internal and
// two client spans under it; the client's call arrives as svc-b's server span,
// which makes four database calls.
func addTrace(a, b ptrace.SpanSlice, id [16]byte, start time.Time, n int, isErr bool) {
	route := routes[n%len(routes)]
	method := "GET"
	if n%4 == 0 {
		method = "POST"
	}
	// Span IDs are random and timings jittered at microsecond precision, as
	// SDKs produce them, so the store cannot compress them better than real data.
	rng := rand.New(rand.NewPCG(uint64(n), 0x5eed))
	var ids [spansPerTrace]pcommon.SpanID
	for i := range ids {
		binary.LittleEndian.PutUint64(ids[i][:], rng.Uint64())
	}
	spanID := func(i int) pcommon.SpanID { return ids[i] }
	jitter := func(d time.Duration) time.Duration {
		return (d/2 + time.Duration(rng.Int64N(int64(d)))).Truncate(time.Microsecond)
	}
	ts := func(off, dur time.Duration) (pcommon.Timestamp, pcommon.Timestamp) {
		off, dur = jitter(off+time.Millisecond), jitter(dur)
		return pcommon.NewTimestampFromTime(start.Add(off)), pcommon.NewTimestampFromTime(start.Add(off + dur))
	}
	add := func(ss ptrace.SpanSlice, i, parent int, name string, kind ptrace.SpanKind, off, dur time.Duration) ptrace.Span {
		s := ss.AppendEmpty()
		s.SetTraceID(id)
		s.SetSpanID(spanID(i))
		if parent >= 0 {
			s.SetParentSpanID(spanID(parent))
		}
		s.SetName(name)
		s.SetKind(kind)
		st, en := ts(off, dur)
		s.SetStartTimestamp(st)
		s.SetEndTimestamp(en)
		return s
	}
	code := int64(200)
	if isErr {
		code = 500
	}
	root := add(a, 0, -1, method+" "+route, ptrace.SpanKindServer, 0, 48*time.Millisecond)
	httpAttrs(root, method, route, code)
	add(a, 1, 0, "authenticate", ptrace.SpanKindInternal, time.Millisecond, 3*time.Millisecond)
	add(a, 2, 0, "render", ptrace.SpanKindInternal, 40*time.Millisecond, 6*time.Millisecond)
	cache := add(a, 3, 0, "GET", ptrace.SpanKindClient, 4*time.Millisecond, time.Millisecond)
	cache.Attributes().PutStr("db.system", "redis")
	cache.Attributes().PutStr("db.operation", "GET")
	call := add(a, 4, 0, method, ptrace.SpanKindClient, 6*time.Millisecond, 32*time.Millisecond)
	httpAttrs(call, method, route, code)
	call.Attributes().PutStr("server.address", "svc-b")

	srv := add(b, 5, 4, method+" "+route, ptrace.SpanKindServer, 7*time.Millisecond, 30*time.Millisecond)
	httpAttrs(srv, method, route, code)
	if isErr {
		srv.Status().SetCode(ptrace.StatusCodeError)
		srv.Status().SetMessage("upstream timeout")
	}
	for i := 6; i < 10; i++ {
		q := add(b, i, 5, "SELECT orders", ptrace.SpanKindClient, time.Duration(8+6*(i-6))*time.Millisecond, 5*time.Millisecond)
		q.Attributes().PutStr("db.system", "postgresql")
		q.Attributes().PutStr("db.name", "shop")
		q.Attributes().PutStr("db.statement", "SELECT id, total FROM orders WHERE user_id = $1")
	}
}

func httpAttrs(s ptrace.Span, method, route string, code int64) {
	s.Attributes().PutStr("http.method", method)
	s.Attributes().PutStr("http.route", route)
	s.Attributes().PutInt("http.status_code", code)
}

// rawCodec sends pre-marshalled ExportTraceServiceRequest bytes as they are,
// so the load generator spends no CPU marshalling during the run; the wire
// bytes are exactly what ptraceotlp's gRPC client would send.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)   { return v.([]byte), nil }
func (rawCodec) Unmarshal(b []byte, v any) error { *(v.(*[]byte)) = b; return nil }
func (rawCodec) Name() string                    { return "proto" }

// RunResult is what the senders saw.
type RunResult struct {
	Start     time.Time // the first request
	Wall      time.Duration
	Retries   int64
	Latencies []time.Duration // per request, including retries
}

// send exports body, retrying RESOURCE_EXHAUSTED and UNAVAILABLE with
// doubling back-off (the OTLP spec's retryable codes for overload).
func send(ctx context.Context, conn *grpc.ClientConn, body []byte, retries *int64) error {
	backoff := 10 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var reply []byte
		err := conn.Invoke(ctx, exportMethod, body, &reply, grpc.ForceCodec(rawCodec{}))
		if err == nil {
			return nil
		}
		if c := status.Code(err); (c != codes.ResourceExhausted && c != codes.Unavailable) || attempt > 50 {
			return fmt.Errorf("export: %w", err)
		}
		atomic.AddInt64(retries, 1)
		time.Sleep(backoff + time.Duration(rand.Int64N(int64(backoff))))
		backoff = min(2*backoff, time.Second)
	}
}

// Run sends every body from senders goroutines, each over its own
// connection, one request at a time.
func (l *Load) Run(addr string, senders int) (*RunResult, error) {
	conns := make([]*grpc.ClientConn, senders)
	for i := range conns {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		defer c.Close()
		conns[i] = c
	}
	res := &RunResult{Latencies: make([]time.Duration, len(l.Bodies))}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	start := time.Now()
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(l.Bodies) {
					return
				}
				t := time.Now()
				if err := send(context.Background(), conns[i], l.Bodies[j], &res.Retries); err != nil {
					errs <- fmt.Errorf("request %d: %w", j, err)
					return
				}
				res.Latencies[j] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	res.Start, res.Wall = start, time.Since(start)
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return res, nil
}
