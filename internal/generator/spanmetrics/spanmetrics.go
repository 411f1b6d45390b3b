// Package spanmetrics derives Tempo-compatible RED metrics from spans: call
// counts, latency histograms with exemplars and span sizes, labelled by
// service, span name, kind and status (Tempo's modules/generator/processor/
// spanmetrics names, which Grafana's APM table queries).
package spanmetrics

import (
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/util/strutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/generator/series"
)

// Metric names written by the processor.
const (
	MetricCalls   = "traces_spanmetrics_calls_total"
	MetricLatency = "traces_spanmetrics_latency" // _bucket, _sum, _count
	MetricSize    = "traces_spanmetrics_size_total"
)

// Name identifies the processor in self-metrics and logs.
const Name = "span_metrics"

// Processor aggregates spans into series in memory; Collect snapshots them.
type Processor struct {
	bounds     []float64
	intrinsic  IntrinsicDimensions
	attrKeys   []string    // distinct attribute names the dimensions read
	dims       []dimension // one per label
	perEntry   int         // Prometheus series per table entry
	staleAfter int64       // ms

	mu    sync.Mutex
	tbl   *series.Table[entry]
	limit *series.Limit
	// Scratch space reused under mu, so the per-span path does not allocate.
	vals     []string
	resVals  []string
	resFound []bool
	sizer    ptrace.ProtoMarshaler
}

// dimension is one configured label and the attributes that feed it.
type dimension struct {
	label string
	keys  []int // indexes into attrKeys; the last present wins
}

type entry struct {
	lastUpdated int64 // ms
	isNew       bool  // never collected yet
	calls, size float64
	latency     series.Histogram

	callsLbls, sizeLbls labels.Labels
	latencyLbls         series.HistogramLabels
}

// intrinsic label order in the value tuple.
var intrinsicLabels = [...]string{LabelService, LabelSpanName, LabelSpanKind, LabelStatusCode, LabelStatusMessage}

// New returns a processor for a validated cfg. Series not updated for
// staleAfter are dropped from memory (and so stop being written).
func New(cfg Config, staleAfter time.Duration, m *series.SelfMetrics, logger *slog.Logger) *Processor {
	p := &Processor{
		bounds:     append([]float64(nil), cfg.HistogramBuckets...),
		intrinsic:  cfg.IntrinsicDimensions,
		perEntry:   seriesPerEntry(cfg.HistogramBuckets),
		staleAfter: staleAfter.Milliseconds(),
		tbl:        series.NewTable[entry](),
		limit:      series.NewLimit(cfg.MaxActiveSeries, Name, m, logger),
	}
	byLabel := map[string]int{}
	for _, attr := range cfg.Dimensions {
		k := len(p.attrKeys)
		p.attrKeys = append(p.attrKeys, attr)
		label := strutil.SanitizeLabelName(attr)
		if i, ok := byLabel[label]; ok {
			p.dims[i].keys = append(p.dims[i].keys, k)
			continue
		}
		byLabel[label] = len(p.dims)
		p.dims = append(p.dims, dimension{label: label, keys: []int{k}})
	}
	p.vals = make([]string, 0, len(intrinsicLabels)+len(p.dims))
	p.resVals = make([]string, len(p.attrKeys))
	p.resFound = make([]bool, len(p.attrKeys))
	return p
}

// seriesPerEntry is calls + size + the latency histogram's series.
func seriesPerEntry(bounds []float64) int { return 2 + series.Series(bounds) }

// Consume adds the spans of td, as seen at nowMs (unix ms).
func (p *Processor) Consume(td ptrace.Traces, nowMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		service := ""
		if v, ok := res.Get("service.name"); ok {
			service = attrString(v)
		}
		for k, key := range p.attrKeys {
			v, ok := res.Get(key)
			p.resFound[k] = ok
			if ok {
				p.resVals[k] = attrString(v)
			}
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for s := 0; s < spans.Len(); s++ {
				p.consumeSpan(service, spans.At(s), nowMs)
			}
		}
	}
}

