// Package diskfull runs Vispyr on a small tmpfs, fills it with real writes to
// every store and checks that a full disk is answered, never crashed on, and
// recovered from without a restart.
package diskfull

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

const (
	tmpfsSize = 64 << 20
	reserve   = 16 << 20
)

// mountTmpfs mounts a fresh tmpfs of tmpfsSize, unmounted when the test ends
// (after Vispyr is killed: cleanups run last-registered first).
func mountTmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", tmpfsSize), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): the disk-full test needs root or CAP_SYS_ADMIN", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs: %v", err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// grow extends the filler file so that only leave bytes stay free.
func grow(t *testing.T, filler string, leave int64) {
	t.Helper()
	f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	n := freeBytes(t, filepath.Dir(filler)) - leave
	if n <= 0 {
		return
	}
	// fallocate takes real pages on tmpfs; retry smaller when the estimate
	// is a page or two too big.
	for ; n > 0; n -= 64 << 10 {
		if err := syscall.Fallocate(int(f.Fd()), 0, fi.Size(), n); err == nil {
			return
		}
	}
	t.Fatalf("cannot grow the filler file")
}

// refusal is one refused write as the client saw it.
type refusal struct {
	status, retryAfter, body string
}

// writer sends uniquely named data to every store and remembers what was
// acknowledged, and how the first refusal of each kind looked.
type writer struct {
	v      *harness.Vispyr
	client *http.Client
	grpc   ptraceotlp.GRPCClient
	round  int

	series   int      // remote-write series acknowledged (one sample each)
	traces   []string // trace IDs acknowledged, hex
	services []string // profiled services acknowledged
	lines    []string // ids of log lines acknowledged (Loki push, OTLP logs, Faro)
	refused  map[string]refusal
}

