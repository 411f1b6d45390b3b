// Package load drives every ingest signal of a running Vispyr with uniquely
// named data, the way real clients send it, remembers what was acknowledged
// and how refusals looked, and checks afterwards that everything acknowledged
// can be read back. The overload test (test/e2e) and the soak program
// (bench/soak) share it.
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Target is where a Vispyr listens (host:port each).
type Target struct {
	Metrics, OTLPHTTP, PyroscopeIngest, Tempo, Pyroscope string
	Loki                                                 string // push and LogQL queries
}

// Shape is how big each request is.
type Shape struct {
	SeriesPerWrite int // remote-write series per request (one sample each)
	SpansPerTrace  int // spans per OTLP request (one trace)
	StacksPerProf  int // folded lines per profile
	LinesPerPush   int // log lines per Loki push (one stream)
	// Fixed writes every remote-write request to the same SeriesPerWrite
	// series (a sample each, timestamps increasing) and profiles under ten
	// service names, as steady clients do: memory then measures the
	// server, not a growing cardinality. Requests must then be sent one
	// at a time per signal, or samples arrive out of order.
	Fixed bool
}

// DefaultShape is a Prometheus-like remote write, a small trace and a
// modest profile.
var DefaultShape = Shape{SeriesPerWrite: 500, SpansPerTrace: 20, StacksPerProf: 50, LinesPerPush: 20}

// Signal names, as used in Stats.
const (
	Metrics  = "remote write"
	Traces   = "otlp traces"
	Profiles = "pyroscope ingest"
	Logs     = "loki push"
)

// Driver sends and remembers. Its methods are safe for concurrent use.
type Driver struct {
	t      Target
	shape  Shape
	client *http.Client
	run    string // unique per driver: names its data

	seq   atomic.Int64
	start time.Time

	tsMu   sync.Mutex
	lastTS int64 // the last remote-write timestamp, with Fixed

	mu       sync.Mutex
	writes   map[string]bool // acknowledged remote-write request IDs
	traces   []string        // acknowledged trace IDs, hex
	services []string        // acknowledged profile service names
	pushes   int             // acknowledged Loki pushes
	codes    map[string]map[int]int
	bad      []string       // refusals without the overload contract, and transport errors
	gaveUp   map[string]int // requests cancelled in flight by the caller's context
	stored   map[string]int // what Verify found: samples, log lines
}

// New returns a driver for t.
func New(t Target, shape Shape) *Driver {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &Driver{
		t: t, shape: shape, run: hex.EncodeToString(b), start: time.Now(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		writes: map[string]bool{}, codes: map[string]map[int]int{}, gaveUp: map[string]int{}, stored: map[string]int{},
	}
}

// Run is the label value every series of this driver carries (run=...).
func (d *Driver) Run() string { return d.run }

// cancelled reports whether ctx ended while a request of signal was in
// flight, and counts it: the server may still store such a request.
func (d *Driver) cancelled(ctx context.Context, signal string) bool {
	if ctx.Err() == nil {
		return false
	}
	d.mu.Lock()
	d.gaveUp[signal]++
	d.mu.Unlock()
	return true
}

// note records one answer: 2xx acknowledges; 429 and 503 must carry
// Retry-After; anything else is noted as bad.
func (d *Driver) note(signal string, code int, retryAfter, body string, err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		if len(d.bad) < 20 {
			d.bad = append(d.bad, fmt.Sprintf("%s: %v", signal, err))
		}
		return false
	}
	if d.codes[signal] == nil {
		d.codes[signal] = map[int]int{}
	}
	d.codes[signal][code]++
	switch {
	case code/100 == 2:
		return true
	case (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable) && retryAfter != "":
	default:
		if len(d.bad) < 20 {
			d.bad = append(d.bad, fmt.Sprintf("%s: %d Retry-After=%q %.200s", signal, code, retryAfter, body))
		}
	}
	return false
}

func (d *Driver) post(ctx context.Context, url, contentType string, body []byte, header map[string]string) (int, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b), nil
}

// RemoteWrite sends one v1 request of SeriesPerWrite new series, one sample
// each, and reports whether it was acknowledged.
func (d *Driver) RemoteWrite(ctx context.Context) bool {
	id := strconv.FormatInt(d.seq.Add(1), 10)
	now := time.Now().UnixMilli()
	if d.shape.Fixed {
		d.tsMu.Lock()
		now = max(now, d.lastTS+1)
		d.lastTS = now
		d.tsMu.Unlock()
	}
	wr := &prompb.WriteRequest{}
	for i := range d.shape.SeriesPerWrite {
		ls := []prompb.Label{{Name: "__name__", Value: "load_test"}, {Name: "i", Value: strconv.Itoa(i)},
			{Name: "req", Value: id}, {Name: "run", Value: d.run}}
		if d.shape.Fixed {
			ls = slices.Delete(ls, 2, 3)
		}
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Timestamp: now, Value: float64(i)}}})
	}
	raw, _ := wr.Marshal()
	code, ra, body, err := d.post(ctx, "http://"+d.t.Metrics+"/api/v1/write", "application/x-protobuf", snappy.Encode(nil, raw),
		map[string]string{"Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0"})
	if d.cancelled(ctx, Metrics) {
		return false
	}
	ok := d.note(Metrics, code, ra, body, err)
	if ok {
		d.mu.Lock()
		d.writes[id] = true
		d.mu.Unlock()
	}
	return ok
}

