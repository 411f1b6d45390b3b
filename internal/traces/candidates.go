package traces

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces/block"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// candidate is one stored piece of a trace that may match a query: either a trace in
// a head or an entry of a block's index. Nothing of it is read until it is evaluated.
type candidate struct {
	id         [16]byte
	start, end int64
	head       *head
	block      *block.Reader
	entry      block.TraceEntry
}

// gatherer finds the candidates of one query. It works from what is cheap to read:
// head rows in memory, and for blocks the meta summary, the tag postings and the
// trace index, never the spans.
type gatherer struct {
	s          *Store
	tenant     string
	hints      traceql.Hints
	local      bool
	start, end int64 // Unix ns, 0 = open
	heads      []*head
	blocks     []*block.Reader
	m          *SearchMetrics
	// keep, if above 0, bounds the candidates taken from each head and block to
	// its keep most recent: enough for a query that matches every trace (see
	// search). truncated records that some were left out.
	keep      int
	truncated bool
}

func (s *Store) newGatherer(tenant string, q *traceql.Query, start, end int64, m *SearchMetrics) *gatherer {
	heads, blocks := s.sources(tenant)
	return &gatherer{s: s, tenant: tenant, hints: q.Hints(), local: q.SpanLocal(), start: start, end: end,
		heads: heads, blocks: blocks, m: m}
}

// all returns every candidate of the heads and blocks.
func (g *gatherer) all(ctx context.Context) ([]candidate, error) {
	g.countJobs()
	out := g.fromHeads(nil)
	for _, b := range g.blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var err error
		if out, err = g.fromBlock(ctx, out, b); err != nil {
			return nil, fmt.Errorf("search block %s: %w", b.Meta.ID, err)
		}
		g.m.CompletedJobs++
	}
	return out, nil
}

// countJobs fills the totals of the search metrics: one job per block and one for
// the heads, which fromHeads completes.
func (g *gatherer) countJobs() {
	g.m.TotalJobs = int64(len(g.blocks) + 1)
	for _, b := range g.blocks {
		g.m.TotalBlocks++
		g.m.TotalBlockBytes += b.Meta.DataBytes
	}
}

// fromHeads appends the candidates of every head.
func (g *gatherer) fromHeads(out []candidate) []candidate {
	for _, h := range g.heads {
		out = g.fromHead(out, h)
	}
	g.m.CompletedJobs++
	return out
}

// outside reports whether a piece lies outside the searched time range. A trace
// overlaps the range only if one of its pieces does, so this never loses a trace.
func (g *gatherer) outside(start, end int64) bool {
	return (g.end > 0 && start > g.end) || (g.start > 0 && end < g.start)
}

// keepFailed decides about a piece that fails the hints: a query that is not
// span-local may still match through the trace's other pieces, wherever they are.
func (g *gatherer) keepFailed(id [16]byte, src any) bool {
	return !g.local && g.s.storedElsewhere(g.tenant, id, src, g.heads, g.blocks)
}

func (g *gatherer) fromHead(out []candidate, h *head) []candidate {
	constrained := !g.hints.Unconstrained()
	var failed [][16]byte
	base := len(out)
	h.scanRefs(g.tenant, func(spans []*spanrow.Span) bool {
		start, end := refBounds(spans)
		if g.outside(start, end) {
			return true
		}
		id := spans[0].TraceID
		if constrained && !headMayMatch(g.hints, spans) {
			failed = append(failed, id) // checked below, outside the head's lock
			return true
		}
		out = g.add(out, base, candidate{id: id, start: start, end: end, head: h})
		return true
	})
	for _, id := range failed {
		if g.keepFailed(id, h) {
			if rows := h.trace(g.tenant, id); len(rows) > 0 {
				start, end := traceBounds(rows)
				out = g.add(out, base, candidate{id: id, start: start, end: end, head: h})
			}
		}
	}
	return out
}

func (g *gatherer) fromBlock(ctx context.Context, out []candidate, b *block.Reader) ([]candidate, error) {
	if !b.Meta.Overlaps(g.start, g.end) {
		return out, nil
	}
	// A block whose summary rules the query out can still hold pieces of traces
	// that match as a whole, if the query is not span-local.
	summaryOK := g.hints.MayMatch(blockSummary(&b.Meta.Summary))
	if !summaryOK && (g.local || b.Meta.SplitTraces == 0) {
		return out, nil
	}
	idx, err := b.Index(ctx)
	if err != nil {
		return nil, err
	}
	tags, err := b.Tags(ctx)
	if err != nil {
		return nil, err
	}
	g.m.InspectedBytes += b.Meta.IndexBytes + b.Meta.TagsBytes
	ords, constrained := tagCandidates(tags, g.hints)
	next := 0 // the next ordinal in ords
	base := len(out)
	for i := range idx.Len() {
		e := idx.At(i)
		end := e.Start + int64(e.Duration)
		if g.outside(e.Start, end) {
			continue
		}
		pass := summaryOK
		if pass && constrained {
			for next < len(ords) && int(ords[next]) < i {
				next++
			}
			pass = next < len(ords) && int(ords[next]) == i
		}
		pass = pass && durationsMayMatch(g.hints, e.MaxSpan, e.Duration)
		// A split trace is whole only with its other pieces; its newest piece is
		// marked, so keeping marked pieces finds every split trace (see
		// block.TraceEntry.Split) without testing each trace against every block.
		if !pass && (g.local || !e.Split) {
			continue
		}
		out = g.add(out, base, candidate{id: e.ID, start: e.Start, end: end, block: b, entry: e})
	}
	return out, nil
}

