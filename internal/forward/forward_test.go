package forward

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// collector is an OTLP/HTTP trace destination whose answers a test scripts:
// answer returns the status for the n-th request (0-based), or 0 to decode
// and keep the spans and answer 200.
type collector struct {
	answer func(n int, w http.ResponseWriter) int
	reqs   atomic.Int64
	mu     sync.Mutex
	spans  map[string]int // span name → copies received
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(c.reqs.Add(1) - 1)
	body, _ := io.ReadAll(r.Body)
	if c.answer != nil {
		if code := c.answer(n, w); code != 0 {
			w.WriteHeader(code)
			fmt.Fprintf(w, "scripted %d", code)
			return
		}
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				c.spans[spans.At(k).Name()]++
			}
		}
	}
	w.WriteHeader(http.StatusOK)
}

// received returns how many distinct spans arrived and how many copies in all.
func (c *collector) received() (distinct, copies int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.spans {
		distinct++
		copies += n
	}
	return distinct, copies
}

// env is a forwarder with one traces destination on a real durable queue.
type env struct {
	fwd *Forwarder
	reg *prometheus.Registry
	dir string
}

func fastQueue() QueueConfig {
	return QueueConfig{BatchDeadline: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Timeout: 2 * time.Second, Shards: 2, MaxBatchItems: 50}
}

func startEnv(t *testing.T, url string, q QueueConfig, dir string) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	m := startEnvManual(t, url, q, dir)
	t.Cleanup(m.stop)
	return m.env
}

// send queues n spans named prefix-0.. one request each and fails unless
// each is acknowledged.
func (e *env) send(t *testing.T, prefix string, n int) {
	t.Helper()
	for i := range n {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(fmt.Sprintf("%s-%d", prefix, i))
		sp.SetTraceID(pcommon.TraceID{1, 15: byte(i)})
		sp.SetSpanID(pcommon.SpanID{2, 7: byte(i)})
		if err := e.fwd.Traces.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatalf("span %d: %v", i, err)
		}
	}
}

// metric returns the value of the counter or gauge name whose labels include
// want (name=value pairs).
func (e *env) metric(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, want) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			found = found || (l.GetName() == want[i] && l.GetValue() == want[i+1])
		}
		if !found {
			return false
		}
	}
	return true
}

func eventually(t *testing.T, timeout time.Duration, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) delivered(t *testing.T, c *collector, want int) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		d, _ := c.received()
		return d == want, fmt.Sprintf("destination holds %d distinct spans, want %d", d, want)
	})
}