// Trace sends one trace of SpansPerTrace spans by OTLP/HTTP protobuf.
func (d *Driver) Trace(ctx context.Context) bool {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "load-"+d.run)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	var tid pcommon.TraceID
	_, _ = rand.Read(tid[:])
	now := time.Now()
	var parent pcommon.SpanID
	for i := range d.shape.SpansPerTrace {
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid)
		var sid pcommon.SpanID
		_, _ = rand.Read(sid[:])
		sp.SetSpanID(sid)
		if i > 0 {
			sp.SetParentSpanID(parent)
		} else {
			parent = sid
		}
		sp.SetName(fmt.Sprintf("op-%d", i%7))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(i+1) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		sp.Attributes().PutStr("http.route", fmt.Sprintf("/r/%d", i%5))
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	code, ra, rbody, err := d.post(ctx, "http://"+d.t.OTLPHTTP+"/v1/traces", "application/x-protobuf", body, nil)
	if d.cancelled(ctx, Traces) {
		return false
	}
	ok := d.note(Traces, code, ra, rbody, err)
	if ok {
		d.mu.Lock()
		d.traces = append(d.traces, hex.EncodeToString(tid[:]))
		d.mu.Unlock()
	}
	return ok
}

// Profile sends one folded CPU profile to /ingest under a new service name.
func (d *Driver) Profile(ctx context.Context) bool {
	n := d.seq.Add(1)
	if d.shape.Fixed {
		n %= 10
	}
	svc := fmt.Sprintf("load-%s-%d", d.run, n)
	var b strings.Builder
	for i := range d.shape.StacksPerProf {
		fmt.Fprintf(&b, "main;handler_%d;work_%d %d\n", i%13, i, i+1)
	}
	until := time.Now().Unix()
	u := fmt.Sprintf("http://%s/ingest?name=%s.cpu&from=%d&until=%d", d.t.PyroscopeIngest, svc, until-10, until)
	code, ra, body, err := d.post(ctx, u, "application/octet-stream", []byte(b.String()), nil)
	if d.cancelled(ctx, Profiles) {
		return false
	}
	ok := d.note(Profiles, code, ra, body, err)
	if ok {
		d.mu.Lock()
		d.services = append(d.services, svc)
		d.mu.Unlock()
	}
	return ok
}

// Log pushes LinesPerPush lines by Loki's JSON push API to one of ten
// streams (labels run and stream), each line naming its push.
func (d *Driver) Log(ctx context.Context) bool {
	n := d.seq.Add(1)
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	s := stream{Stream: map[string]string{"job": "load", "run": d.run, "stream": strconv.FormatInt(n%10, 10)}}
	now := time.Now().UnixNano()
	for i := range d.shape.LinesPerPush {
		s.Values = append(s.Values, [2]string{strconv.FormatInt(now+int64(i), 10),
			fmt.Sprintf("level=info push=%d line=%d msg=\"load test line\"", n, i)})
	}
	body, _ := json.Marshal(map[string][]stream{"streams": {s}})
	code, ra, rbody, err := d.post(ctx, "http://"+d.t.Loki+"/loki/api/v1/push", "application/json", body, nil)
	if d.cancelled(ctx, Logs) {
		return false
	}
	ok := d.note(Logs, code, ra, rbody, err)
	if ok {
		d.mu.Lock()
		d.pushes++
		d.mu.Unlock()
	}
	return ok
}

// Stats is what a driver saw.
type Stats struct {
	// Codes counts answers by signal and HTTP status.
	Codes map[string]map[int]int
	// Acked counts acknowledged requests by signal.
	Acked map[string]int
	// Bad lists (up to 20) answers that were neither 2xx nor 429/503 with
	// Retry-After, and transport errors.
	Bad []string
	// Cancelled counts requests left uncounted because the caller's
	// context ended while they were in flight (the end of a run): the
	// server may still have stored them.
	Cancelled map[string]int
	// Stored is what the last Verify read back: remote-write samples (with
	// Fixed) and log lines.
	Stored map[string]int
}

// Stats returns a copy of what was seen so far.
func (d *Driver) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Stats{Codes: map[string]map[int]int{}, Bad: append([]string(nil), d.bad...),
		Cancelled: maps.Clone(d.gaveUp), Stored: maps.Clone(d.stored),
		Acked: map[string]int{Metrics: len(d.writes), Traces: len(d.traces), Profiles: len(d.services), Logs: d.pushes}}
	for sig, m := range d.codes {
		s.Codes[sig] = map[int]int{}
		for c, n := range m {
			s.Codes[sig][c] = n
		}
	}
	return s
}

