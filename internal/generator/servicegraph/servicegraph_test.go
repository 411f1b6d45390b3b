package servicegraph

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/generator/series"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

const t0 = int64(1_800_000_000_000) // ms

func defaults() Config {
	var c Config
	c.Defaults()
	return c
}

type fixture struct {
	t   *testing.T
	p   *Processor
	m   *series.SelfMetrics
	now int64
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	m := series.NewSelfMetrics(prometheus.NewRegistry())
	return &fixture{t: t, p: New(cfg, 15*time.Minute, m, nil), m: m, now: t0}
}

type span struct {
	service    string
	kind       ptrace.SpanKind
	trace      byte
	id, parent byte
	dur        time.Duration
	failed     bool
	attrs      map[string]any
	resAttrs   map[string]any
}

func (f *fixture) consume(spans ...span) {
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		if s.service != "" {
			rs.Resource().Attributes().PutStr("service.name", s.service)
		}
		putAll(rs.Resource().Attributes(), s.resAttrs)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetKind(s.kind)
		sp.SetTraceID(pcommon.TraceID{0: 1, 15: s.trace})
		sp.SetSpanID(pcommon.SpanID{0: 2, 7: s.id})
		if s.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{0: 2, 7: s.parent})
		}
		start := time.UnixMilli(f.now)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(s.dur)))
		if s.failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		putAll(sp.Attributes(), s.attrs)
	}
	rows, err := spanrow.FromTraces(td, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.p.Consume(rows, f.now)
}

func putAll(m pcommon.Map, attrs map[string]any) {
	for k, v := range attrs {
		switch v := v.(type) {
		case string:
			m.PutStr(k, v)
		case int:
			m.PutInt(k, int64(v))
		}
	}
}

// collect returns every series the processor would write now, as
// "labels value" lines, without the histogram series.
func (f *fixture) collect() string {
	var b series.Batch
	f.p.Collect(&b, f.now)
	var rows []string
	b.Each(func(l labels.Labels, v float64) {
		name := l.Get(labels.MetricName)
		if strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count") {
			return
		}
		rows = append(rows, fmt.Sprintf("%s %g", l, v))
	})
	sort.Strings(rows)
	return strings.Join(rows, "\n")
}