func newWriter(t *testing.T, v *harness.Vispyr) *writer {
	conn, err := grpc.NewClient(v.OTLPGRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &writer{v: v, client: v.HTTPClient(), grpc: ptraceotlp.NewGRPCClient(conn), refused: map[string]refusal{}}
}

// send writes one batch to each store; it reports how many were refused.
func (w *writer) send(t *testing.T) (refused int) {
	t.Helper()
	w.round++
	note := func(kind string, ok bool, r refusal) {
		if ok {
			return
		}
		refused++
		if _, seen := w.refused[kind]; !seen {
			w.refused[kind] = r
		}
	}

	// Remote write, as Prometheus sends it after an outage: 100 series of
	// 250 samples, two full TSDB chunks each, which a WAL replay m-maps.
	req := &prompb.WriteRequest{}
	start := time.Now().Add(-250 * time.Second).UnixMilli()
	for i := range 100 {
		ts := prompb.TimeSeries{Labels: harness.Labels("__name__", "diskfull_test", "round", fmt.Sprint(w.round), "i", fmt.Sprint(i))}
		for j := range 250 {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: start + int64(j)*1000, Value: float64(w.round*j + i)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	res, err := harness.RemoteWrite(w.client, w.v.MetricsURL("/api/v1/write"), req)
	if err != nil {
		t.Fatalf("remote write: %v", err)
	}
	if res.Status == http.StatusNoContent {
		w.series += len(req.Timeseries)
	} else if res.Status < 500 {
		t.Fatalf("remote write: %d %s", res.Status, res.Body)
	}
	note("remote write", res.Status == http.StatusNoContent, refusal{fmt.Sprint(res.Status), res.Header.Get("Retry-After"), res.Body})

	// OTLP/HTTP traces.
	td, id := traceBatch(fmt.Sprintf("http-%d", w.round))
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	hreq, _ := http.NewRequest(http.MethodPost, w.v.OTLPHTTPURL("/v1/traces"), strings.NewReader(string(body)))
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := w.client.Do(hreq)
	if err != nil {
		t.Fatalf("OTLP/HTTP: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		w.traces = append(w.traces, id)
	}
	note("otlp http", resp.StatusCode == http.StatusOK, refusal{fmt.Sprint(resp.StatusCode), resp.Header.Get("Retry-After"), string(b)})

	// OTLP/gRPC traces.
	td, id = traceBatch(fmt.Sprintf("grpc-%d", w.round))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = w.grpc.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	cancel()
	if err == nil {
		w.traces = append(w.traces, id)
	}
	st := status.Convert(err)
	retry := ""
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri.GetRetryDelay().AsDuration().String()
		}
	}
	note("otlp grpc", err == nil, refusal{st.Code().String(), retry, st.Message()})

	// Pyroscope /ingest, folded stacks (sent as octet-stream: text/plain is a CORS
	// "simple" type that ingest refuses).
	svc := fmt.Sprintf("df-%d", w.round)
	var folded strings.Builder
	for i := range 300 {
		fmt.Fprintf(&folded, "main;handler_%d;work_%s %d\n", i, randHex(8), i+1)
	}
	from := time.Now().Add(-10 * time.Second).Unix()
	url := fmt.Sprintf("http://%s/ingest?name=%s&from=%d&until=%d", w.v.PyroscopeIngestAddr, svc, from, from+10)
	resp, err = w.client.Post(url, "application/octet-stream", strings.NewReader(folded.String()))
	if err != nil {
		t.Fatalf("pyroscope ingest: %v", err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		w.services = append(w.services, svc)
	}
	note("pyroscope", resp.StatusCode == http.StatusOK, refusal{fmt.Sprint(resp.StatusCode), resp.Header.Get("Retry-After"), string(b)})

	// Logs: Loki push (JSON), OTLP/HTTP logs and a Faro payload, each line
	// starting with an id that checkReadable looks for.
	w.log(t, note, "loki push", http.StatusNoContent, fmt.Sprintf("loki-%d", w.round), func(id string) (*http.Request, error) {
		var values []string
		for i := range 50 {
			values = append(values, fmt.Sprintf(`["%d", "%s-%d %s"]`, time.Now().UnixNano(), id, i, randHex(1024)))
		}
		body := `{"streams":[{"stream":{"service_name":"diskfull-logs"},"values":[` + strings.Join(values, ",") + `]}]}`
		req, err := http.NewRequest(http.MethodPost, "http://"+w.v.LokiAddr+"/loki/api/v1/push", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req, err
	})
	w.log(t, note, "otlp logs", http.StatusOK, fmt.Sprintf("otlp-%d", w.round), func(id string) (*http.Request, error) {
		body := fmt.Sprintf(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"diskfull-logs"}}]},`+
			`"scopeLogs":[{"logRecords":[{"timeUnixNano":"%d","body":{"stringValue":"%s %s"}}]}]}]}`, time.Now().UnixNano(), id, randHex(1024))
		req, err := http.NewRequest(http.MethodPost, w.v.OTLPHTTPURL("/v1/logs"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req, err
	})
	w.log(t, note, "faro", http.StatusAccepted, fmt.Sprintf("faro-%d", w.round), func(id string) (*http.Request, error) {
		body := fmt.Sprintf(`{"meta":{"app":{"name":"diskfull-logs"}},"logs":[{"message":"%s %s","level":"info"}]}`, id, randHex(1024))
		return http.NewRequest(http.MethodPost, "http://"+w.v.FaroAddr+"/collect", strings.NewReader(body))
	})
	return refused
}

// log sends one log request and remembers its id when acknowledged with ok.
func (w *writer) log(t *testing.T, note func(string, bool, refusal), kind string, ok int, id string, build func(string) (*http.Request, error)) {
	t.Helper()
	req, err := build(id)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == ok {
		w.lines = append(w.lines, id)
	} else if resp.StatusCode < 500 {
		t.Fatalf("%s: %d %s", kind, resp.StatusCode, b)
	}
	note(kind, resp.StatusCode == ok, refusal{fmt.Sprint(resp.StatusCode), resp.Header.Get("Retry-After"), string(b)})
}

// traceBatch is one trace of 100 spans with incompressible attributes.
func traceBatch(service string) (ptrace.Traces, string) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	var tid pcommon.TraceID
	_, _ = rand.Read(tid[:])
	now := time.Now()
	for i := range 100 {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(tid)
		var sid pcommon.SpanID
		_, _ = rand.Read(sid[:])
		sp.SetSpanID(sid)
		sp.SetName(fmt.Sprintf("op-%d", i))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		sp.Attributes().PutStr("pad", randHex(256))
	}
	return td, hex.EncodeToString(tid[:])
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDiskFull fills Vispyr's disk with remote write, OTLP traces (HTTP and
// gRPC) and Pyroscope ingest until it refuses, restarts it on a disk with no
// byte free, frees space and checks that writes resume without a restart and
// that everything acknowledged is readable.
func TestDiskFull(t *testing.T) {
	mnt := mountTmpfs(t)
	data := filepath.Join(mnt, "data")
	v := harness.Start(t, harness.Options{DataDir: data, Args: []string{
		fmt.Sprintf("--limits.disk-reserve-bytes=%d", reserve),
	}})
	filler := filepath.Join(mnt, "filler")
	grow(t, filler, reserve+3<<20)

	// Write until every store refuses (the guard looks once a second).
	w := newWriter(t, v)
	deadline := time.Now().Add(15 * time.Second)
	for w.send(t) < 7 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds (%d bytes free) not every store refuses: %+v", w.round, freeBytes(t, mnt), w.refused)
		}
	}
	if len(w.traces) == 0 || w.series == 0 || len(w.services) == 0 || len(w.lines) == 0 {
		t.Fatalf("nothing was acknowledged before the disk filled: %d series, %d traces, %d profiles, %d log requests", w.series, len(w.traces), len(w.services), len(w.lines))
	}
	t.Logf("%d rounds: %d series, %d traces, %d profiles, %d log requests acknowledged; %d bytes free", w.round, w.series, len(w.traces), len(w.services), len(w.lines), freeBytes(t, mnt))
	for kind, want := range map[string]refusal{
		"remote write": {"503", "5", "metrics store"},
		"otlp http":    {"503", "5", "trace store"},
		"otlp grpc":    {"ResourceExhausted", "5s", "trace store"},
		"pyroscope":    {"503", "5", "profile store"},
		"loki push":    {"503", "5", "logs store"},
		"otlp logs":    {"503", "5", "logs store"},
		"faro":         {"503", "5", "logs store"},
	} {
		got := w.refused[kind]
		if got.status != want.status || got.retryAfter != want.retryAfter || !strings.Contains(got.body, want.body) || !strings.Contains(got.body, "bytes") {
			t.Errorf("%s refused with %s Retry-After=%q %q; want %s, Retry-After %s and a message naming the %s and the free bytes",
				kind, got.status, got.retryAfter, got.body, want.status, want.retryAfter, want.body)
		}
	}
	checkNotReady(t, v)

	// Restart with not one byte free: it must come up and serve reads. The
	// TSDB's WAL replay m-maps the full chunks written above: the guard's
	// ballast gives it the room it would otherwise panic without.
	grow(t, filler, 0)
	v.RestartLive()
	if _, err := os.Stat(filepath.Join(data, "disk-reserve.ballast")); err == nil {
		t.Errorf("the ballast was not released on a full disk")
	}
	checkNotReady(t, v)
	checkReadable(t, v, w)
	if w.send(t) != 7 {
		t.Errorf("a write was accepted with no space free")
	}

	// Space returns: readiness and writes come back without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	pid := v.Pid()
	harness.Eventually(t, 10*time.Second, func() (bool, string) {
		code, body := get(t, v.AdminURL("/-/ready"))
		return code == http.StatusOK, fmt.Sprintf("/-/ready %d %s", code, body)
	})
	if code, body := get(t, "http://"+v.HealthAddr+"/health/status"); code != http.StatusOK || strings.Contains(body, "reason") {
		t.Errorf("/health/status after space returned: %d %s", code, body)
	}
	harness.Eventually(t, 5*time.Second, func() (bool, string) {
		_, err := os.Stat(filepath.Join(data, "disk-reserve.ballast"))
		return err == nil, fmt.Sprintf("ballast not taken again: %v", err)
	})
	w.refused = map[string]refusal{}
	if n := w.send(t); n != 0 {
		t.Errorf("after space returned %d writes were refused: %+v", n, w.refused)
	}
	if v.Pid() != pid || !v.Alive() {
		t.Fatalf("vispyr restarted or died")
	}
	checkReadable(t, v, w)
}

func checkNotReady(t *testing.T, v *harness.Vispyr) {
	t.Helper()
	harness.Eventually(t, 5*time.Second, func() (bool, string) {
		code, body := get(t, v.AdminURL("/-/ready"))
		return code == http.StatusServiceUnavailable && strings.Contains(body, "disk almost full"),
			fmt.Sprintf("/-/ready %d %s", code, body)
	})
	code, body := get(t, "http://"+v.HealthAddr+"/health/status")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"reason":"disk almost full`) {
		t.Errorf("/health/status on a full disk: %d %s, want 503 with the reason", code, body)
	}
	if !v.Alive() {
		t.Fatalf("vispyr died on a full disk:\n%s", v.Tail(8<<10))
	}
}