// 5xx and 429 answers keep the data queued and retry it with back-off; every
// span arrives and the retries are counted.
func TestRetriesServerErrors(t *testing.T) {
	c := &collector{spans: map[string]int{}, answer: func(n int, w http.ResponseWriter) int {
		switch {
		case n < 3:
			return http.StatusServiceUnavailable
		case n < 5:
			return http.StatusTooManyRequests
		case n == 5:
			return http.StatusBadGateway
		}
		return 0
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	e := startEnv(t, srv.URL, fastQueue(), "")
	e.send(t, "s", 20)
	e.delivered(t, c, 20)
	if r := e.metric(t, "vispyr_forward_items_retried_total"); r == 0 {
		t.Error("no retries counted after 5xx and 429 answers")
	}
	if f := e.metric(t, "vispyr_forward_items_failed_total"); f == 0 {
		t.Error("no failed sends counted")
	}
	if d := e.metric(t, "vispyr_forward_items_dropped_total"); d != 0 {
		t.Errorf("%v spans dropped on retryable errors", d)
	}
	eventually(t, 5*time.Second, func() (bool, string) {
		b, r := e.metric(t, "vispyr_forward_queue_bytes"), e.metric(t, "vispyr_forward_queue_records")
		return b == 0 && r == 0, fmt.Sprintf("queue still holds %v bytes, %v records after delivery", b, r)
	})
	if s := e.metric(t, "vispyr_forward_items_total", "destination", "dest", "signal", "traces"); s < 20 {
		t.Errorf("vispyr_forward_items_total = %v, want at least 20", s)
	}
}

// The queue's gauges say what the queue holds at the scrape: right after the
// acknowledgements, with the destination down, they count every request,
// and once it is back they fall to zero only when the cursor has moved past
// them (so a 0 can be trusted before a restart).
func TestQueueGaugesAreLive(t *testing.T) {
	down, c, srv := switchableDestination(t, true)
	e := startEnv(t, srv.URL, fastQueue(), "")
	e.send(t, "live", 7)
	if r := e.metric(t, "vispyr_forward_queue_records"); r != 7 {
		t.Errorf("vispyr_forward_queue_records right after 7 acknowledged requests = %v, want 7", r)
	}
	if b := e.metric(t, "vispyr_forward_queue_bytes"); b == 0 {
		t.Error("vispyr_forward_queue_bytes = 0 with 7 requests queued")
	}
	down.Store(false)
	e.delivered(t, c, 7)
	eventually(t, 5*time.Second, func() (bool, string) {
		r := e.metric(t, "vispyr_forward_queue_records")
		return r == 0, fmt.Sprintf("queue still holds %v records after delivery", r)
	})
	if h := e.metric(t, "vispyr_forward_destination_healthy"); h != 1 {
		t.Errorf("vispyr_forward_destination_healthy = %v after delivery, want 1", h)
	}
}

// Retry-After is honoured: no request comes sooner than the destination
// asked, whatever the back-off says.
func TestHonoursRetryAfter(t *testing.T) {
	var first, second atomic.Int64
	c := &collector{spans: map[string]int{}, answer: func(n int, w http.ResponseWriter) int {
		switch n {
		case 0:
			first.Store(time.Now().UnixNano())
			w.Header().Set("Retry-After", "1")
			return http.StatusTooManyRequests
		case 1:
			second.Store(time.Now().UnixNano())
		}
		return 0
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	q := fastQueue()
	q.Shards = 1
	q.MaxBatchItems = 100
	q.BatchDeadline = 200 * time.Millisecond
	e := startEnv(t, srv.URL, q, "")
	e.send(t, "s", 3)
	e.delivered(t, c, 3)
	if wait := time.Duration(second.Load() - first.Load()); wait < time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 1", wait)
	}
}

// A 4xx other than 429 is permanent: the batch is dropped once, counted by
// reason, and what follows still flows.
func TestDropsPermanentErrors(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	var refused atomic.Int64
	c := &collector{spans: map[string]int{}, answer: func(n int, w http.ResponseWriter) int {
		if refuse.Load() {
			refused.Add(1)
			return http.StatusBadRequest
		}
		return 0
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	q := fastQueue()
	q.Shards = 1
	e := startEnv(t, srv.URL, q, "")
	e.send(t, "bad", 5)
	eventually(t, 5*time.Second, func() (bool, string) {
		d := e.metric(t, "vispyr_forward_items_dropped_total", "reason", "http_400")
		return d == 5, fmt.Sprintf("%v spans counted dropped with reason http_400, want 5", d)
	})
	before := refused.Load()
	time.Sleep(300 * time.Millisecond) // a retry storm would show here
	if after := refused.Load(); after != before {
		t.Fatalf("a 400 was retried: %d refused requests, then %d", before, after)
	}
	refuse.Store(false)
	e.send(t, "good", 5)
	e.delivered(t, c, 5)
}

// A slow destination (slower than the request timeout) and one answering
// garbage instead of HTTP keep the data queued; once it behaves, all of it
// arrives.
func TestSlowAndGarbageDestinations(t *testing.T) {
	var mode atomic.Int32 // 0 slow, 1 garbage, 2 good
	c := &collector{spans: map[string]int{}}
	good := httptest.NewServer(c)
	defer good.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				switch mode.Load() {
				case 0:
					time.Sleep(500 * time.Millisecond) // past the 200ms timeout
				case 1:
					_, _ = bufio.NewReader(conn).ReadString('\n')
					_, _ = conn.Write([]byte("\x00\x01 this is not HTTP\r\n\r\n"))
				default:
					proxy(conn, good.Listener.Addr().String())
				}
			}()
		}
	}()
	q := fastQueue()
	q.Timeout = 200 * time.Millisecond
	e := startEnv(t, "http://"+ln.Addr().String(), q, "")
	e.send(t, "s", 10)
	time.Sleep(600 * time.Millisecond)
	mode.Store(1)
	time.Sleep(300 * time.Millisecond)
	if d, _ := c.received(); d != 0 {
		t.Fatalf("%d spans arrived before the destination behaved", d)
	}
	if f := e.metric(t, "vispyr_forward_items_failed_total"); f == 0 {
		t.Error("no failed sends counted for a slow and a garbage destination")
	}
	mode.Store(2)
	e.delivered(t, c, 10)
	if d := e.metric(t, "vispyr_forward_items_dropped_total"); d != 0 {
		t.Errorf("%v spans dropped on timeouts and garbage", d)
	}
}

// proxy pipes conn to addr both ways.
func proxy(conn net.Conn, addr string) {
	up, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(up, conn) }()
	_, _ = io.Copy(conn, up)
}

// A full queue refuses ingest as overload (429/503 with Retry-After upstream)
// instead of growing: nothing acknowledged is dropped, and ingest resumes
// once the destination drains the queue.
func TestFullQueueRefusesIngest(t *testing.T) {
	down, c, srv := switchableDestination(t, true)
	q := fastQueue()
	q.MaxBytes = 1 << 20
	e := startEnv(t, srv.URL, q, "")
	attr := strings.Repeat("x", 4096)
	acked := 0
	var refusal error
	for i := 0; i < 2000 && refusal == nil; i++ {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(fmt.Sprintf("big-%d", i))
		sp.Attributes().PutStr("pad", attr)
		if err := e.fwd.Traces.ConsumeTraces(context.Background(), td); err != nil {
			refusal = err
			break
		}
		acked++
	}
	if !errors.Is(refusal, pipeline.ErrOverloaded) {
		t.Fatalf("after %d spans the queue answered %v, want overload", acked, refusal)
	}
	if !e.fwd.Full() {
		t.Error("forwarder does not report a full queue")
	}
	if b := e.metric(t, "vispyr_forward_queue_bytes"); b > 2<<20 {
		t.Errorf("queue holds %v bytes, bound 1 MiB", b)
	}
	down.Store(false)
	e.delivered(t, c, acked)
	eventually(t, 5*time.Second, func() (bool, string) {
		return !e.fwd.Full(), "queue still full after the destination took everything"
	})
	e.send(t, "after", 3)
	e.delivered(t, c, acked+3)
}

// A record that does not decode is skipped and counted; the records around
// it are delivered.
func TestCorruptRecordIsCounted(t *testing.T) {
	c := &collector{spans: map[string]int{}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	e := startEnv(t, srv.URL, fastQueue(), "")
	e.send(t, "before", 3)
	if err := e.fwd.queues[0].Append([]byte{0xff, 0xff}); err != nil { // a tenant length past the end
		t.Fatal(err)
	}
	e.send(t, "after", 3)
	e.delivered(t, c, 6)
	if d := e.metric(t, "vispyr_forward_items_dropped_total", "reason", "corrupt_record"); d != 1 {
		t.Errorf("%v corrupt records counted, want 1", d)
	}
}

// What was acknowledged but not delivered when the process stopped is
// delivered by the next process on the same queue directory.
func TestBacklogSurvivesRestart(t *testing.T) {
	down, c, srv := switchableDestination(t, true)
	dir := t.TempDir()
	first := startEnvManual(t, srv.URL, fastQueue(), dir)
	first.send(t, "s", 10)
	first.stop()
	down.Store(false)
	e := startEnv(t, srv.URL, fastQueue(), dir)
	e.delivered(t, c, 10)
}

// manualEnv is an env the test stops itself, to restart on the same queue.
type manualEnv struct {
	*env
	stop func()
}

func startEnvManual(t *testing.T, url string, q QueueConfig, dir string) manualEnv {
	t.Helper()
	fwd, reg, stop := runForwarder(t, Config{Traces: []Destination{{Name: "dest", URL: url, Queue: q}}}, dir)
	return manualEnv{&env{fwd: fwd, reg: reg, dir: dir}, stop}
}

// runForwarder starts a forwarder for cfg on dir; stop ends its Run (an
// error of Run fails the test) and closes it, once however often called.
func runForwarder(t *testing.T, cfg Config, dir string) (*Forwarder, *prometheus.Registry, func()) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	fwd, err := New(cfg, dir, OpenWALQueue(logger, reg), logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	var once sync.Once
	return fwd, reg, func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
			_ = fwd.Close()
		})
	}
}

