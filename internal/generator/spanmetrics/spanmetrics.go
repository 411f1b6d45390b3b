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
	settings
	perEntry   int   // Prometheus series per table entry
	staleAfter int64 // ms

	mu    sync.Mutex
	tbl   *series.Table[entry]
	limit *series.Limit
	// Scratch space reused under mu, so the per-span path does not allocate.
	vals     []string
	resVals  []string
	resFound []bool
	sizer    ptrace.ProtoMarshaler
}

// settings are what differs between Tempo's names and the connector's.
type settings struct {
	names
	bounds        []float64
	unitNs        float64 // nanoseconds per unit of the latency histogram
	intrinsic     IntrinsicDimensions
	attrKeys      []string    // distinct attribute names the dimensions read
	dims          []dimension // one per label
	spanFirst     bool        // span attributes win over the resource's (the connector); else the resource's (Tempo)
	jobInstance   bool        // add job and instance from the resource
	needService   bool        // skip resources without service.name, as the connector does
	maxSeries     int
	processorName string
}

// names are the metric and intrinsic label names a processor writes.
type names struct {
	calls, latency, size string // size empty: not written
	intrinsic            [5]string
}

// dimension is one configured label and the attributes that feed it.
type dimension struct {
	label  string
	keys   []int // indexes into attrKeys; the last present wins
	def    string
	hasDef bool // def applies when no key is present
}

type entry struct {
	lastUpdated int64 // ms
	isNew       bool  // never collected yet
	calls, size float64
	latency     series.Histogram

	callsLbls, sizeLbls labels.Labels
	latencyLbls         series.HistogramLabels
}

// Tempo's intrinsic label names, in value-tuple order; the connector's
// differ in service_name.
var (
	tempoLabels = [5]string{LabelService, LabelSpanName, LabelSpanKind, LabelStatusCode, LabelStatusMessage}
	otelLabels  = [5]string{"service_name", LabelSpanName, LabelSpanKind, LabelStatusCode, LabelStatusMessage}
)

// Value-tuple layout: the intrinsic values, job, instance, then dimensions.
const (
	jobIdx   = len(tempoLabels)
	firstDim = jobIdx + 2
)

// New returns a processor with Tempo's names for a validated cfg. Series not
// updated for staleAfter are dropped from memory (and so stop being written).
func New(cfg Config, staleAfter time.Duration, m *series.SelfMetrics, logger *slog.Logger) *Processor {
	st := settings{
		names:         names{calls: MetricCalls, latency: MetricLatency, size: MetricSize, intrinsic: tempoLabels},
		bounds:        append([]float64(nil), cfg.HistogramBuckets...),
		unitNs:        1e9,
		intrinsic:     cfg.IntrinsicDimensions,
		maxSeries:     cfg.MaxActiveSeries,
		processorName: Name,
	}
	byLabel := map[string]int{}
	for _, attr := range cfg.Dimensions {
		k := len(st.attrKeys)
		st.attrKeys = append(st.attrKeys, attr)
		label := strutil.SanitizeLabelName(attr)
		if i, ok := byLabel[label]; ok {
			st.dims[i].keys = append(st.dims[i].keys, k)
			continue
		}
		byLabel[label] = len(st.dims)
		st.dims = append(st.dims, dimension{label: label, keys: []int{k}})
	}
	return build(st, staleAfter, m, logger)
}

func build(st settings, staleAfter time.Duration, m *series.SelfMetrics, logger *slog.Logger) *Processor {
	p := &Processor{
		settings:   st,
		perEntry:   seriesPerEntry(st.bounds, st.size != ""),
		staleAfter: staleAfter.Milliseconds(),
		tbl:        series.NewTable[entry](),
		limit:      series.NewLimit(st.maxSeries, st.processorName, m, logger),
	}
	p.vals = make([]string, 0, firstDim+len(p.dims))
	p.resVals = make([]string, len(p.attrKeys))
	p.resFound = make([]bool, len(p.attrKeys))
	return p
}

