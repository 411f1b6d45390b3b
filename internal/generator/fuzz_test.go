package generator

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FuzzConsumeTraces feeds arbitrary OTLP trace requests (whatever a receiver
// would accept) through a fresh generator: no input may panic, and every
// series written must be one Prometheus accepts and queries correctly.
func FuzzConsumeTraces(f *testing.F) {
	var m ptrace.ProtoMarshaler
	for _, td := range []ptrace.Traces{build(checkout(0, t0)...), benchBatch(0, 2), ptrace.NewTraces()} {
		b, err := m.MarshalTraces(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	cfg := defaultConfig()
	cfg.SpanMetrics.Dimensions = []string{"http.method", "deployment.environment"}
	cfg.ServiceGraph.Dimensions = []string{"http.method"}
	cfg.ServiceGraph.EnableVirtualNodeLabel = true
	var u ptrace.ProtoUnmarshaler
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := u.UnmarshalTraces(data)
		if err != nil {
			return
		}
		giveIDs(td)
		clock := &fakeClock{t: t0}
		app := &checkingAppendable{t: t}
		g := newGenerator(cfg, app, nil, nil, clock.Now)
		if err := g.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		clock.Add(cfg.ServiceGraph.Wait) // unpaired edges expire
		g.expire()
		if err := g.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if g.graph.Pending() != 0 {
			t.Fatalf("%d edges still pending after the wait", g.graph.Pending())
		}
	})
}

// giveIDs gives spans without a trace or span ID one: the generator derives
// nothing from a request with such a span (the store refuses it), and most
// fuzzed requests would have one. Some IDs repeat, so that edges pair.
func giveIDs(td ptrace.Traces) {
	n := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				n++
				if sp.TraceID().IsEmpty() {
					sp.SetTraceID(pcommon.TraceID{15: byte(n % 3)})
				}
				if sp.SpanID().IsEmpty() {
					sp.SetSpanID(pcommon.SpanID{7: byte(n)})
				}
			}
		}
	}
}

// checkingAppendable accepts what a Prometheus TSDB accepts and fails the
// test on a series Prometheus would refuse or misread: invalid or duplicate
// label names, invalid UTF-8, empty values, unknown metric names, negative or
// NaN counts, buckets without le.
type checkingAppendable struct {
	t    *testing.T
	seen map[string]float64
}

func (c *checkingAppendable) Appender(context.Context) storage.Appender {
	if c.seen == nil {
		c.seen = map[string]float64{}
	}
	return &checkingAppender{c: c}
}

type checkingAppender struct {
	storage.Appender // nil: any method not overridden panics, as it must not be called
	c                *checkingAppendable
}

func (a *checkingAppender) Append(_ storage.SeriesRef, l labels.Labels, ts int64, v float64) (storage.SeriesRef, error) {
	t := a.c.t
	if err := checkLabels(l); err != nil {
		t.Fatalf("series %s: %v", l, err)
	}
	if math.IsNaN(v) || v < 0 {
		t.Fatalf("series %s: value %v", l, v)
	}
	key := fmt.Sprintf("%s@%d", l, ts)
	if _, dup := a.c.seen[key]; dup {
		t.Fatalf("series %s written twice at %d", l, ts)
	}
	a.c.seen[key] = v
	return 1, nil
}

func (a *checkingAppender) AppendExemplar(_ storage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	if len(e.Labels.Get("trace_id")) != 32 || len(e.Labels.Get("span_id")) != 16 {
		a.c.t.Fatalf("exemplar of %s has labels %s", l, e.Labels)
	}
	return 1, nil
}

func (a *checkingAppender) Commit() error   { return nil }
func (a *checkingAppender) Rollback() error { return nil }

func checkLabels(l labels.Labels) error {
	name := l.Get(labels.MetricName)
	if !strings.HasPrefix(name, "traces_spanmetrics_") && !strings.HasPrefix(name, "traces_service_graph_") {
		return fmt.Errorf("unexpected metric name %q", name)
	}
	if strings.HasSuffix(name, "_bucket") && l.Get("le") == "" {
		return fmt.Errorf("bucket without le")
	}
	if _, dup := l.HasDuplicateLabelNames(); dup {
		return fmt.Errorf("duplicate label names")
	}
	var err error
	l.Range(func(lb labels.Label) {
		switch {
		case err != nil:
		case !model.LegacyValidation.IsValidLabelName(lb.Name) && lb.Name != labels.MetricName:
			err = fmt.Errorf("invalid label name %q", lb.Name)
		case lb.Value == "":
			err = fmt.Errorf("empty value for %q", lb.Name)
		case !model.LabelValue(lb.Value).IsValid():
			err = fmt.Errorf("invalid value for %q", lb.Name)
		case len(lb.Value) > 2048:
			err = fmt.Errorf("value of %q is %d bytes", lb.Name, len(lb.Value))
		}
	})
	return err
}
