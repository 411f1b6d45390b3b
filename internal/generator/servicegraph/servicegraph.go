// Package servicegraph pairs the client and server (or producer and
// consumer) spans of each request across services and writes Tempo's
// service-graph metrics, which Grafana's service map queries.
package servicegraph

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/generator/series"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// Metric names written by the processor (Tempo's).
const (
	MetricRequestTotal   = "traces_service_graph_request_total"
	MetricRequestFailed  = "traces_service_graph_request_failed_total"
	MetricServerSeconds  = "traces_service_graph_request_server_seconds"
	MetricClientSeconds  = "traces_service_graph_request_client_seconds"
	MetricUnpairedSpans  = "traces_service_graph_unpaired_spans_total"
	MetricDroppedSpans   = "traces_service_graph_dropped_spans_total"
	LabelClient          = "client"
	LabelServer          = "server"
	LabelConnectionType  = "connection_type"
	LabelVirtualNode     = "virtual_node"
	ConnMessagingSystem  = "messaging_system"
	ConnDatabase         = "database"
	ConnVirtualNode      = "virtual_node"
	unknownClientService = "user" // Tempo's name for whoever called a root span
)

// Name identifies the processor in self-metrics and logs.
const Name = "service_graph"

// Processor pairs spans into edges and keeps the edges' series in memory.
type Processor struct {
	cfg        Config
	dimLabels  []string // per value slot of the edge series tuple after the fixed ones
	perEdge    int      // Prometheus series per edge series entry
	staleAfter int64    // ms

	mu       sync.Mutex
	store    *store
	edges    *series.Table[edgeSeries]
	counters *series.Table[counter] // unpaired and dropped spans
	limit    *series.Limit
	vals     []string          // scratch for series lookups, under mu
	names    map[string]string // interned node names, under mu
}

type edgeSeries struct {
	lastUpdated   int64
	isNew         bool
	total, failed float64
	server        series.Histogram
	client        series.Histogram

	totalLbls, failedLbls  labels.Labels
	serverLbls, clientLbls series.HistogramLabels
}

type counter struct {
	lastUpdated int64
	isNew       bool
	v           float64
	lbls        labels.Labels
}

// fixed labels at the start of an edge series tuple
var edgeLabels = [...]string{LabelClient, LabelServer, LabelConnectionType, LabelVirtualNode}

// New returns a processor for a validated cfg.
func New(cfg Config, staleAfter time.Duration, m *series.SelfMetrics, logger *slog.Logger) *Processor {
	p := &Processor{
		cfg:        cfg,
		perEdge:    seriesPerEdge(cfg.HistogramBuckets),
		staleAfter: staleAfter.Milliseconds(),
		store:      newStore(cfg.Wait.Milliseconds(), cfg.MaxItems, len(cfg.Dimensions)),
		edges:      series.NewTable[edgeSeries](),
		counters:   series.NewTable[counter](),
		limit:      series.NewLimit(cfg.MaxActiveSeries, Name, m, logger),
	}
	for _, d := range cfg.Dimensions {
		p.dimLabels = append(p.dimLabels, dimensionLabels(d, cfg.EnableClientServerPrefix)...)
	}
	p.vals = make([]string, 0, len(edgeLabels)+len(p.dimLabels))
	p.names = make(map[string]string)
	return p
}

// maxNames bounds the interned node names; past it names are copied.
const maxNames = 10_000

// own replaces every string of e with one it owns. Node names repeat across
// edges, so they are interned and a waiting edge usually costs no copy.
func (p *Processor) own(e *edge) {
	e.client = p.intern(e.client)
	e.server = p.intern(e.server)
	e.peer = p.intern(e.peer)
	for i := range e.clientDims {
		e.clientDims[i] = strings.Clone(e.clientDims[i])
		e.serverDims[i] = strings.Clone(e.serverDims[i])
	}
}

func (p *Processor) intern(s string) string {
	if s == "" {
		return ""
	}
	if owned, ok := p.names[s]; ok {
		return owned
	}
	owned := strings.Clone(s)
	if len(p.names) < maxNames {
		p.names[owned] = owned
	}
	return owned
}

