package traceql

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// spanRow is one span of the trace being evaluated, flattened out of its
// ResourceSpans and ScopeSpans.
type spanRow struct {
	span     ptrace.Span
	res      pcommon.Resource
	scope    pcommon.InstrumentationScope
	start    uint64
	end      uint64
	parent   int32 // index of the parent row, -1 for roots and orphans; valid after ensureParents
	children int32 // number of child rows; valid after ensureParents
}

func (r *spanRow) duration() int64 {
	if r.end < r.start {
		return 0
	}
	return int64(r.end - r.start)
}

// traceCtx holds one trace during evaluation. Trace-wide facts (root span,
// parent links) are computed on first use, so queries that do not need them
// do not pay for them.
type traceCtx struct {
	rows []spanRow

	infoDone    bool
	rootName    value
	rootService value
	traceDur    value
	startNanos  uint64

	parentsDone bool
	byID        map[pcommon.SpanID]int32

	all  []int32 // 0..len(rows)-1
	root [1]sset // the initial spanset: every span of the trace
}

// allSpans returns the pipeline input: one spanset holding every span. Both
// the index list and the spanset live in the pooled context, so a trace that
// does not match costs no allocation.
func (c *traceCtx) allSpans() []sset {
	if cap(c.all) < len(c.rows) {
		c.all = make([]int32, len(c.rows))
	}
	c.all = c.all[:len(c.rows)]
	for i := range c.all {
		c.all[i] = int32(i)
	}
	c.root[0] = sset{spans: c.all}
	return c.root[:]
}

var ctxPool = sync.Pool{New: func() any { return &traceCtx{} }}

func newTraceCtx(td ptrace.Traces) *traceCtx {
	c := ctxPool.Get().(*traceCtx)
	c.rows = c.rows[:0]
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource()
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := ss.Scope()
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				c.rows = append(c.rows, spanRow{
					span: sp, res: res, scope: scope,
					start: uint64(sp.StartTimestamp()), end: uint64(sp.EndTimestamp()),
					parent: -1,
				})
			}
		}
	}
	return c
}

func (c *traceCtx) release() {
	clear(c.rows)
	c.rows = c.rows[:0]
	c.infoDone, c.parentsDone = false, false
	c.rootName, c.rootService, c.traceDur = nilValue, nilValue, nilValue
	clear(c.byID)
	if cap(c.rows) > 1<<16 {
		*c = traceCtx{} // do not keep huge traces alive in the pool
	}
	ctxPool.Put(c)
}

// ensureTraceInfo computes root span name and service and the trace duration
// (latest end minus earliest start), as Tempo defines them.
func (c *traceCtx) ensureTraceInfo() {
	if c.infoDone {
		return
	}
	c.infoDone = true
	var minStart, maxEnd uint64
	for i := range c.rows {
		r := &c.rows[i]
		if i == 0 || r.start < minStart {
			minStart = r.start
		}
		if r.end > maxEnd {
			maxEnd = r.end
		}
		if c.rootName.t == vNil && r.span.ParentSpanID().IsEmpty() {
			c.rootName = strValue(r.span.Name())
			if v, ok := r.res.Attributes().Get("service.name"); ok {
				c.rootService = strValue(v.AsString())
			}
		}
	}
	c.startNanos = minStart
	if len(c.rows) > 0 && maxEnd >= minStart {
		c.traceDur = value{t: vDur, n: int64(maxEnd - minStart)}
	}
}

// ensureParents links every span to its parent row and counts children.
func (c *traceCtx) ensureParents() {
	if c.parentsDone {
		return
	}
	c.parentsDone = true
	if c.byID == nil {
		c.byID = make(map[pcommon.SpanID]int32, len(c.rows))
	}
	for i := range c.rows {
		c.byID[c.rows[i].span.SpanID()] = int32(i)
		c.rows[i].children = 0
	}
	for i := range c.rows {
		r := &c.rows[i]
		r.parent = -1
		pid := r.span.ParentSpanID()
		if pid.IsEmpty() {
			continue
		}
		if p, ok := c.byID[pid]; ok && p != int32(i) {
			r.parent = p
			c.rows[p].children++
		}
	}
}