// The health the status page shows reaches /metrics too: healthy while the
// destination answers, 0 with the error on Status while it fails, healthy
// again (and a newer last success) once it answers.
func TestHealthGauges(t *testing.T) {
	down, c, srv := switchableDestination(t, false)
	e := startEnv(t, srv.URL, fastQueue(), "")
	gauges := func() (healthy, last float64) {
		return e.metric(t, "vispyr_forward_destination_healthy", "destination", "dest"),
			e.metric(t, "vispyr_forward_last_success_timestamp_seconds", "destination", "dest")
	}
	e.send(t, "up", 3)
	e.delivered(t, c, 3)
	var firstOK float64
	eventually(t, 5*time.Second, func() (bool, string) {
		h, l := gauges()
		firstOK = l
		return h == 1 && l > 0, fmt.Sprintf("healthy=%v last success=%v after delivery", h, l)
	})
	down.Store(true)
	e.send(t, "down", 3)
	eventually(t, 5*time.Second, func() (bool, string) {
		h, _ := gauges()
		st := e.fwd.Status()[0]
		return h == 0 && !st.Healthy && strings.Contains(st.LastError, "503"),
			fmt.Sprintf("healthy=%v, status %+v while the destination answers 503", h, st)
	})
	down.Store(false)
	e.delivered(t, c, 6)
	eventually(t, 5*time.Second, func() (bool, string) {
		h, l := gauges()
		return h == 1 && l > firstOK, fmt.Sprintf("healthy=%v last success=%v (first %v) after recovery", h, l, firstOK)
	})
}