// seriesPerEdge is request and failed totals plus two histograms.
func seriesPerEdge(bounds []float64) int { return 2 + 2*series.Series(bounds) }

// Consume pairs the client/server and producer/consumer spans of rows, as
// seen at nowMs (unix ms). Spans of resources without service.name are
// ignored, as Tempo does: they cannot name a node. Strings read from rows are
// owned (copied or interned) before an edge or series keeps them.
func (p *Processor) Consume(rows []spanrow.Span, nowMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var res resource
	for i := range rows {
		r := &rows[i]
		switch ptrace.SpanKind(r.Kind) {
		case ptrace.SpanKindClient, ptrace.SpanKindProducer,
			ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		default:
			continue
		}
		if !res.is(r.Resource) {
			p.loadResource(&res, r.Resource)
		}
		if !res.hasService {
			continue
		}
		p.consumeSpan(&res, r, nowMs)
	}
	// The scratch values may alias the rows: let them go, or they would
	// keep the memory of rows (a head's arena) alive until the next call.
	clear(p.vals[:cap(p.vals)])
}

// resource is what the spans of one resource share, read once per resource
// blob (which every row of the resource shares), not once per span.
type resource struct {
	blob           []byte
	loaded         bool
	attrs          []byte // the encoded attribute map
	hasService     bool
	service        string
	db, serverName found // the resource's database and database node names
}

func (res *resource) is(blob []byte) bool {
	return res.loaded && spanrow.SameBlob(blob, res.blob)
}

func (p *Processor) loadResource(res *resource, blob []byte) {
	*res = resource{blob: blob, loaded: true}
	res.attrs, _ = spanrow.ResourceAttrs(blob) // a corrupt blob reads as no attributes
	res.service, res.hasService = spanrow.LookupString(res.attrs, "service.name")
	res.db.i, res.db.v = spanrow.LookupFirst(res.attrs, p.cfg.DatabaseNameAttributes)
	res.serverName.i, res.serverName.v = spanrow.LookupFirst(res.attrs, serverNameKeys)
}

func (p *Processor) consumeSpan(res *resource, r *spanrow.Span, nowMs int64) {
	kind := ptrace.SpanKind(r.Kind)
	isClient := kind == ptrace.SpanKindClient || kind == ptrace.SpanKindProducer
	key := edgeKey{trace: r.TraceID}
	if isClient {
		key.span = r.SpanID
	} else {
		key.span = r.ParentSpanID
	}
	e, stored := p.store.m[key]
	if !stored {
		e = p.store.newEdge(key, nowMs)
	}
	if isClient {
		p.updateClient(e, res, r)
	} else {
		p.updateServer(e, res, r)
	}
	switch {
	case e.complete():
		p.record(e, nowMs)
		if stored {
			p.store.remove(e)
		} else {
			p.store.release(e)
		}
	case stored:
		p.own(e)
	case p.store.full():
		p.count(MetricDroppedSpans, e.client, e.server, e.connType, nowMs)
		p.store.release(e)
	default:
		p.own(e)
		p.store.insert(e)
	}
}

func (p *Processor) updateClient(e *edge, res *resource, r *spanrow.Span) {
	// As in Tempo, the side seen last sets the connection type.
	e.kind = ptrace.SpanKind(r.Kind)
	e.connType = ""
	if e.kind == ptrace.SpanKindProducer {
		e.connType = ConnMessagingSystem
	}
	e.client = res.service
	e.clientLatency = durationSeconds(r)
	e.failed = e.failed || ptrace.StatusCode(r.StatusCode) == ptrace.StatusCodeError
	e.traceID = r.TraceID
	e.spanID = r.SpanID
	p.fillDims(e.clientDims, res.attrs, r.Attrs)
	p.findPeer(e, r.Attrs)
	p.detectDatabase(e, res, r.Attrs)
}

func (p *Processor) updateServer(e *edge, res *resource, r *spanrow.Span) {
	e.kind = ptrace.SpanKind(r.Kind)
	e.connType = ""
	if e.kind == ptrace.SpanKindConsumer {
		e.connType = ConnMessagingSystem
	}
	e.server = res.service
	e.serverLatency = durationSeconds(r)
	e.failed = e.failed || ptrace.StatusCode(r.StatusCode) == ptrace.StatusCodeError
	e.root = r.IsRoot()
	e.traceID = r.TraceID
	if e.spanID == ([8]byte{}) {
		e.spanID = r.SpanID
	}
	p.fillDims(e.serverDims, res.attrs, r.Attrs)
	p.findPeer(e, r.Attrs)
}