// Verify reads back everything acknowledged and returns what is missing (at
// most a few examples per signal).
func (d *Driver) Verify(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	writes := make(map[string]bool, len(d.writes))
	for k := range d.writes {
		writes[k] = true
	}
	traces := append([]string(nil), d.traces...)
	services := append([]string(nil), d.services...)
	pushes := d.pushes
	d.mu.Unlock()

	var missing []string
	if d.shape.Fixed {
		n, err := d.storedSamples(ctx)
		if err != nil {
			return nil, err
		}
		d.noteStored(Metrics, n)
		// Fewer is loss. More is not: a request answered 503 (or whose answer
		// was lost with its connection) may still have been stored, and its
		// retry would be a duplicate the TSDB ignores.
		if want := len(writes) * d.shape.SeriesPerWrite; n < want {
			missing = append(missing, fmt.Sprintf("remote write: %d samples stored, %d acknowledged", n, want))
		}
		writes = nil
	}
	got, err := d.storedWrites(ctx)
	if err != nil {
		return nil, err
	}
	for id := range writes {
		if got[id] != d.shape.SeriesPerWrite {
			missing = append(missing, fmt.Sprintf("remote write request %s: %d of %d series stored", id, got[id], d.shape.SeriesPerWrite))
		}
	}
	for _, id := range traces {
		code, err := d.get(ctx, "http://"+d.t.Tempo+"/api/traces/"+id, nil)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			missing = append(missing, fmt.Sprintf("trace %s: %d", id, code))
		}
	}
	have, err := d.profiledServices(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range services {
		if !have[s] {
			missing = append(missing, "profile of service "+s)
		}
	}
	if pushes > 0 {
		n, err := d.storedLines(ctx)
		if err != nil {
			return nil, err
		}
		d.noteStored(Logs, n)
		// Fewer is loss; more is a refused push that was stored anyway.
		if want := pushes * d.shape.LinesPerPush; n < want {
			missing = append(missing, fmt.Sprintf("loki push: %d lines stored, %d acknowledged", n, want))
		}
	}
	return missing, nil
}

func (d *Driver) noteStored(signal string, n int) {
	d.mu.Lock()
	d.stored[signal] = n
	d.mu.Unlock()
}

func (d *Driver) get(ctx context.Context, u string, into any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			return 0, fmt.Errorf("decode %s: %w", u, err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// storedSamples counts the samples stored since the driver started, with Fixed.
func (d *Driver) storedSamples(ctx context.Context) (int, error) {
	since := int(time.Since(d.start).Seconds()) + 60
	q := url.Values{"query": {fmt.Sprintf(`sum(count_over_time(load_test{run=%q}[%ds]))`, d.run, since)}, "time": {strconv.FormatInt(time.Now().Unix()+1, 10)}}
	return d.scalar(ctx, "stored samples", "http://"+d.t.Metrics+"/api/v1/query?"+q.Encode())
}

// storedLines counts the log lines stored since the driver started, by a
// LogQL metric query on the Loki port.
func (d *Driver) storedLines(ctx context.Context) (int, error) {
	since := int(time.Since(d.start).Seconds()) + 60
	q := url.Values{"query": {fmt.Sprintf(`sum(count_over_time({run=%q}[%ds]))`, d.run, since)}, "time": {strconv.FormatInt(time.Now().Add(time.Second).UnixNano(), 10)}}
	return d.scalar(ctx, "stored log lines", "http://"+d.t.Loki+"/loki/api/v1/query?"+q.Encode())
}

// scalar reads the single value of an instant query's answer (Prometheus's
// and Loki's share the shape); no series is 0.
func (d *Driver) scalar(ctx context.Context, what, u string) (int, error) {
	var res struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	code, err := d.get(ctx, u, &res)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("count %s: %d", what, code)
	}
	if len(res.Data.Result) == 0 {
		return 0, nil
	}
	s, _ := res.Data.Result[0].Value[1].(string)
	n, _ := strconv.Atoi(s)
	return n, nil
}

// storedWrites counts the stored series of each request ID.
func (d *Driver) storedWrites(ctx context.Context) (map[string]int, error) {
	var res struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	q := url.Values{"query": {fmt.Sprintf(`count by (req) (load_test{run=%q})`, d.run)}, "time": {strconv.FormatInt(time.Now().Unix()+1, 10)}}
	code, err := d.get(ctx, "http://"+d.t.Metrics+"/api/v1/query?"+q.Encode(), &res)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("count stored series: %d", code)
	}
	out := map[string]int{}
	for _, r := range res.Data.Result {
		s, _ := r.Value[1].(string)
		n, _ := strconv.Atoi(s)
		out[r.Metric["req"]] = n
	}
	return out, nil
}

// profiledServices lists the service names of stored profiles (the connect
// LabelValues call Grafana makes, as JSON).
func (d *Driver) profiledServices(ctx context.Context) (map[string]bool, error) {
	body := fmt.Sprintf(`{"name":"service_name","start":%d,"end":%d}`, time.Now().Add(-24*time.Hour).UnixMilli(), time.Now().Add(time.Minute).UnixMilli())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.t.Pyroscope+"/querier.v1.QuerierService/LabelValues", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("profile service names: %d %s", resp.StatusCode, b)
	}
	var res struct {
		Names []string `json:"names"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range res.Names {
		out[n] = true
	}
	return out, nil
}
