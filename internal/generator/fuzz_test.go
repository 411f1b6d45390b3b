package generator

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FuzzConsumeTraces feeds arbitrary OTLP trace requests (whatever a receiver
// would accept) through the generator and into a real TSDB: no input may
// panic, and every collection must be written.
func FuzzConsumeTraces(f *testing.F) {
	var m ptrace.ProtoMarshaler
	for _, td := range []ptrace.Traces{build(checkout(0, t0)...), benchBatch(2), ptrace.NewTraces()} {
		b, err := m.MarshalTraces(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	db, err := tsdb.Open(f.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	clock := &fakeClock{t: time.Now()}
	cfg := defaultConfig()
	cfg.SpanMetrics.Dimensions = []string{"http.method", "deployment.environment"}
	cfg.ServiceGraph.Dimensions = []string{"http.method"}
	g := newGenerator(cfg, db, nil, nil, clock.Now)
	var u ptrace.ProtoUnmarshaler
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := u.UnmarshalTraces(data)
		if err != nil {
			return
		}
		if err := g.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		clock.Add(11 * time.Second) // past the service-graph wait
		g.expire()
		if err := g.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