// seriesPerEntry is calls + size (when written) + the latency histogram's series.
func seriesPerEntry(bounds []float64, size bool) int {
	if size {
		return 2 + series.Series(bounds)
	}
	return 1 + series.Series(bounds)
}

// Consume adds the spans of td, as seen at nowMs (unix ms).
func (p *Processor) Consume(td ptrace.Traces, nowMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		service := ""
		v, ok := res.Get("service.name")
		if ok {
			service = attrString(v)
		} else if p.needService {
			continue
		}
		job, instance := "", ""
		if p.jobInstance {
			job, instance = jobInstance(res)
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
				p.consumeSpan(service, job, instance, spans.At(s), nowMs)
			}
		}
	}
}

func (p *Processor) consumeSpan(service, job, instance string, span ptrace.Span, nowMs int64) {
	vals := p.vals[:0]
	status := span.Status()
	vals = append(vals,
		pick(p.intrinsic.Service, service),
		pick(p.intrinsic.SpanName, span.Name()),
		pick(p.intrinsic.SpanKind, KindString(span.Kind())),
		pick(p.intrinsic.StatusCode, StatusString(status.Code())),
		pick(p.intrinsic.StatusMessage, status.Message()),
		job, instance)
	if len(p.dims) > 0 {
		attrs := span.Attributes()
		for _, d := range p.dims {
			vals = append(vals, p.dimValue(d, attrs))
		}
	}
	p.vals = vals

	e := p.tbl.GetOrInsert(vals, p.limit, p.perEntry, nowMs, p.initEntry)
	if e == nil {
		return
	}
	e.lastUpdated = nowMs
	e.calls++
	if p.names.size != "" {
		e.size += float64(p.sizer.SpanSize(span))
	}
	latency := 0.0 // spans ending before they start count as instant, as in Tempo
	if start, end := span.StartTimestamp(), span.EndTimestamp(); end > start {
		latency = float64(end-start) / p.unitNs
	}
	e.latency.Observe(p.bounds, latency, span.TraceID(), span.SpanID())
}

// dimValue is d's value for a span with attrs, looked up in the order of the
// naming (the resource's attributes were read by Consume).
func (p *Processor) dimValue(d dimension, attrs pcommon.Map) string {
	val, found := "", false
	for _, k := range d.keys {
		switch {
		case p.spanFirst:
			if v, ok := attrs.Get(p.attrKeys[k]); ok {
				val, found = attrString(v), true
			} else if p.resFound[k] {
				val, found = p.resVals[k], true
			}
		case p.resFound[k]:
			val, found = p.resVals[k], true
		default:
			if v, ok := attrs.Get(p.attrKeys[k]); ok {
				val, found = attrString(v), true
			}
		}
	}
	if !found && d.hasDef {
		return d.def
	}
	return val
}

// jobInstance are the job and instance labels Prometheus's OTLP translation
// derives from a resource.
func jobInstance(res pcommon.Map) (job, instance string) {
	if v, ok := res.Get("service.name"); ok {
		job = v.AsString()
		if ns, ok := res.Get("service.namespace"); ok {
			job = ns.AsString() + "/" + job
		}
	}
	if v, ok := res.Get("service.instance.id"); ok {
		instance = v.AsString()
	}
	return job, instance
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
	for i, name := range p.names.intrinsic {
		b.Set(name, series.CleanValue(vals[i]))
	}
	b.Set("job", series.CleanValue(vals[jobIdx]))
	b.Set("instance", series.CleanValue(vals[jobIdx+1]))
	for i, d := range p.dims {
		b.Set(d.label, series.CleanValue(vals[firstDim+i]))
	}
	b.Set(labels.MetricName, p.names.calls)
	e.callsLbls = b.Labels()
	if p.names.size != "" {
		b.Set(labels.MetricName, p.names.size)
		e.sizeLbls = b.Labels()
	}
	e.latencyLbls = series.NewHistogramLabels(b, p.names.latency, p.bounds)
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
		if p.names.size != "" {
			b.AddCounter(e.sizeLbls, e.size, e.isNew)
		}
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