// add appends a candidate of the source whose candidates start at out[base], or,
// once the source has g.keep of them, keeps the keep most recent: they are then a
// heap with the oldest first.
func (g *gatherer) add(out []candidate, base int, c candidate) []candidate {
	if g.keep <= 0 || len(out)-base < g.keep {
		out = append(out, c)
		if g.keep > 0 && len(out)-base == g.keep {
			h := out[base:]
			for i := len(h)/2 - 1; i >= 0; i-- {
				siftOldest(h, i)
			}
		}
		return out
	}
	g.truncated = true
	if h := out[base:]; newer(&c, &h[0]) {
		h[0] = c
		siftOldest(h, 0)
	}
	return out
}

// byRecency orders candidates most recent first, by the start of their piece, then
// by trace ID so that the order does not depend on where they were found.
func byRecency(a, b candidate) int {
	if c := cmp.Compare(b.start, a.start); c != 0 {
		return c
	}
	return bytes.Compare(b.id[:], a.id[:])
}

func newer(a, b *candidate) bool { return byRecency(*a, *b) < 0 }

// siftOldest moves h[i] down the heap h, whose top is its least recent candidate.
func siftOldest(h []candidate, i int) {
	for {
		least := i
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c < len(h) && newer(&h[least], &h[c]) {
				least = c
			}
		}
		if least == i {
			return
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
}

// durationsMayMatch tests the duration hints against a trace's longest span and
// length as the index records them (rounded up, so never too short).
func durationsMayMatch(h traceql.Hints, maxSpan, traceDur time.Duration) bool {
	return (h.MinSpanDuration == 0 || maxSpan >= h.MinSpanDuration) &&
		(h.MinTraceDuration == 0 || traceDur >= h.MinTraceDuration)
}

// tagCandidates intersects the postings that the hints select. constrained is false
// when the postings cannot narrow the block down (every trace is a candidate).
func tagCandidates(t *block.TagIndex, h traceql.Hints) (ords []uint32, constrained bool) {
	var sets [][]uint32
	use := func(l []uint32, ok bool) {
		if ok {
			sets = append(sets, l)
		}
	}
	if h.ServiceNames != nil {
		use(t.Postings(block.ScopeResource, "service.name", isString(h.ServiceNames)))
	}
	if h.SpanNames != nil {
		use(t.Postings(block.ScopeName, "", isString(h.SpanNames)))
	}
	if h.RequireError {
		use(t.Postings(block.ScopeStatus, "", isString([]string{"error"})))
	}
	for _, k := range h.AttrKeys {
		use(attrPostings(t, k, nil))
	}
	for _, kv := range h.AttrValues {
		use(attrPostings(t, kv.ScopedKey, isString([]string{kv.Value})))
	}
	for _, c := range h.AttrCmps {
		use(attrPostings(t, c.ScopedKey, c.Holds))
	}
	if len(sets) == 0 {
		return nil, false
	}
	slices.SortFunc(sets, func(a, b []uint32) int { return len(a) - len(b) })
	ords = sets[0]
	for _, s := range sets[1:] {
		if len(ords) == 0 {
			break
		}
		ords = block.Intersect(ords, s)
	}
	return ords, true
}

func isString(vals []string) func(typ, text string) bool {
	return func(typ, text string) bool { return typ == "string" && slices.Contains(vals, text) }
}

// attrPostings is Postings for a scoped attribute key; an unscoped key may be on
// the span or the resource. Other scopes (events, links, scope) are not indexed.
func attrPostings(t *block.TagIndex, k traceql.ScopedKey, match func(typ, text string) bool) ([]uint32, bool) {
	switch k.Scope {
	case "span":
		return t.Postings(block.ScopeSpan, k.Key, match)
	case "resource":
		return t.Postings(block.ScopeResource, k.Key, match)
	case "":
		s, ok1 := t.Postings(block.ScopeSpan, k.Key, match)
		r, ok2 := t.Postings(block.ScopeResource, k.Key, match)
		if !ok1 || !ok2 {
			return nil, false
		}
		return block.Union(s, r), true
	}
	return nil, false
}

// sharedTest returns a test of whether the tenant's sources other than exclude (heads
// and blocks as they are now, plus later writes to the current head) may hold spans
// of a trace: a map lookup per head and a bloom test per block.
func (s *Store) sharedTest(tenant string, exclude ...any) func(id [16]byte) bool {
	heads, blocks := s.sources(tenant)
	heads = slices.DeleteFunc(heads, func(h *head) bool { return slices.Contains(exclude, any(h)) })
	blocks = slices.DeleteFunc(blocks, func(b *block.Reader) bool { return slices.Contains(exclude, any(b)) })
	return func(id [16]byte) bool {
		for _, h := range heads {
			if h.has(tenant, id) {
				return true
			}
		}
		if len(blocks) == 0 {
			return false
		}
		key := block.NewBloomKey(id)
		for _, b := range blocks {
			if b.MayContainKey(key) {
				return true
			}
		}
		return false
	}
}

// storedElsewhere reports whether sources other than src may hold spans of the trace:
// a map lookup per head and a bloom test per block.
func (s *Store) storedElsewhere(tenant string, id [16]byte, src any, heads []*head, blocks []*block.Reader) bool {
	for _, h := range heads {
		if any(h) != src && h.has(tenant, id) {
			return true
		}
	}
	for _, b := range blocks {
		if any(b) != src && b.MayContain(id) {
			return true
		}
	}
	return false
}