// checkReadable reads back everything acknowledged through the query APIs.
func checkReadable(t *testing.T, v *harness.Vispyr, w *writer) {
	t.Helper()
	_, series, _ := harness.NewAPI(v.MetricsURL("")).Instant(t, `count(diskfull_test)`, time.Now())
	if len(series) != 1 || series[0].Value.Float() != float64(w.series) {
		t.Errorf("count(diskfull_test) = %+v, want %d acknowledged series", series, w.series)
	}
	for _, id := range w.traces {
		if code, body := get(t, "http://"+v.TempoAddr+"/api/traces/"+id); code != http.StatusOK {
			t.Errorf("acknowledged trace %s: %d %.200s", id, code, body)
		}
	}
	client := querierv1connect.NewQuerierServiceClient(http.DefaultClient, "http://"+v.PyroscopeAddr)
	resp, err := client.LabelValues(context.Background(), connect.NewRequest(&typesv1.LabelValuesRequest{
		Name: "service_name", Start: time.Now().Add(-time.Hour).UnixMilli(), End: time.Now().Add(time.Minute).UnixMilli(),
	}))
	if err != nil {
		t.Fatalf("profile service names: %v", err)
	}
	have := map[string]bool{}
	for _, n := range resp.Msg.Names {
		have[n] = true
	}
	for _, svc := range w.services {
		if !have[svc] {
			t.Errorf("acknowledged profile of %s is not readable (services: %v)", svc, resp.Msg.Names)
		}
	}
	checkLogsReadable(t, v, w)
}