// A request the receiver hands on as bytes reaches the destination as those
// very bytes (a field the gateway knows nothing of included), with the
// sender's tenant, and its spans count as items.
func TestRawTracesForwardedAsSent(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	var tenants []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, b)
		tenants = append(tenants, r.Header.Get("X-Scope-OrgID"))
	}))
	defer srv.Close()
	e := startEnv(t, srv.URL, fastQueue(), "")
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := range 3 {
		spans.AppendEmpty().SetName(fmt.Sprintf("raw-%d", i))
	}
	req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	req = protowire.AppendVarint(protowire.AppendTag(req, 99, protowire.VarintType), 7)
	if err := e.fwd.Traces.ConsumeRawTraces(pipeline.WithTenant(context.Background(), "team-x"), req, 3); err != nil {
		t.Fatal(err)
	}
	// Counted once the destination's answer is in.
	eventually(t, 10*time.Second, func() (bool, string) {
		n := e.metric(t, "vispyr_forward_items_total", "signal", "traces")
		return n == 3, fmt.Sprintf("vispyr_forward_items_total = %v, want 3", n)
	})
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || !bytes.Equal(bodies[0], req) || tenants[0] != "team-x" {
		t.Fatalf("destination got %d requests, the first %x with tenant %q; want %x with team-x", len(bodies), bodies[0], tenants[0], req)
	}
}

// switchableDestination is a trace destination that answers 503 while down
// is set (as it starts: down) and takes everything otherwise.
func switchableDestination(t *testing.T, down bool) (*atomic.Bool, *collector, *httptest.Server) {
	t.Helper()
	var d atomic.Bool
	d.Store(down)
	c := &collector{spans: map[string]int{}, answer: func(int, http.ResponseWriter) int {
		if d.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &d, c, srv
}
