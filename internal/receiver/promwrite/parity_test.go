package promwrite

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/vispyr/vispyr/internal/config"
	"google.golang.org/protobuf/encoding/protowire"
)

var base = time.Now().Add(-time.Hour).UnixMilli()

func lbls(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func samples(ts ...int64) []prompb.Sample {
	var out []prompb.Sample
	for _, t := range ts {
		out = append(out, prompb.Sample{Timestamp: t, Value: float64(t%1000) / 10})
	}
	return out
}

func testHistogram(i int) *histogram.Histogram {
	return &histogram.Histogram{
		Schema: 1, Count: uint64(7 + i), Sum: 18.4 * float64(i+1), ZeroThreshold: 0.001, ZeroCount: 2,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets: []int64{1, 1, -1, int64(i)},
	}
}

func TestV1Parity(t *testing.T) {
	p := newPair(t, defaultOpts(), 0, 0)
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "up", "instance", "a:9100", "job", "node"), Samples: samples(base, base+15000)},
		// Unsorted labels are sorted, as Prometheus does.
		{Labels: lbls("job", "node", "__name__", "cpu", "mode", "idle"), Samples: samples(base)},
		// A series without a metric name is skipped, the rest is kept.
		{Labels: lbls("job", "node"), Samples: samples(base)},
		{Labels: lbls("__name__", "with_exemplars", "job", "node"), Samples: samples(base, base+1000),
			Exemplars: []prompb.Exemplar{
				{Labels: lbls("trace_id", "abc"), Value: 1.5, Timestamp: base + 1000},
				{Labels: lbls("trace_id", "def"), Value: 0.5, Timestamp: base},
			}},
		{Labels: lbls("__name__", "latency", "job", "node"), Histograms: []prompb.Histogram{
			prompb.FromIntHistogram(base, testHistogram(0)), prompb.FromIntHistogram(base+15000, testHistogram(1)),
		}},
		{Labels: lbls("__name__", "latency_float", "job", "node"), Histograms: []prompb.Histogram{
			prompb.FromFloatHistogram(base, testHistogram(2).ToFloat(nil)),
		}},
	}}
	if r := p.send(t, encode(t, req), ctV1, "snappy"); r.code != http.StatusNoContent || r.headers != "" {
		t.Fatalf("v1 write: %+v, want 204 without v2 headers", r)
	}
	data := p.sameData(t)
	for _, want := range []string{`{__name__="up", instance="a:9100", job="node"}`, `{__name__="cpu", job="node", mode="idle"}`,
		"exemplar", `trace_id="abc"`, `latency_float`, "{count:8"} {
		if !strings.Contains(data, want) {
			t.Fatalf("stored data lacks %q:\n%s", want, data)
		}
	}

	// The same series again (now from the series cache), newer samples, no
	// Content-Encoding meaning snappy.
	req2 := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "up", "instance", "a:9100", "job", "node"), Samples: samples(base + 30000)},
		{Labels: lbls("job", "node", "__name__", "cpu", "mode", "idle"), Samples: samples(base + 30000)},
	}}
	if r := p.send(t, encode(t, req2), ctV1, ""); r.code != http.StatusNoContent {
		t.Fatalf("second v1 write: %+v", r)
	}
	if data := p.sameData(t); strings.Count(data, strconv.FormatInt(base+30000, 10)+"=") != 2 {
		t.Fatalf("second write not stored:\n%s", data)
	}

	// An out-of-order sample refuses the whole v1 request: the valid series in
	// it is rolled back.
	before := p.sameData(t)
	req3 := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "fresh", "job", "node"), Samples: samples(base + 60000)},
		{Labels: lbls("__name__", "up", "instance", "a:9100", "job", "node"), Samples: samples(base)},
	}}
	if r := p.send(t, encode(t, req3), ctV1, "snappy"); r.code != http.StatusBadRequest {
		t.Fatalf("out-of-order v1 write: %+v, want 400", r)
	}
	if after := p.sameData(t); after != before {
		t.Fatalf("a refused v1 request changed the data:\n%s", after)
	}

	// A different value at an existing timestamp is a duplicate: 400.
	dup := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "up", "instance", "a:9100", "job", "node"), Samples: []prompb.Sample{{Timestamp: base + 30000, Value: 42}}},
	}}
	if r := p.send(t, encode(t, dup), ctV1, "snappy"); r.code != http.StatusBadRequest {
		t.Fatalf("duplicate v1 sample: %+v, want 400", r)
	}
	// A sample too far in the future: 400.
	future := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "up", "instance", "a:9100", "job", "node"), Samples: samples(time.Now().Add(time.Hour).UnixMilli())},
	}}
	if r := p.send(t, encode(t, future), ctV1, "snappy"); r.code != http.StatusBadRequest {
		t.Fatalf("future v1 sample: %+v, want 400", r)
	}
	p.sameData(t)
}