// findPeer sets the edge's peer from the first peer attribute the span has.
func (p *Processor) findPeer(e *edge, attrs []byte) {
	if i, v := spanrow.LookupFirst(attrs, p.cfg.PeerAttributes); i >= 0 {
		e.peer = v.AsString()
	}
}

// serverNameKeys name a database's node, first present wins; a host from
// network.peer.address gets network.peer.port appended.
var serverNameKeys = []string{"peer.service", "server.address", "network.peer.address"}

const peerAddress = 2 // index of network.peer.address in serverNameKeys

// detectDatabase turns a client span with a database attribute into a
// complete edge to the database node, named as Tempo names it: peer.service,
// server.address, network.peer.address[:port], else the database attribute.
// Each key is looked up in the resource, then in the span, before the next.
func (p *Processor) detectDatabase(e *edge, res *resource, attrs []byte) {
	_, db, ok := firstOf(p.cfg.DatabaseNameAttributes, res.db, attrs)
	if !ok {
		return
	}
	e.connType = ConnDatabase
	e.serverLatency = e.clientLatency
	i, name, ok := firstOf(serverNameKeys, res.serverName, attrs)
	switch {
	case !ok:
		e.server = db.AsString()
	case i == peerAddress:
		e.server = name.AsString()
		if port, ok := lookup("network.peer.port", res.attrs, attrs); ok {
			e.server += ":" + port
		}
	default:
		e.server = name.AsString()
	}
}

// found is a resource's answer to LookupFirst over a list of keys.
type found struct {
	i int // -1: none of the keys
	v spanrow.Value
}

// firstOf is the first of keys that the resource (whose answer is res) or
// the span has, the resource winning for the same key.
func firstOf(keys []string, res found, attrs []byte) (int, spanrow.Value, bool) {
	limit := keys
	if res.i >= 0 {
		limit = keys[:res.i] // only keys before the resource's can beat it
	}
	if i, v := spanrow.LookupFirst(attrs, limit); i >= 0 {
		return i, v, true
	}
	return res.i, res.v, res.i >= 0
}

func (p *Processor) fillDims(dst []string, res, attrs []byte) {
	for i, d := range p.cfg.Dimensions {
		if v, ok := lookup(d, res, attrs); ok {
			dst[i] = v
		}
	}
}

// lookup finds key among the resource attributes, then the span's (both
// encoded); a string found aliases the row.
func lookup(key string, res, attrs []byte) (string, bool) {
	if v, ok := spanrow.LookupString(res, key); ok {
		return v, true
	}
	return spanrow.LookupString(attrs, key)
}

// Expire ends the wait of edges older than the configured wait at nowMs. An
// edge missing its client becomes a call from a virtual node if its server
// span is a root; one missing its server becomes a call to a virtual node if
// the client span names a peer; the rest count as unpaired spans.
func (p *Processor) Expire(nowMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.store.expire(nowMs, func(e *edge) {
		switch {
		case e.client == "" && e.root:
			e.client = e.peer
			if e.client == "" {
				e.client = unknownClientService
			}
			e.connType = ConnVirtualNode
			p.recordVirtual(e, "client", nowMs)
		case e.server == "" && e.peer != "":
			e.server = e.peer
			e.connType = ConnVirtualNode
			p.recordVirtual(e, "server", nowMs)
		default:
			p.count(MetricUnpairedSpans, e.client, e.server, e.connType, nowMs)
		}
	})
}

func (p *Processor) recordVirtual(e *edge, side string, nowMs int64) {
	if !p.cfg.EnableVirtualNodeLabel {
		side = ""
	}
	p.recordAs(e, side, nowMs)
}

func (p *Processor) record(e *edge, nowMs int64) { p.recordAs(e, "", nowMs) }

