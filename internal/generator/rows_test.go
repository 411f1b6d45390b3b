package generator

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/internal/generator/spanmetrics"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// rowsConfig turns on every processor and every attribute lookup: dimensions
// from span and resource attributes of several types, job and instance.
func rowsConfig() Config {
	cfg := defaultConfig()
	cfg.SpanMetrics.Dimensions = []string{"http.method", "deployment.environment", "retries", "cached"}
	cfg.OTelSpanMetrics.Enabled = true
	cfg.OTelSpanMetrics.Dimensions = []spanmetrics.Dimension{{Name: "http.method"}, {Name: "deployment.environment"}}
	cfg.ServiceGraph.Dimensions = []string{"deployment.environment", "http.method"}
	cfg.ServiceGraph.EnableVirtualNodeLabel = true
	return cfg
}

// rowsInput is checkout requests (complete, database and messaging edges),
// calls to a peer, unanswered calls and root spans (virtual and unpaired
// edges), with attributes of several types on spans and resources.
func rowsInput(first, n int, at time.Time) ptrace.Traces {
	var specs []spanSpec
	for i := first; i < first+n; i++ {
		specs = append(specs, checkout(i, at)...)
		specs = append(specs,
			spanSpec{service: "frontend", name: "POST /charge", kind: ptrace.SpanKindClient, trace: traceID(1000 + i), id: spanID(i, 7),
				start: at, dur: 30 * time.Millisecond, attrs: map[string]string{"peer.service": "stripe", "http.method": "POST"}},
			spanSpec{service: "frontend", name: "GET /lost", kind: ptrace.SpanKindClient, trace: traceID(2000 + i), id: spanID(i, 8),
				start: at, dur: time.Millisecond, failed: true})
		// Database calls named by the span, the resource or both.
		for j, attrs := range []map[string]string{
			{"db.system": "pg"},
			{"db.system": "pg", "peer.service": "pg-main"},
			{"db.namespace": "ledger", "network.peer.address": "10.0.0.9", "network.peer.port": "5432"},
			{"db.system": "pg", "network.peer.address": "10.0.0.8"},
		} {
			for k, svc := range []string{"batch", "report"} {
				specs = append(specs, spanSpec{service: svc, name: "query", kind: ptrace.SpanKindClient, trace: traceID(3000 + i), id: spanID(i, 10+j+4*k),
					start: at, dur: time.Millisecond, attrs: attrs})
			}
		}
	}
	td := build(specs...)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		res := rss.At(i).Resource().Attributes()
		switch v, _ := res.Get("service.name"); v.Str() {
		case "batch":
			res.PutStr("db.name", "warehouse")
			res.PutStr("server.address", "db-host")
		case "report":
			res.PutStr("db.name", "warehouse")
		}
		res.PutStr("deployment.environment", fmt.Sprintf("env-%d", i))
		res.PutStr("service.namespace", "shop")
		res.PutInt("service.instance.id", int64(i))
		spans := rss.At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < spans.Len(); j++ {
			a := spans.At(j).Attributes()
			a.PutInt("retries", int64(j%3))
			a.PutBool("cached", j%2 == 0)
			if j%4 == 0 {
				a.PutStr("http.method", "GET")
			}
		}
	}
	return td
}

// recorder is a storage that keeps every sample and exemplar as text.
type recorder struct{ lines []string }

func (r *recorder) Appender(context.Context) storage.Appender { return &recordingAppender{r: r} }

type recordingAppender struct {
	storage.Appender // nil: any method not overridden panics
	r                *recorder
}

func (a *recordingAppender) Append(_ storage.SeriesRef, l labels.Labels, ts int64, v float64) (storage.SeriesRef, error) {
	a.r.lines = append(a.r.lines, fmt.Sprintf("%s %d %g", l, ts, v))
	return 1, nil
}

func (a *recordingAppender) AppendExemplar(_ storage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	a.r.lines = append(a.r.lines, fmt.Sprintf("%s exemplar %s %g %d", l, e.Labels, e.Value, e.Ts))
	return 1, nil
}