// v2Request symbolizes series for a v2 request.
type v2Builder struct {
	syms writev2.SymbolsTable
	req  writev2.Request
}

func newV2() *v2Builder { return &v2Builder{syms: writev2.NewSymbolTable()} }

func (b *v2Builder) series(ls labels.Labels, ts writev2.TimeSeries) {
	ts.LabelsRefs = b.syms.SymbolizeLabels(ls, nil)
	b.req.Timeseries = append(b.req.Timeseries, ts)
}

func (b *v2Builder) exemplar(kv ...string) writev2.Exemplar {
	return writev2.Exemplar{LabelsRefs: b.syms.SymbolizeLabels(labels.FromStrings(kv...), nil)}
}

func (b *v2Builder) body(tb testing.TB) []byte {
	b.req.Symbols = b.syms.Symbols()
	return encode(tb, &b.req)
}

func TestV2Parity(t *testing.T) {
	p := newPair(t, defaultOpts(), 0, 0)
	b := newV2()
	ex := b.exemplar("trace_id", "t1")
	ex.Value, ex.Timestamp = 2.5, base+1000
	b.series(labels.FromStrings("__name__", "http_requests_total", "job", "api"), writev2.TimeSeries{
		Samples:   []writev2.Sample{{Value: 1, Timestamp: base, StartTimestamp: base - 5000}, {Value: 3, Timestamp: base + 15000}},
		Exemplars: []writev2.Exemplar{ex},
		Metadata:  writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: b.syms.Symbolize("Requests."), UnitRef: b.syms.Symbolize("")},
	})
	b.series(labels.FromStrings("__name__", "rpc_latency", "job", "api"), writev2.TimeSeries{
		Histograms: []writev2.Histogram{writev2.FromIntHistogram(0, base, testHistogram(3)),
			writev2.FromFloatHistogram(0, base+15000, testHistogram(4).ToFloat(nil))},
	})
	r := p.send(t, b.body(t), ctV2, "snappy")
	want := "X-Prometheus-Remote-Write-Samples-Written=2 X-Prometheus-Remote-Write-Histograms-Written=2 X-Prometheus-Remote-Write-Exemplars-Written=1"
	if r.code != http.StatusNoContent || r.headers != want {
		t.Fatalf("v2 write: %+v, want 204 with %s", r, want)
	}
	if data := p.sameData(t); !strings.Contains(data, `http_requests_total`) || !strings.Contains(data, `trace_id="t1"`) || !strings.Contains(data, "rpc_latency") {
		t.Fatalf("v2 data not stored:\n%s", data)
	}

	// Partial write: an out-of-order sample, a series with a bad symbol ref, one
	// without a name, one without samples; the good sample is kept, 400 with counts.
	b = newV2()
	b.series(labels.FromStrings("__name__", "http_requests_total", "job", "api"), writev2.TimeSeries{
		Samples: []writev2.Sample{{Value: 0.5, Timestamp: base - 60000}, {Value: 4, Timestamp: base + 30000}},
	})
	b.series(labels.FromStrings("__name__", "new_series", "job", "api"), writev2.TimeSeries{Samples: []writev2.Sample{{Value: 7, Timestamp: base}}})
	b.series(labels.FromStrings("job", "nameless"), writev2.TimeSeries{Samples: []writev2.Sample{{Value: 7, Timestamp: base}}})
	b.series(labels.FromStrings("__name__", "empty", "job", "api"), writev2.TimeSeries{})
	b.req.Timeseries = append(b.req.Timeseries, writev2.TimeSeries{LabelsRefs: []uint32{0, 999}, Samples: []writev2.Sample{{Value: 1, Timestamp: base}}})
	b.req.Timeseries = append(b.req.Timeseries, writev2.TimeSeries{LabelsRefs: []uint32{1}, Samples: []writev2.Sample{{Value: 1, Timestamp: base}}})
	r = p.send(t, b.body(t), ctV2, "snappy")
	want = "X-Prometheus-Remote-Write-Samples-Written=2 X-Prometheus-Remote-Write-Histograms-Written=0 X-Prometheus-Remote-Write-Exemplars-Written=0"
	if r.code != http.StatusBadRequest || r.headers != want {
		t.Fatalf("partial v2 write: %+v, want 400 with %s", r, want)
	}
	if data := p.sameData(t); !strings.Contains(data, "new_series") || strings.Contains(data, "nameless") {
		t.Fatalf("partial v2 write stored the wrong data:\n%s", data)
	}

	// Bad metadata refs: the series is refused, nothing else.
	b = newV2()
	b.series(labels.FromStrings("__name__", "http_requests_total", "job", "api"), writev2.TimeSeries{
		Samples: []writev2.Sample{{Value: 9, Timestamp: base + 45000}}, Metadata: writev2.Metadata{HelpRef: 1000},
	})
	if r := p.send(t, b.body(t), ctV2, "snappy"); r.code != http.StatusBadRequest {
		t.Fatalf("bad metadata ref: %+v, want 400", r)
	}
	p.sameData(t)
}

