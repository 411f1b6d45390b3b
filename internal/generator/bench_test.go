package generator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// benchBatch is a realistic export: requests through the checkout services
// with 20 operations per service, each span carrying a few attributes.
func benchBatch(requests int) ptrace.Traces {
	var specs []spanSpec
	at := time.Now()
	for i := 0; i < requests; i++ {
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
// processors on; compare with BenchmarkDecodeOTLP, the receiver's unavoidable
// cost for the same spans.
func BenchmarkConsumeTraces(b *testing.B) {
	td := benchBatch(100) // 600 spans
	spans := td.SpanCount()
	g := New(defaultConfig(), nil, nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := g.ConsumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans*b.N), "ns/span")
}

// BenchmarkConsumeTracesSpanMetricsOnly isolates the span-metrics processor.
func BenchmarkConsumeTracesSpanMetricsOnly(b *testing.B) {
	td := benchBatch(100)
	spans := td.SpanCount()
	cfg := defaultConfig()
	cfg.DisableServiceGraph = true
	g := New(cfg, nil, nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = g.ConsumeTraces(ctx, td)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans*b.N), "ns/span")
}

// BenchmarkDecodeOTLP is the baseline: unmarshalling the same spans from
// the OTLP protobuf a receiver gets, the least work any trace ingest does.
func BenchmarkDecodeOTLP(b *testing.B) {
	td := benchBatch(100)
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