func (p *Processor) consumeSpan(service string, span ptrace.Span, nowMs int64) {
	vals := p.vals[:0]
	status := span.Status()
	vals = append(vals,
		pick(p.intrinsic.Service, service),
		pick(p.intrinsic.SpanName, span.Name()),
		pick(p.intrinsic.SpanKind, KindString(span.Kind())),
		pick(p.intrinsic.StatusCode, StatusString(status.Code())),
		pick(p.intrinsic.StatusMessage, status.Message()))
	if len(p.dims) > 0 {
		attrs := span.Attributes()
		for _, d := range p.dims {
			val := ""
			for _, k := range d.keys {
				if p.resFound[k] {
					val = p.resVals[k]
				} else if v, ok := attrs.Get(p.attrKeys[k]); ok {
					val = attrString(v)
				}
			}
			vals = append(vals, val)
		}
	}
	p.vals = vals

	e := p.tbl.GetOrInsert(vals, p.limit, p.perEntry, nowMs, p.initEntry)
	if e == nil {
		return
	}
	e.lastUpdated = nowMs
	e.calls++
	e.size += float64(p.sizer.SpanSize(span))
	latency := 0.0 // spans ending before they start count as instant, as in Tempo
	if start, end := span.StartTimestamp(), span.EndTimestamp(); end > start {
		latency = float64(end-start) / 1e9
	}
	e.latency.Observe(p.bounds, latency, span.TraceID(), span.SpanID())
}

func pick(enabled bool, v string) string {
	if enabled {
		return v
	}
	return ""
}

// initEntry builds the label sets of a new entry. Empty values become absent
// labels, as in Prometheus an empty label and a missing one are the same.
func (p *Processor) initEntry(e *entry, vals []string) {
	b := labels.NewBuilder(labels.EmptyLabels())
	for i, name := range intrinsicLabels {
		b.Set(name, series.CleanValue(vals[i]))
	}
	for i, d := range p.dims {
		b.Set(d.label, series.CleanValue(vals[len(intrinsicLabels)+i]))
	}
	b.Set(labels.MetricName, MetricCalls)
	e.callsLbls = b.Labels()
	b.Set(labels.MetricName, MetricSize)
	e.sizeLbls = b.Labels()
	e.latencyLbls = series.NewHistogramLabels(b, MetricLatency, p.bounds)
	e.latency = series.NewHistogram(p.bounds)
	e.isNew = true
}

// Collect adds every live series to b and forgets those not updated for the
// stale duration.
func (p *Processor) Collect(b *series.Batch, nowMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	staleBefore := nowMs - p.staleAfter
	p.tbl.Range(func(_ []string, e *entry) bool {
		if e.lastUpdated < staleBefore {
			p.limit.Remove(p.perEntry)
			return false
		}
		b.AddCounter(e.callsLbls, e.calls, e.isNew)
		b.AddHistogram(&e.latencyLbls, &e.latency, e.isNew)
		b.AddCounter(e.sizeLbls, e.size, e.isNew)
		e.isNew = false
		return true
	})
	p.limit.Report()
}

// attrString renders an attribute value as a label value; strings are
// returned without copying.
func attrString(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10)
	case pcommon.ValueTypeBool:
		return strconv.FormatBool(v.Bool())
	default:
		return v.AsString()
	}
}

// KindString names a span kind as Tempo's labels do (the OTLP enum names).
func KindString(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindInternal:
		return "SPAN_KIND_INTERNAL"
	case ptrace.SpanKindServer:
		return "SPAN_KIND_SERVER"
	case ptrace.SpanKindClient:
		return "SPAN_KIND_CLIENT"
	case ptrace.SpanKindProducer:
		return "SPAN_KIND_PRODUCER"
	case ptrace.SpanKindConsumer:
		return "SPAN_KIND_CONSUMER"
	default:
		return "SPAN_KIND_UNSPECIFIED"
	}
}

// StatusString names a status code as Tempo's labels do.
func StatusString(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "STATUS_CODE_OK"
	case ptrace.StatusCodeError:
		return "STATUS_CODE_ERROR"
	default:
		return "STATUS_CODE_UNSET"
	}
}