func TestOutOfOrderWindowParity(t *testing.T) {
	p := newPair(t, defaultOpts(), int64(time.Hour/time.Millisecond), 0)
	s := lbls("__name__", "late", "job", "x")
	for _, ts := range []int64{base + 60000, base, base + 30000} {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: s, Samples: samples(ts)}}}
		if r := p.send(t, encode(t, req), ctV1, "snappy"); r.code != http.StatusNoContent {
			t.Fatalf("out-of-order sample within the window: %+v, want 204", r)
		}
	}
	if data := p.sameData(t); strings.Count(data, "=") < 3 {
		t.Fatalf("out-of-order samples not all stored:\n%s", data)
	}
}

func TestBadRequestsParity(t *testing.T) {
	good := encode(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "up"), Samples: samples(base)}}})
	raw, _ := snappy.Decode(nil, good)
	many := &prompb.WriteRequest{}
	for i := 0; i < 11; i++ {
		many.Timeseries = append(many.Timeseries, prompb.TimeSeries{Labels: lbls("__name__", "m", "i", string(rune('a'+i))), Samples: samples(base)})
	}
	cases := []struct {
		name             string
		body             []byte
		contentType, enc string
		want             int
		opts             Options
		inflight         int64
	}{
		{name: "bad snappy", body: []byte("not snappy at all"), contentType: ctV1, enc: "snappy", want: 400},
		{name: "truncated snappy", body: good[:len(good)/2], contentType: ctV1, enc: "snappy", want: 400},
		{name: "garbage protobuf v1", body: snappy.Encode(nil, []byte{0x0a, 0xff, 0xff, 0x01, 0x02}), contentType: ctV1, want: 400},
		{name: "garbage inside a series v1", body: snappy.Encode(nil, []byte{0x0a, 0x02, 0x0a, 0x05}), contentType: ctV1, want: 400},
		{name: "garbage protobuf v2", body: snappy.Encode(nil, []byte{0x2a, 0x03, 0x12, 0x01, 0xff}), contentType: ctV2, want: 400},
		{name: "wrong content type", body: good, contentType: "application/json", want: 415},
		{name: "unknown proto", body: good, contentType: "application/x-protobuf;proto=foo.Bar", want: 415},
		{name: "gzip", body: good, contentType: ctV1, enc: "gzip", want: 415},
		{name: "upper-case snappy", body: good, contentType: ctV1, enc: "SNAPPY", want: 415},
		{name: "body too large", body: good, contentType: ctV1, want: 413, opts: Options{MaxRequestBytes: int64(len(good) - 1), MaxSeriesPerRequest: 10}},
		{name: "decoded too large", body: good, contentType: ctV1, want: 413, opts: Options{MaxRequestBytes: int64(len(raw) - 1), MaxSeriesPerRequest: 10}},
		{name: "too many series", body: encode(t, many), contentType: ctV1, want: 400, opts: Options{MaxRequestBytes: 1 << 20, MaxSeriesPerRequest: 10}},
		{name: "overloaded", body: good, contentType: ctV1, want: 503, inflight: int64(len(good))},
		{name: "empty body", body: nil, contentType: ctV1, want: 400},
		{name: "over the stock 32 MiB cap", body: snappy.Encode(nil, protowire.AppendBytes(protowire.AppendTag(nil, 15, protowire.BytesType), make([]byte, 33<<20))),
			contentType: ctV1, want: 400, opts: Options{MaxRequestBytes: 64 << 20, MaxSeriesPerRequest: 10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			if opts.MaxRequestBytes == 0 {
				opts = defaultOpts()
			}
			p := newPair(t, opts, 0, c.inflight)
			r := p.send(t, c.body, c.contentType, c.enc)
			if r.code != c.want {
				t.Fatalf("got %+v, want %d", r, c.want)
			}
			if c.want == 503 && r.headers != "Retry-After=5" {
				t.Fatalf("503 without Retry-After: %+v", r)
			}
			p.sameData(t)
			// Both keep serving.
			if r := p.send(t, good, ctV1, "snappy"); c.opts.MaxRequestBytes == 0 && c.inflight == 0 && r.code != 204 {
				t.Fatalf("good request after a bad one: %+v", r)
			}
		})
	}
}