// recordAs updates the series of a completed edge.
func (p *Processor) recordAs(e *edge, virtualNode string, nowMs int64) {
	vals := append(p.vals[:0], e.client, e.server, e.connType, virtualNode)
	for i := range p.cfg.Dimensions {
		if p.cfg.EnableClientServerPrefix {
			vals = append(vals, e.clientDims[i], e.serverDims[i])
		} else if e.serverDims[i] != "" {
			vals = append(vals, e.serverDims[i])
		} else {
			vals = append(vals, e.clientDims[i])
		}
	}
	p.vals = vals
	s := p.edges.GetOrInsert(vals, p.limit, p.perEdge, nowMs, p.initEdgeSeries)
	if s == nil {
		return
	}
	s.lastUpdated = nowMs
	s.total++
	if e.failed {
		s.failed++
	}
	s.server.Observe(p.cfg.HistogramBuckets, e.serverLatency, e.traceID, e.spanID)
	s.client.Observe(p.cfg.HistogramBuckets, e.clientLatency, e.traceID, e.spanID)
}

func (p *Processor) initEdgeSeries(s *edgeSeries, vals []string) {
	b := labels.NewBuilder(labels.EmptyLabels())
	for i, name := range edgeLabels {
		b.Set(name, series.CleanValue(vals[i]))
	}
	for i, name := range p.dimLabels {
		b.Set(name, series.CleanValue(vals[len(edgeLabels)+i]))
	}
	b.Set(labels.MetricName, MetricRequestTotal)
	s.totalLbls = b.Labels()
	b.Set(labels.MetricName, MetricRequestFailed)
	s.failedLbls = b.Labels()
	s.serverLbls = series.NewHistogramLabels(b, MetricServerSeconds, p.cfg.HistogramBuckets)
	s.clientLbls = series.NewHistogramLabels(b, MetricClientSeconds, p.cfg.HistogramBuckets)
	s.server = series.NewHistogram(p.cfg.HistogramBuckets)
	s.client = series.NewHistogram(p.cfg.HistogramBuckets)
	s.isNew = true
}

// count increments the unpaired or dropped spans counter of an edge's nodes.
func (p *Processor) count(metric, client, server, connType string, nowMs int64) {
	vals := append(p.vals[:0], metric, client, server, connType)
	p.vals = vals
	c := p.counters.GetOrInsert(vals, p.limit, 1, nowMs, func(c *counter, owned []string) {
		c.lbls = labels.New(
			labels.Label{Name: labels.MetricName, Value: owned[0]},
			labels.Label{Name: LabelClient, Value: series.CleanValue(owned[1])},
			labels.Label{Name: LabelServer, Value: series.CleanValue(owned[2])},
			labels.Label{Name: LabelConnectionType, Value: owned[3]},
		).WithoutEmpty()
		c.isNew = true
	})
	if c == nil {
		return
	}
	c.lastUpdated = nowMs
	c.v++
}

// Collect adds every live series to b and forgets those not updated for the
// stale duration.
func (p *Processor) Collect(b *series.Batch, nowMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	staleBefore := nowMs - p.staleAfter
	p.edges.Range(func(_ []string, s *edgeSeries) bool {
		if s.lastUpdated < staleBefore {
			p.limit.Remove(p.perEdge)
			return false
		}
		b.AddCounter(s.totalLbls, s.total, s.isNew)
		b.AddCounter(s.failedLbls, s.failed, s.isNew)
		b.AddHistogram(&s.serverLbls, &s.server, s.isNew)
		b.AddHistogram(&s.clientLbls, &s.client, s.isNew)
		s.isNew = false
		return true
	})
	p.counters.Range(func(_ []string, c *counter) bool {
		if c.lastUpdated < staleBefore {
			p.limit.Remove(1)
			return false
		}
		b.AddCounter(c.lbls, c.v, c.isNew)
		c.isNew = false
		return true
	})
	p.limit.Report()
}

// Pending returns the number of edges waiting for their other side.
func (p *Processor) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.store.m)
}

// durationSeconds is the span's duration; rows keep a span that ends before
// it starts as an instant, which Tempo counts as 0 too. Read unsigned, as
// FromTraces stores the unsigned difference of end and start.
func durationSeconds(r *spanrow.Span) float64 { return float64(uint64(r.Duration)) / 1e9 }
