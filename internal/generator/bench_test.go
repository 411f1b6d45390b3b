package generator

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// benchBatch is a realistic export: requests through the checkout services
// (6 spans each, all pairs complete) with 20 operations per service, each
// span carrying a few attributes. Request IDs start at first.
func benchBatch(first, requests int) ptrace.Traces {
	var specs []spanSpec
	at := time.Now()
	for i := first; i < first+requests; i++ {
		for _, s := range checkout(i, at) {
			s.name = fmt.Sprintf("%s %d", s.name, i%20)
			if s.attrs == nil {
				s.attrs = map[string]string{}
			}
			s.attrs["http.method"] = "POST"
			s.attrs["http.route"] = "/api/v1/items/{id}"
			s.attrs["net.peer.name"] = "10.0.0.1"
			specs = append(specs, s)
		}
	}
	return build(specs...)
}

// BenchmarkConsumeTraces measures the generator's per-span cost with both
// processors on, in the steady state: 16 batches of distinct traces cycle
// while a clock advances 1s per batch, so root spans wait, expire and
// become user→frontend edges as in production. Compare cpu-µs/span with
// internal/traces' BenchmarkIngest (durable trace ingest) for the overhead
// the generator adds to trace ingest. ConsumeTraces converts each batch to
// rows first, as the gateway's path does; BenchmarkConsumeRows is the rest.
func BenchmarkConsumeTraces(b *testing.B) {
	batches := make([]ptrace.Traces, 16)
	for i := range batches {
		batches[i] = benchBatch(i*100, 100) // 600 spans
	}
	benchConsume(b, batches[0].SpanCount(), func(g *Generator, n int) error {
		return g.ConsumeTraces(context.Background(), batches[n%len(batches)])
	})
}

// BenchmarkConsumeRows is BenchmarkConsumeTraces on rows built beforehand,
// as serve passes the rows its trace store made: the generator's own cost.
func BenchmarkConsumeRows(b *testing.B) {
	batches := make([][]spanrow.Span, 16)
	for i := range batches {
		rows, err := spanrow.FromTraces(benchBatch(i*100, 100), nil)
		if err != nil {
			b.Fatal(err)
		}
		batches[i] = rows
	}
	benchConsume(b, len(batches[0]), func(g *Generator, n int) error {
		return g.ConsumeRows(context.Background(), batches[n%len(batches)])
	})
}

func benchConsume(b *testing.B, spans int, consume func(g *Generator, n int) error) {
	clock := &fakeClock{t: time.Now()}
	g := newGenerator(defaultConfig(), nil, nil, nil, clock.Now)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testpeer.CPUTime()
	n := 0
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for b.Loop() {
		if err := consume(g, n); err != nil {
			b.Fatal(err)
		}
		n++
		clock.Add(time.Second)
		g.expire()
	}
	runtime.ReadMemStats(&ms1)
	total := float64(spans) * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/span")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/total, "allocs/span")
	b.ReportMetric(float64((testpeer.CPUTime()-cpu0).Microseconds())/total, "cpu-µs/span")
}

// BenchmarkConsumeTracesSpanMetricsOnly isolates the span-metrics processor,
// the part comparable with the OpenTelemetry Collector's spanmetrics connector.
func BenchmarkConsumeTracesSpanMetricsOnly(b *testing.B) {
	td := benchBatch(0, 100)
	spans := td.SpanCount()
	cfg := defaultConfig()
	cfg.DisableServiceGraph = true
	g := New(cfg, nil, nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testpeer.CPUTime()
	for b.Loop() {
		_ = g.ConsumeTraces(ctx, td)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans*b.N), "ns/span")
	b.ReportMetric(float64((testpeer.CPUTime()-cpu0).Microseconds())/float64(spans*b.N), "cpu-µs/span")
}

// BenchmarkDecodeOTLP is the baseline: unmarshalling the same spans from
// the OTLP protobuf a receiver gets, the least work any trace ingest does.
func BenchmarkDecodeOTLP(b *testing.B) {
	td := benchBatch(0, 100)
	spans := td.SpanCount()
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	var u ptrace.ProtoUnmarshaler
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := u.UnmarshalTraces(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans*b.N), "ns/span")
}

// BenchmarkDecodeRows is BenchmarkDecodeOTLP for spanrow.FromProto, the
// decoder from request bytes to the rows ConsumeRows reads.
func BenchmarkDecodeRows(b *testing.B) {
	td := benchBatch(0, 100)
	spans := td.SpanCount()
	buf, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]spanrow.Span, 0, spans)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		if rows, err = spanrow.FromProto(buf, 0, rows[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans*b.N), "ns/span")
}