// TestStaleSeriesRef checks a series the head garbage-collected is recreated
// from the cached labels when written again.
func TestStaleSeriesRef(t *testing.T) {
	p := newPair(t, defaultOpts(), 0, 0)
	s := lbls("__name__", "gc_me", "job", "x")
	old := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: s, Samples: samples(base)}}}
	if r := p.send(t, encode(t, old), ctV1, "snappy"); r.code != 204 {
		t.Fatalf("first write: %+v", r)
	}
	for _, db := range []*tsdb.DB{p.mineDB, p.stockDB} {
		if err := db.Head().Truncate(base + 1); err != nil {
			t.Fatalf("truncate head: %v", err)
		}
		if n := db.Head().NumSeries(); n != 0 {
			t.Fatalf("head still holds %d series after truncation", n)
		}
	}
	later := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: s, Samples: samples(base + 3*3600*1000/4)}}}
	if r := p.send(t, encode(t, later), ctV1, "snappy"); r.code != 204 {
		t.Fatalf("write after GC: %+v", r)
	}
	if data := p.sameData(t); !strings.Contains(data, "gc_me") {
		t.Fatalf("series not recreated:\n%s", data)
	}
}

func TestNaNAndStaleMarkers(t *testing.T) {
	p := newPair(t, defaultOpts(), 0, 0)
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "n"),
		Samples: []prompb.Sample{{Timestamp: base, Value: math.NaN()}, {Timestamp: base + 1, Value: math.Float64frombits(0x7ff0000000000002)}}}}}
	if r := p.send(t, encode(t, req), ctV1, "snappy"); r.code != 204 {
		t.Fatalf("NaN write: %+v", r)
	}
	p.sameData(t)
}