func (f *fixture) expect(want ...string) {
	f.t.Helper()
	sort.Strings(want)
	if got := f.collect(); got != strings.Join(want, "\n") {
		f.t.Errorf("series:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestServerSpanBeforeClientSpan(t *testing.T) {
	f := newFixture(t, defaults())
	f.consume(span{service: "api", kind: ptrace.SpanKindServer, trace: 1, id: 2, parent: 1, dur: 50 * time.Millisecond})
	if f.p.Pending() != 1 {
		t.Fatalf("pending = %d, want 1", f.p.Pending())
	}
	f.consume(span{service: "web", kind: ptrace.SpanKindClient, trace: 1, id: 1, dur: 70 * time.Millisecond, failed: true})
	if f.p.Pending() != 0 {
		t.Fatalf("pending = %d, want 0", f.p.Pending())
	}
	f.expect(
		`{__name__="traces_service_graph_request_total", client="web", server="api"} 1`,
		`{__name__="traces_service_graph_request_failed_total", client="web", server="api"} 1`,
	)
	var b series.Batch
	f.p.Collect(&b, f.now)
	got := map[string]float64{}
	b.Each(func(l labels.Labels, v float64) {
		if n := l.Get(labels.MetricName); strings.HasSuffix(n, "_sum") {
			got[n] = v
		}
	})
	if got[MetricServerSeconds+"_sum"] != 0.05 || got[MetricClientSeconds+"_sum"] != 0.07 {
		t.Errorf("latency sums = %v, want server 0.05 and client 0.07", got)
	}
}

func TestExpiredEdges(t *testing.T) {
	cfg := defaults()
	cfg.EnableVirtualNodeLabel = true
	f := newFixture(t, cfg)
	f.consume(
		// A client calling something uninstrumented that it names.
		span{service: "web", kind: ptrace.SpanKindClient, trace: 1, id: 1, attrs: map[string]any{"peer.service": "stripe"}},
		// A client whose callee never reports and is not named.
		span{service: "web", kind: ptrace.SpanKindClient, trace: 2, id: 1},
		// A root server span: called by someone outside, named by a peer attribute.
		span{service: "api", kind: ptrace.SpanKindServer, trace: 3, id: 1, attrs: map[string]any{"peer.service": "mobile-app"}},
		// A root server span with nothing to name its caller.
		span{service: "api", kind: ptrace.SpanKindServer, trace: 4, id: 1},
		// A consumer whose producer never reports: not a root, so unpaired.
		span{service: "worker", kind: ptrace.SpanKindConsumer, trace: 5, id: 2, parent: 1},
	)
	f.now += cfg.Wait.Milliseconds() - 1
	f.p.Expire(f.now)
	if f.p.Pending() != 5 {
		t.Fatalf("pending before the wait = %d, want 5", f.p.Pending())
	}
	f.expect()
	f.now++
	f.p.Expire(f.now)
	if f.p.Pending() != 0 {
		t.Fatalf("pending after the wait = %d, want 0", f.p.Pending())
	}
	f.expect(
		`{__name__="traces_service_graph_request_total", client="web", connection_type="virtual_node", server="stripe", virtual_node="server"} 1`,
		`{__name__="traces_service_graph_request_failed_total", client="web", connection_type="virtual_node", server="stripe", virtual_node="server"} 0`,
		`{__name__="traces_service_graph_request_total", client="mobile-app", connection_type="virtual_node", server="api", virtual_node="client"} 1`,
		`{__name__="traces_service_graph_request_failed_total", client="mobile-app", connection_type="virtual_node", server="api", virtual_node="client"} 0`,
		`{__name__="traces_service_graph_request_total", client="user", connection_type="virtual_node", server="api", virtual_node="client"} 1`,
		`{__name__="traces_service_graph_request_failed_total", client="user", connection_type="virtual_node", server="api", virtual_node="client"} 0`,
		`{__name__="traces_service_graph_unpaired_spans_total", client="web"} 1`,
		`{__name__="traces_service_graph_unpaired_spans_total", connection_type="messaging_system", server="worker"} 1`,
	)
}

func TestStoreFullDropsSpans(t *testing.T) {
	cfg := defaults()
	cfg.MaxItems = 2
	f := newFixture(t, cfg)
	for i := byte(1); i <= 4; i++ {
		f.consume(span{service: "web", kind: ptrace.SpanKindClient, trace: i, id: 1})
	}
	if f.p.Pending() != 2 {
		t.Fatalf("pending = %d, want max_items 2", f.p.Pending())
	}
	// A span completing a waiting edge is still paired when the store is full.
	f.consume(span{service: "api", kind: ptrace.SpanKindServer, trace: 1, id: 2, parent: 1})
	f.expect(
		`{__name__="traces_service_graph_dropped_spans_total", client="web"} 2`,
		`{__name__="traces_service_graph_request_total", client="web", server="api"} 1`,
		`{__name__="traces_service_graph_request_failed_total", client="web", server="api"} 0`,
	)
}

func TestMessagingAndDatabaseEdges(t *testing.T) {
	f := newFixture(t, defaults())
	f.consume(
		span{service: "shop", kind: ptrace.SpanKindProducer, trace: 1, id: 1, attrs: map[string]any{"messaging.system": "rabbitmq"}},
		span{service: "mailer", kind: ptrace.SpanKindConsumer, trace: 1, id: 2, parent: 1},
	)
	for _, tc := range []struct {
		attrs    map[string]any
		resAttrs map[string]any
		server   string
	}{
		{attrs: map[string]any{"db.system": "postgresql"}, server: "postgresql"},
		{attrs: map[string]any{"db.system": "postgresql", "db.name": "orders"}, server: "orders"},
		{attrs: map[string]any{"db.name": "orders", "db.namespace": "orders-ns"}, server: "orders-ns"},
		{attrs: map[string]any{"db.system.name": "mysql"}, server: "mysql"},
		{attrs: map[string]any{"db.system": "redis", "peer.service": "cache", "server.address": "redis.local"}, server: "cache"},
		{attrs: map[string]any{"db.system": "redis", "server.address": "redis.local"}, server: "redis.local"},
		{attrs: map[string]any{"db.system": "redis", "network.peer.address": "10.0.0.5", "network.peer.port": 6379}, server: "10.0.0.5:6379"},
		{attrs: map[string]any{"db.system": "redis", "network.peer.address": "10.0.0.6"}, server: "10.0.0.6"},
		{resAttrs: map[string]any{"db.system": "sqlite"}, server: "sqlite"},
	} {
		f.consume(span{service: "shop", kind: ptrace.SpanKindClient, trace: 9, id: 9, attrs: tc.attrs, resAttrs: tc.resAttrs})
	}
	if f.p.Pending() != 0 {
		t.Fatalf("pending = %d: database calls complete at once", f.p.Pending())
	}
	want := []string{
		`{__name__="traces_service_graph_request_total", client="shop", connection_type="messaging_system", server="mailer"} 1`,
		`{__name__="traces_service_graph_request_failed_total", client="shop", connection_type="messaging_system", server="mailer"} 0`,
	}
	for _, s := range []string{"postgresql", "orders", "orders-ns", "mysql", "cache", "redis.local", "10.0.0.5:6379", "10.0.0.6", "sqlite"} {
		want = append(want,
			fmt.Sprintf(`{__name__="traces_service_graph_request_total", client="shop", connection_type="database", server="%s"} 1`, s),
			fmt.Sprintf(`{__name__="traces_service_graph_request_failed_total", client="shop", connection_type="database", server="%s"} 0`, s))
	}
	f.expect(want...)
}

func TestDimensions(t *testing.T) {
	cfg := defaults()
	cfg.Dimensions = []string{"deployment.environment"}
	f := newFixture(t, cfg)
	f.consume(
		span{service: "web", kind: ptrace.SpanKindClient, trace: 1, id: 1, resAttrs: map[string]any{"deployment.environment": "staging"}},
		span{service: "api", kind: ptrace.SpanKindServer, trace: 1, id: 2, parent: 1, attrs: map[string]any{"deployment.environment": "prod"}},
	)
	// Without prefixes the server's value names the edge.
	f.expect(
		`{__name__="traces_service_graph_request_total", client="web", deployment_environment="prod", server="api"} 1`,
		`{__name__="traces_service_graph_request_failed_total", client="web", deployment_environment="prod", server="api"} 0`,
	)

	cfg.EnableClientServerPrefix = true
	f = newFixture(t, cfg)
	f.consume(
		span{service: "web", kind: ptrace.SpanKindClient, trace: 1, id: 1, resAttrs: map[string]any{"deployment.environment": "staging"}},
		span{service: "api", kind: ptrace.SpanKindServer, trace: 1, id: 2, parent: 1, attrs: map[string]any{"deployment.environment": "prod"}},
	)
	f.expect(
		`{__name__="traces_service_graph_request_total", client="web", client_deployment_environment="staging", server="api", server_deployment_environment="prod"} 1`,
		`{__name__="traces_service_graph_request_failed_total", client="web", client_deployment_environment="staging", server="api", server_deployment_environment="prod"} 0`,
	)
}

func TestSeriesLimitAndStaleness(t *testing.T) {
	cfg := defaults()
	cfg.MaxActiveSeries = seriesPerEdge(cfg.HistogramBuckets)
	f := newFixture(t, cfg)
	f.consume(
		span{service: "a", kind: ptrace.SpanKindClient, trace: 1, id: 1, attrs: map[string]any{"db.system": "one"}},
		span{service: "a", kind: ptrace.SpanKindClient, trace: 2, id: 1, attrs: map[string]any{"db.system": "two"}},
		span{service: "a", kind: ptrace.SpanKindClient, trace: 3, id: 1, attrs: map[string]any{"db.system": "one"}},
	)
	f.expect(
		`{__name__="traces_service_graph_request_total", client="a", connection_type="database", server="one"} 2`,
		`{__name__="traces_service_graph_request_failed_total", client="a", connection_type="database", server="one"} 0`,
	)
	if got := testutil.ToFloat64(f.m.DroppedSeries.WithLabelValues(Name)); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	// Once the edge has been idle for the stale duration it is forgotten and
	// its room goes to the next new edge.
	f.now += (15 * time.Minute).Milliseconds() + 1
	f.expect()
	f.consume(span{service: "a", kind: ptrace.SpanKindClient, trace: 4, id: 1, attrs: map[string]any{"db.system": "two"}})
	f.expect(
		`{__name__="traces_service_graph_request_total", client="a", connection_type="database", server="two"} 1`,
		`{__name__="traces_service_graph_request_failed_total", client="a", connection_type="database", server="two"} 0`,
	)
}

func TestSpansWithoutServiceNameAreIgnored(t *testing.T) {
	f := newFixture(t, defaults())
	f.consume(span{kind: ptrace.SpanKindClient, trace: 1, id: 1, attrs: map[string]any{"db.system": "pg"}})
	f.consume(span{service: "x", kind: ptrace.SpanKindInternal, trace: 1, id: 2})
	if f.p.Pending() != 0 {
		t.Errorf("pending = %d, want 0", f.p.Pending())
	}
	f.expect()
}

func TestConfigValidate(t *testing.T) {
	f := func(mod func(*Config), want string) {
		t.Helper()
		c := defaults()
		mod(&c)
		err := c.Validate()
		if want == "" {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to mention %q", err, want)
		}
	}
	f(func(*Config) {}, "")
	f(func(c *Config) { c.Wait = 0 }, "wait")
	f(func(c *Config) { c.MaxItems = -1 }, "max_items")
	f(func(c *Config) { c.HistogramBuckets = []float64{1, 0.5} }, "histogram_buckets")
	f(func(c *Config) { c.HistogramBuckets = nil }, "histogram_buckets")
	f(func(c *Config) { c.Dimensions = []string{"client"} }, `"client"`)
	f(func(c *Config) { c.Dimensions = []string{"a.b", "a_b"} }, "twice")
	f(func(c *Config) { c.MaxActiveSeries = 3 }, "max_active_series")
}
