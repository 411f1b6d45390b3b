// Package otelcompare benchmarks the OpenTelemetry Collector's spanmetrics connector on
// the load of Vispyr's BenchmarkConsumeTraces. It is a separate module so that the
// Collector's dependencies stay out of Vispyr's go.mod; run it with
//
//	cd internal/generator/otelcompare && go test -run x -bench . -benchtime 2s
package otelcompare

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/testpeer"
)

type spanSpec struct {
	service, name string
	kind          ptrace.SpanKind
	trace         [16]byte
	id, parent    [8]byte
	start         time.Time
	dur           time.Duration
	failed        bool
	attrs         map[string]string
}

func build(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, s := range specs {
		spans, ok := bySvc[s.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.service)
			spans = rs.ScopeSpans().AppendEmpty().Spans()
			bySvc[s.service] = spans
		}
		sp := spans.AppendEmpty()
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.SetTraceID(s.trace)
		sp.SetSpanID(s.id)
		sp.SetParentSpanID(s.parent)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.start.Add(s.dur)))
		if s.failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage("payment declined")
		}
		for k, v := range s.attrs {
			sp.Attributes().PutStr(k, v)
		}
	}
	return td
}

func traceID(i int) [16]byte  { return [16]byte{0: 0xab, 14: byte(i >> 8), 15: byte(i)} }
func spanID(i, n int) [8]byte { return [8]byte{0: 0xcd, 5: byte(i >> 8), 6: byte(i), 7: byte(n)} }

func checkout(i int, at time.Time) []spanSpec {
	tid := traceID(i)
	feServer, feClient := spanID(i, 1), spanID(i, 2)
	payServer, payDB, payProduce := spanID(i, 3), spanID(i, 4), spanID(i, 5)
	notify := spanID(i, 6)
	return []spanSpec{
		{service: "frontend", name: "GET /checkout", kind: ptrace.SpanKindServer, trace: tid, id: feServer, start: at, dur: time.Duration(i+1) * 10 * time.Millisecond},
		{service: "frontend", name: "POST /pay", kind: ptrace.SpanKindClient, trace: tid, id: feClient, parent: feServer, start: at.Add(time.Millisecond), dur: 8 * time.Millisecond},
		{service: "payments", name: "POST /pay", kind: ptrace.SpanKindServer, trace: tid, id: payServer, parent: feClient, start: at.Add(2 * time.Millisecond), dur: 6 * time.Millisecond, failed: i < 2},
		{service: "payments", name: "SELECT orders", kind: ptrace.SpanKindClient, trace: tid, id: payDB, parent: payServer, start: at.Add(3 * time.Millisecond), dur: 2 * time.Millisecond, attrs: map[string]string{"db.system": "postgresql", "db.name": "orders"}},
		{service: "payments", name: "payment.done publish", kind: ptrace.SpanKindProducer, trace: tid, id: payProduce, parent: payServer, start: at.Add(5 * time.Millisecond), dur: time.Millisecond, attrs: map[string]string{"messaging.system": "kafka"}},
		{service: "notifier", name: "payment.done process", kind: ptrace.SpanKindConsumer, trace: tid, id: notify, parent: payProduce, start: at.Add(20 * time.Millisecond), dur: 3 * time.Millisecond},
	}
}

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

// BenchmarkOTelSpanMetricsConnector: the Collector's spanmetrics connector
// (default config, exemplars on) on the load of Vispyr's BenchmarkConsumeTraces.
func BenchmarkOTelSpanMetricsConnector(b *testing.B) {
	batches := make([]ptrace.Traces, 16)
	for i := range batches {
		batches[i] = benchBatch(i*100, 100)
	}
	spans := batches[0].SpanCount()
	f := spanmetricsconnector.NewFactory()
	cfg := f.CreateDefaultConfig().(*spanmetricsconnector.Config)
	cfg.Exemplars.Enabled = true
	ctx := context.Background()
	conn, err := f.CreateTracesToMetrics(ctx, connectortest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := conn.Start(ctx, componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	defer conn.Shutdown(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testpeer.CPUTime()
	n := 0
	for b.Loop() {
		if err := conn.ConsumeTraces(ctx, batches[n%len(batches)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64((testpeer.CPUTime()-cpu0).Microseconds())/float64(spans*b.N), "cpu-µs/span")
}