func TestMoreParity(t *testing.T) {
	p := newPair(t, defaultOpts(), 0, 0)
	good := encode(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "up"), Samples: samples(base)}}})

	// A GET is refused once the body has been checked, as upstream does.
	for _, h := range []http.Handler{p.mine, p.stock} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/write", bytes.NewReader(good))
		req.Header.Set("Content-Encoding", "snappy")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed {
			t.Fatalf("GET: %d, want 405", rec.Code)
		}
	}
	// The explicit v1 proto parameter is v1.
	if r := p.send(t, good, "application/x-protobuf;proto=prometheus.WriteRequest", "snappy"); r.code != 204 || r.headers != "" {
		t.Fatalf("explicit v1 content type: %+v", r)
	}

	// Labels interrupted by samples on the wire: decoded all the same, twice
	// (the second time such a series is still not served from the cache).
	for i, ts := range []int64{base + 1000, base + 2000} {
		var raw []byte
		raw = protowire.AppendTag(raw, 1, protowire.BytesType)
		var series []byte
		lab := func(name, value string) []byte {
			var l []byte
			l = protowire.AppendTag(l, 1, protowire.BytesType)
			l = protowire.AppendString(l, name)
			l = protowire.AppendTag(l, 2, protowire.BytesType)
			return protowire.AppendString(l, value)
		}
		smp, _ := (&prompb.Sample{Timestamp: ts, Value: float64(i)}).Marshal()
		series = protowire.AppendTag(series, 1, protowire.BytesType)
		series = protowire.AppendBytes(series, lab("job", "split"))
		series = protowire.AppendTag(series, 2, protowire.BytesType)
		series = protowire.AppendBytes(series, smp)
		series = protowire.AppendTag(series, 1, protowire.BytesType)
		series = protowire.AppendBytes(series, lab("__name__", "split_labels"))
		raw = protowire.AppendBytes(raw, series)
		if r := p.send(t, snappy.Encode(nil, raw), ctV1, "snappy"); r.code != 204 {
			t.Fatalf("interrupted labels: %+v", r)
		}
	}
	if data := p.sameData(t); !strings.Contains(data, `{__name__="split_labels", job="split"}: `+strconv.FormatInt(base+1000, 10)) {
		t.Fatalf("interrupted labels not stored:\n%s", data)
	}

	// v2: the same series under different symbol tables hits the cache; an
	// out-of-order exemplar is a partial 400 with the sample still written.
	for i, order := range [][]string{{"__name__", "v2_cached", "job", "a"}, {"job", "a", "__name__", "v2_cached"}} {
		b := newV2()
		b.syms.Symbolize("padding" + strconv.Itoa(i))
		ex := b.exemplar("trace_id", "e"+strconv.Itoa(i))
		ex.Value, ex.Timestamp = 1, base+int64(10-i*5)*1000
		b.series(labels.FromStrings(order...), writev2.TimeSeries{
			Samples:   []writev2.Sample{{Value: float64(i), Timestamp: base + int64(i+1)*1000}},
			Exemplars: []writev2.Exemplar{ex},
		})
		r := p.send(t, b.body(t), ctV2, "snappy")
		if i == 0 && r.code != 204 {
			t.Fatalf("v2 cached series: %+v", r)
		}
		if i == 1 && (r.code != 400 || !strings.Contains(r.headers, "Samples-Written=1")) {
			t.Fatalf("v2 out-of-order exemplar: %+v, want 400 with one sample written", r)
		}
	}
	p.sameData(t)
}

