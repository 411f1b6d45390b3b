package traceql

import (
	"slices"
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
	// Nested set numbers as Tempo assigns them (valid after ensureNestedSet):
	// a depth-first walk from each root numbers left on entry and right on
	// exit; nsParent is the parent's left, -1 for roots. Spans not connected
	// to a root keep 0.
	nsLeft, nsRight, nsParent int32
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
	nestedDone  bool

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
	c.infoDone, c.parentsDone, c.nestedDone = false, false, false
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

// ensureNestedSet assigns nested set numbers (nestedSetLeft/Right/Parent).
func (c *traceCtx) ensureNestedSet() {
	if c.nestedDone {
		return
	}
	c.nestedDone = true
	c.ensureParents()
	n := len(c.rows)
	// children lists in row order, as offsets into one flat slice
	start := make([]int32, n+1)
	for i := range c.rows {
		c.rows[i].nsLeft, c.rows[i].nsRight, c.rows[i].nsParent = 0, 0, 0
		if p := c.rows[i].parent; p >= 0 {
			start[p+1]++
		}
	}
	for i := 0; i < n; i++ {
		start[i+1] += start[i]
	}
	kids := make([]int32, start[n])
	fill := slices.Clone(start[:n])
	for i := range c.rows {
		if p := c.rows[i].parent; p >= 0 {
			kids[fill[p]] = int32(i)
			fill[p]++
		}
	}
	counter := int32(1)
	type frame struct{ row, next int32 }
	var stack []frame
	for i := range c.rows {
		if !c.rows[i].span.ParentSpanID().IsEmpty() {
			continue
		}
		c.rows[i].nsParent = -1
		c.rows[i].nsLeft = counter
		counter++
		stack = append(stack[:0], frame{row: int32(i), next: start[i]})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next < start[top.row+1] {
				child := kids[top.next]
				top.next++
				if c.rows[child].nsLeft != 0 { // cycle guard
					continue
				}
				c.rows[child].nsLeft = counter
				c.rows[child].nsParent = c.rows[top.row].nsLeft
				counter++
				stack = append(stack, frame{row: child, next: start[child]})
				continue
			}
			c.rows[top.row].nsRight = counter
			counter++
			stack = stack[:len(stack)-1]
		}
	}
}
