// Package spanmetrics derives Tempo-compatible RED metrics from spans: call
// counts, latency histograms with exemplars and span sizes, labelled by
// service, span name, kind and status (Tempo's modules/generator/processor/
// spanmetrics names, which Grafana's APM table queries).
package spanmetrics

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/util/strutil"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/generator/series"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
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

// Consume adds the spans of rows, as seen at nowMs (unix ms). It keeps no
// string of rows: the series table copies the label values it stores.
func (p *Processor) Consume(rows []spanrow.Span, nowMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var res resource
	for i := range rows {
		r := &rows[i]
		if !res.is(r.Resource) {
			p.loadResource(&res, r.Resource)
		}
		if res.skip {
			continue
		}
		p.consumeSpan(&res, r, nowMs)
	}
	// The scratch values alias the last rows: let them go, or they would
	// keep the memory of rows (a head's arena) alive until the next call.
	clear(p.resVals)
	clear(p.vals)
}

// resource is what the spans of one resource share. Rows of a resource share
// its blob, so it is read once per resource, not once per span.
type resource struct {
	blob                   []byte
	loaded, skip           bool
	service, job, instance string
}

// is reports whether blob is the one res was loaded from: the same memory,
// which FromTraces and the head give every span of a resource.
func (res *resource) is(blob []byte) bool {
	return res.loaded && spanrow.SameBlob(blob, res.blob)
}

// loadResource reads the service, job, instance and the dimensions' values
// from a resource blob into res and the processor's scratch.
func (p *Processor) loadResource(res *resource, blob []byte) {
	*res = resource{blob: blob, loaded: true}
	attrs, _ := spanrow.ResourceAttrs(blob) // a corrupt blob reads as no attributes
	v, ok := spanrow.Lookup(attrs, "service.name")
	if ok {
		res.service = v.AsString()
	} else if p.needService {
		res.skip = true
		return
	}
	if p.jobInstance {
		res.job, res.instance = jobInstance(attrs)
	}
	for k, key := range p.attrKeys {
		p.resVals[k], p.resFound[k] = spanrow.LookupString(attrs, key)
	}
}

func (p *Processor) consumeSpan(res *resource, r *spanrow.Span, nowMs int64) {
	vals := p.vals[:0]
	vals = append(vals,
		pick(p.intrinsic.Service, res.service),
		pick(p.intrinsic.SpanName, r.Name),
		pick(p.intrinsic.SpanKind, KindString(ptrace.SpanKind(r.Kind))),
		pick(p.intrinsic.StatusCode, StatusString(ptrace.StatusCode(r.StatusCode))),
		pick(p.intrinsic.StatusMessage, r.StatusMessage),
		res.job, res.instance)
	for _, d := range p.dims {
		vals = append(vals, p.dimValue(d, r.Attrs))
	}
	p.vals = vals

	e := p.tbl.GetOrInsert(vals, p.limit, p.perEntry, nowMs, p.initEntry)
	if e == nil {
		return
	}
	e.lastUpdated = nowMs
	e.calls++
	if p.names.size != "" {
		e.size += float64(spanrow.ProtoSize(r))
	}
	// Rows keep spans that end before they start as instants, which Tempo
	// counts as 0 too. Read unsigned: FromTraces stores the unsigned
	// difference, which passes MaxInt64 only for an end past 2262.
	latency := float64(uint64(r.Duration)) / p.unitNs
	e.latency.Observe(p.bounds, latency, r.TraceID, r.SpanID)
}

// dimValue is d's value for a span with attrs (encoded), looked up in the
// order of the naming (the resource's attributes were read by loadResource).
func (p *Processor) dimValue(d dimension, attrs []byte) string {
	val, found := "", false
	for _, k := range d.keys {
		switch {
		case p.spanFirst:
			if v, ok := spanrow.LookupString(attrs, p.attrKeys[k]); ok {
				val, found = v, true
			} else if p.resFound[k] {
				val, found = p.resVals[k], true
			}
		case p.resFound[k]:
			val, found = p.resVals[k], true
		default:
			if v, ok := spanrow.LookupString(attrs, p.attrKeys[k]); ok {
				val, found = v, true
			}
		}
	}
	if !found && d.hasDef {
		return d.def
	}
	return val
}

// jobInstance are the job and instance labels Prometheus's OTLP translation
// derives from a resource's attributes (encoded).
func jobInstance(res []byte) (job, instance string) {
	if v, ok := spanrow.LookupString(res, "service.name"); ok {
		job = v
		if ns, ok := spanrow.LookupString(res, "service.namespace"); ok {
			job = ns + "/" + job
		}
	}
	if v, ok := spanrow.LookupString(res, "service.instance.id"); ok {
		instance = v
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