func (a *recordingAppender) Commit() error   { return nil }
func (a *recordingAppender) Rollback() error { return nil }

// run feeds a fresh generator two rounds of input through consume, lets
// unpaired edges expire, flushes, and returns everything written, sorted.
func run(t *testing.T, consume func(g *Generator, ctx context.Context, td ptrace.Traces)) []string {
	t.Helper()
	clock := &fakeClock{t: t0}
	rec := &recorder{}
	g := newGenerator(rowsConfig(), rec, nil, nil, clock.Now)
	for round := range 2 {
		for _, tenant := range []string{pipeline.DefaultTenant, "other"} {
			ctx := pipeline.WithTenant(context.Background(), tenant)
			consume(g, ctx, rowsInput(round*10, 10, clock.Now()))
		}
		clock.Add(time.Second)
	}
	clock.Add(time.Minute)
	g.expire()
	if err := g.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	sort.Strings(rec.lines)
	return rec.lines
}

func rowsOf(t *testing.T, td ptrace.Traces) []spanrow.Span {
	t.Helper()
	rows, err := spanrow.FromTraces(td, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// Rows give the series pdata gives, whether built by FromTraces or read
// back from the WAL's row encoding (where resource blobs are shared by
// index, not by construction), and ConsumeRows keeps no memory of them:
// rows whose every string and blob is overwritten after each call change
// nothing in what is written.
func TestConsumeRowsMatchesConsumeTraces(t *testing.T) {
	want := run(t, func(g *Generator, ctx context.Context, td ptrace.Traces) {
		if err := g.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	})
	if len(want) < 200 {
		t.Fatalf("only %d samples: the input exercises too little", len(want))
	}
	for _, s := range []string{`deployment_environment="env-0"`, `http_method="GET"`, `retries="2"`, `cached="true"`,
		`job="shop/frontend"`, `instance="1"`, `server="stripe"`, `server="orders"`, `server="db-host"`, `server="pg-main"`, `server="10.0.0.9:5432"`, `server="10.0.0.8"`, `server="warehouse"`, `client="user"`, `traces_service_graph_unpaired_spans_total`} {
		if !slices.ContainsFunc(want, func(l string) bool { return strings.Contains(l, s) }) {
			t.Errorf("no series with %s", s)
		}
	}
	t.Run("FromTraces", func(t *testing.T) {
		got := run(t, func(g *Generator, ctx context.Context, td ptrace.Traces) {
			if err := g.ConsumeRows(ctx, rowsOf(t, td)); err != nil {
				t.Fatal(err)
			}
		})
		diff(t, got, want)
	})
	t.Run("DecodeRows", func(t *testing.T) {
		got := run(t, func(g *Generator, ctx context.Context, td ptrace.Traces) {
			rows, err := spanrow.DecodeRows(spanrow.AppendRows(nil, rowsOf(t, td)))
			if err != nil {
				t.Fatal(err)
			}
			if err := g.ConsumeRows(ctx, rows); err != nil {
				t.Fatal(err)
			}
		})
		diff(t, got, want)
	})
	t.Run("FromProto", func(t *testing.T) {
		got := run(t, func(g *Generator, ctx context.Context, td ptrace.Traces) {
			req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			rows, err := spanrow.FromProto(req, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if blobs := resourceBlobs(rows); blobs != td.ResourceSpans().Len() {
				t.Fatalf("%d resource blobs for %d resources: the generator reads each once per blob", blobs, td.ResourceSpans().Len())
			}
			if err := g.ConsumeRows(ctx, rows); err != nil {
				t.Fatal(err)
			}
		})
		diff(t, got, want)
	})
	t.Run("OverwrittenAfterwards", func(t *testing.T) {
		got := run(t, func(g *Generator, ctx context.Context, td ptrace.Traces) {
			rows, mem := rowsIn(rowsOf(t, td))
			if err := g.ConsumeRows(ctx, rows); err != nil {
				t.Fatal(err)
			}
			for i := range mem {
				mem[i] = '#'
			}
		})
		diff(t, got, want)
	})
}

// resourceBlobs counts the changes of resource blob memory along rows.
func resourceBlobs(rows []spanrow.Span) int {
	n := 0
	for i := range rows {
		if i == 0 || unsafe.SliceData(rows[i].Resource) != unsafe.SliceData(rows[i-1].Resource) {
			n++
		}
	}
	return n
}

// rowsIn copies rows so that every string and blob lives in the one
// buffer it returns, as rows decoded in place from a request would.
func rowsIn(rows []spanrow.Span) ([]spanrow.Span, []byte) {
	n := 0
	for _, r := range rows {
		n += len(r.Service) + len(r.Name) + len(r.StatusMessage) + len(r.TraceState) +
			len(r.Resource) + len(r.Scope) + len(r.Attrs) + len(r.Extra)
	}
	mem := make([]byte, 0, n)
	bytesIn := func(b []byte) []byte {
		mem = append(mem, b...)
		return mem[len(mem)-len(b) : len(mem) : len(mem)]
	}
	str := func(s string) string {
		b := bytesIn([]byte(s))
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	out := make([]spanrow.Span, len(rows))
	for i, r := range rows {
		r.Service, r.Name, r.StatusMessage, r.TraceState = str(r.Service), str(r.Name), str(r.StatusMessage), str(r.TraceState)
		if i > 0 && unsafe.SliceData(rows[i-1].Resource) == unsafe.SliceData(rows[i].Resource) {
			r.Resource = out[i-1].Resource // shared, as in FromTraces' rows
		} else {
			r.Resource = bytesIn(r.Resource)
		}
		r.Scope, r.Attrs, r.Extra = bytesIn(r.Scope), bytesIn(r.Attrs), bytesIn(r.Extra)
		out[i] = r
	}
	return out, mem
}

func diff(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for i := 0; i < len(got) || i < len(want); i++ {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Fatalf("%d lines, want %d; first difference at %d:\n got %s\nwant %s", len(got), len(want), i, g, w)
		}
	}
}

// A request with a span lacking its IDs derives nothing: the trace store
// refuses such a request whole, so its spans are never stored.
func TestSpansWithoutIDsDeriveNothing(t *testing.T) {
	td := build(checkout(0, t0)...)
	bad := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
	bad.SetName("no ids")
	bad.SetKind(ptrace.SpanKindServer)
	bad.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
	rec := &recorder{}
	g := newGenerator(rowsConfig(), rec, nil, nil, (&fakeClock{t: t0}).Now)
	if err := g.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatalf("ConsumeTraces: %v", err)
	}
	if err := g.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rec.lines) != 0 || g.graph.Pending() != 0 {
		t.Errorf("derived %d samples and %d waiting edges from a request the store refuses", len(rec.lines), g.graph.Pending())
	}
}

// Nothing the generator keeps points into rows once ConsumeRows returns,
// not even scratch space: rows may be the trace head's, and a label value
// or lookup left behind would keep a whole arena of the head alive.
func TestConsumeRowsKeepsNoMemoryOfRows(t *testing.T) {
	clock := &fakeClock{t: t0}
	g := newGenerator(rowsConfig(), &recorder{}, nil, nil, clock.Now)
	freed := make(chan struct{})
	func() {
		rows, mem := rowsIn(rowsOf(t, rowsInput(0, 3, t0)))
		runtime.AddCleanup(&mem[0], func(ch chan struct{}) { close(ch) }, freed)
		if err := g.ConsumeRows(context.Background(), rows); err != nil {
			t.Fatal(err)
		}
	}()
	for i := 0; i < 20; i++ {
		runtime.GC()
		select {
		case <-freed:
			if g.graph.Pending() == 0 {
				t.Fatal("no edge is waiting: the test proves nothing about them")
			}
			runtime.KeepAlive(g)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the rows' memory is still reachable after ConsumeRows returned")
}