// TestConcurrentWriters sends disjoint series from several goroutines to our
// handler and the same requests one by one to the stock one: same data.
func TestConcurrentWriters(t *testing.T) {
	p := newPair(t, defaultOpts(), 0, 0)
	const writers, rounds = 4, 20
	bodies := make([][][]byte, writers)
	for w := range bodies {
		for r := 0; r < rounds; r++ {
			req := &prompb.WriteRequest{}
			for s := 0; s < 50; s++ {
				req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
					Labels:  lbls("__name__", "conc", "s", strconv.Itoa(s), "w", strconv.Itoa(w)),
					Samples: samples(base + int64(r)*1000)})
			}
			bodies[w] = append(bodies[w], encode(t, req))
		}
	}
	var wg sync.WaitGroup
	fail := make(chan string, writers)
	for w := range bodies {
		wg.Add(1)
		go func(bodies [][]byte) {
			defer wg.Done()
			for _, body := range bodies {
				if r := post(p.mine, body, ctV1, "snappy"); r.code != 204 {
					fail <- fmt.Sprint(r)
					return
				}
			}
		}(bodies[w])
	}
	wg.Wait()
	close(fail)
	for f := range fail {
		t.Fatalf("concurrent write: %s", f)
	}
	for w := range bodies {
		for _, body := range bodies[w] {
			if r := post(p.stock, body, ctV1, "snappy"); r.code != 204 {
				t.Fatalf("stock write: %+v", r)
			}
		}
	}
	if data := p.sameData(t); strings.Count(data, "{__name__=\"conc\"") != writers*50 {
		t.Fatalf("want %d series:\n%s", writers*50, data)
	}
}

func TestRejectedMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHandler(openDB(t, 0), Options{MaxRequestBytes: 10, MaxSeriesPerRequest: 1}, discard, reg)
	if r := post(h, bytes.Repeat([]byte{1}, 11), ctV1, "snappy"); r.code != 413 {
		t.Fatalf("oversized: %+v", r)
	}
	if got := testutil.ToFloat64(h.(*handler).rejected.WithLabelValues("too_large")); got != 1 {
		t.Fatalf("rejected{reason=too_large} = %v, want 1", got)
	}
}

// TestAcknowledgedIsInWAL checks a 204 means the samples are in the WAL: a
// copy of the data dir taken right after (as a kill -9 would leave it) opens
// with them.
func TestAcknowledgedIsInWAL(t *testing.T) {
	dir := t.TempDir()
	db, err := tsdb.Open(dir, discard, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := newHandler(db, defaultOpts(), discard, nil)
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "durable", "job", "x"), Samples: samples(base, base+1000)}}}
	if r := post(h, encode(t, req), ctV1, "snappy"); r.code != 204 {
		t.Fatalf("write: %+v", r)
	}
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatalf("copy data dir: %v", err)
	}
	_ = os.Remove(filepath.Join(crashed, "lock"))
	reopened, err := tsdb.Open(crashed, discard, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer reopened.Close()
	data := dump(t, reopened)
	if !strings.Contains(data, fmt.Sprintf(`{__name__="durable", job="x"}: %d=`, base)) || !strings.Contains(data, fmt.Sprintf(" %d=", base+1000)) {
		t.Fatalf("acknowledged samples missing after a crash:\n%s", data)
	}
}

// TestParityWithOwnHead runs the parity tests with the metrics store on
// Vispyr's own head (metrics.head: vispyr): float samples in the own head,
// histograms and what it refuses as out of order in the TSDB's, its series
// cache without labels; every answer and every stored sample and exemplar
// must still be the stock receiver's.
func TestParityWithOwnHead(t *testing.T) {
	mineHead = config.HeadVispyr
	defer func() { mineHead = config.HeadPrometheus }()
	for name, test := range map[string]func(*testing.T){
		"V1": TestV1Parity, "V2": TestV2Parity, "OutOfOrderWindow": TestOutOfOrderWindowParity,
		"BadRequests": TestBadRequestsParity, "NaNAndStaleMarkers": TestNaNAndStaleMarkers,
		"More": TestMoreParity, "ConcurrentWriters": TestConcurrentWriters, "RejectedMetric": TestRejectedMetric,
	} {
		t.Run(name, test)
	}
}