// checkLogsReadable finds every acknowledged log request's id through Loki's
// query API.
func checkLogsReadable(t *testing.T, v *harness.Vispyr, w *writer) {
	t.Helper()
	q := url.Values{"query": {`{service_name="diskfull-logs"}`}, "limit": {"5000"}, "direction": {"forward"},
		"start": {fmt.Sprint(time.Now().Add(-time.Hour).UnixNano())}, "end": {fmt.Sprint(time.Now().Add(time.Minute).UnixNano())}}
	code, body := get(t, "http://"+v.LokiAddr+"/loki/api/v1/query_range?"+q.Encode())
	if code != http.StatusOK {
		t.Fatalf("Loki query_range: %d %.300s", code, body)
	}
	var res struct {
		Data struct {
			Result []struct {
				Values [][]string `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("Loki query_range answer: %v", err)
	}
	seen := map[string]bool{}
	for _, r := range res.Data.Result {
		for _, v := range r.Values {
			line := v[1]
			if i := strings.Index(line, "message="); i >= 0 { // Faro's logfmt line
				line = line[i+len("message=")+1:]
			}
			id, _, _ := strings.Cut(line, " ")
			seen[strings.TrimSuffix(id, "-0")] = true
		}
	}
	for _, id := range w.lines {
		if !seen[id] {
			t.Errorf("acknowledged log line %s is not readable", id)
		}
	}
}
