package traces

import (
	"context"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces/block"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// SearchRequest is a TraceQL search over one tenant's traces.
type SearchRequest struct {
	Tenant string
	Query  *traceql.Query
	// Start and End (Unix ns, 0 = open) keep traces that overlap the range.
	Start, End int64
	Limit      int
}

// SearchMetrics report the work a search did, as Tempo's response does.
type SearchMetrics struct {
	InspectedTraces, InspectedSpans, InspectedBytes int64
	TotalBlocks, TotalBlockBytes                    int64
	CompletedJobs, TotalJobs                        int64
}

// Match is one trace that matched, with the whole trace (all its stored spans) and
// the spansets the query selected from it.
type Match struct {
	TraceID  [16]byte
	Trace    ptrace.Traces
	Spansets []traceql.Spanset
	// Start and End are the earliest span start and latest span end (Unix ns).
	Start, End int64
}

type candidate struct {
	id    [16]byte
	start int64
}

// Search returns up to req.Limit matching traces, most recent first. The head and cut
// heads are searched too, so a trace is found as soon as its spans are acknowledged.
//
// Push-down: blocks outside the time range, or whose summary rules the query out
// (services, span names, attributes, durations, errors), are never read; inside a
// block, each trace's cheap row summary is checked before it is rebuilt and evaluated.
// Blocks are visited newest first and the scan stops once no older block can hold
// a trace more recent than the ones found.
//
// A trace whose spans straddle block cuts is evaluated whole unless the query is
// span-local (then each piece decides for its own spans); either way the returned
// spansets come from evaluating the whole trace.
func (s *Store) Search(ctx context.Context, req SearchRequest) ([]Match, SearchMetrics, error) {
	if req.Limit <= 0 {
		req.Limit = 20
	}
	hints := req.Query.Hints()
	heads, blocks := s.sources(req.Tenant)
	var m SearchMetrics
	found := map[[16]byte]int64{} // trace -> latest piece start seen
	local := req.Query.SpanLocal()
	// consider evaluates one stored piece of a trace (from source src). Queries that
	// are not span-local must see the whole trace, so a piece of a trace that also
	// has spans elsewhere is replaced by the merged trace.
	consider := func(rows []spanrow.Span, src any) {
		m.InspectedTraces++
		m.InspectedSpans += int64(len(rows))
		start, end := traceBounds(rows)
		if (req.End > 0 && start > req.End) || (req.Start > 0 && end < req.Start) {
			return
		}
		if !local && s.storedElsewhere(req.Tenant, rows[0].TraceID, src, heads, blocks) {
			whole, err := s.traceRows(ctx, req.Tenant, rows[0].TraceID, 0, 0)
			if err != nil || len(whole) == 0 {
				return
			}
			rows = whole
		}
		if !hints.Unconstrained() && !hints.MayMatch(rowSummary(rows)) {
			return
		}
		td, err := spanrow.ToTraces(rows)
		if err != nil {
			return
		}
		if len(req.Query.EvalTrace(td)) == 0 {
			return
		}
		if prev, ok := found[rows[0].TraceID]; !ok || start > prev {
			found[rows[0].TraceID] = start
		}
	}
	m.TotalJobs = int64(len(blocks) + 1)
	for _, h := range heads {
		h.each(req.Tenant, func(rows []spanrow.Span) bool {
			consider(rows, h)
			return ctx.Err() == nil
		})
	}
	m.CompletedJobs++
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].Meta.MaxEnd > blocks[j].Meta.MaxEnd })
	for _, b := range blocks {
		m.TotalBlocks++
		m.TotalBlockBytes += b.Meta.DataBytes
	}
	for _, b := range blocks {
		if err := ctx.Err(); err != nil {
			return nil, m, err
		}
		if len(found) >= req.Limit && b.Meta.MaxEnd < kthStart(found, req.Limit) {
			break // every trace in this and older blocks starts before what we have
		}
		if !b.Meta.Overlaps(req.Start, req.End) || !hints.MayMatch(blockSummary(&b.Meta.Summary)) {
			m.CompletedJobs++
			continue
		}
		m.InspectedBytes += b.Meta.DataBytes
		var err error
		if hints.Unconstrained() {
			err = b.Scan(ctx, func(rows []spanrow.Span) bool {
				consider(rows, b)
				return true
			})
		} else {
			err = s.scanPrefiltered(ctx, req, b, hints, heads, blocks, func(rows []spanrow.Span) { consider(rows, b) })
		}
		if err != nil {
			return nil, m, err
		}
		m.CompletedJobs++
	}
	return s.assemble(ctx, req, found, m)
}

// scanPrefiltered reads a block's filter columns (IDs, service, name, status, start,
// duration) first and the full rows only of traces whose column summary may match
// the hints, so a selective query skips decoding the attribute blobs of most traces.
func (s *Store) scanPrefiltered(ctx context.Context, req SearchRequest, b *block.Reader, hints traceql.Hints,
	heads []*head, blocks []*block.Reader, fn func([]spanrow.Span)) error {
	local := req.Query.SpanLocal()
	var ranges []block.RowRange
	err := b.ScanBriefs(ctx, func(spans []block.Brief, first int) bool {
		// A piece of a split trace cannot speak for the whole trace unless the
		// query is span-local; keep such pieces for consider to merge.
		if hints.MayMatch(briefSummary(spans)) || (!local && s.storedElsewhere(req.Tenant, spans[0].TraceID, b, heads, blocks)) {
			ranges = append(ranges, block.RowRange{First: first, Count: len(spans)})
		}
		return true
	})
	if err != nil {
		return err
	}
	return b.ReadRanges(ctx, ranges, fn)
}

func briefSummary(spans []block.Brief) traceql.TraceSummary {
	sum := traceql.TraceSummary{
		ServiceNames: make(map[string]struct{}, 2),
		SpanNames:    make(map[string]struct{}, len(spans)),
		NoErrors:     true,
	}
	for i := range spans {
		sp := &spans[i]
		sum.ServiceNames[sp.Service] = struct{}{}
		sum.SpanNames[sp.Name] = struct{}{}
		sum.MaxSpanDuration = max(sum.MaxSpanDuration, time.Duration(sp.Duration))
		if sp.StatusCode == int32(ptrace.StatusCodeError) {
			sum.NoErrors = false
		}
	}
	// MaxTraceDuration stays unknown: a block may hold only a piece of a trace.
	return sum
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

// assemble picks the most recent traces and evaluates each whole trace.
func (s *Store) assemble(ctx context.Context, req SearchRequest, found map[[16]byte]int64, m SearchMetrics) ([]Match, SearchMetrics, error) {
	cands := make([]candidate, 0, len(found))
	for id, st := range found {
		cands = append(cands, candidate{id, st})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].start > cands[j].start })
	var out []Match
	for _, c := range cands {
		if len(out) == req.Limit {
			break
		}
		rows, err := s.traceRows(ctx, req.Tenant, c.id, 0, 0)
		if err != nil {
			return nil, m, err
		}
		if len(rows) == 0 {
			continue // deleted meanwhile
		}
		td, err := spanrow.ToTraces(rows)
		if err != nil {
			continue
		}
		sets := req.Query.EvalTrace(td)
		if len(sets) == 0 {
			continue
		}
		start, end := traceBounds(rows)
		out = append(out, Match{TraceID: c.id, Trace: td, Spansets: sets, Start: start, End: end})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start > out[j].Start })
	return out, m, nil
}

// kthStart is the k-th latest start among found traces.
func kthStart(found map[[16]byte]int64, k int) int64 {
	starts := make([]int64, 0, len(found))
	for _, st := range found {
		starts = append(starts, st)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] > starts[j] })
	return starts[k-1]
}

func traceBounds(rows []spanrow.Span) (start, end int64) {
	start, end = rows[0].Start, rows[0].End()
	for i := range rows {
		start, end = min(start, rows[i].Start), max(end, rows[i].End())
	}
	return start, end
}

// rowSummary is a cheap exact summary of a trace from its row columns, without
// decoding attributes.
func rowSummary(rows []spanrow.Span) traceql.TraceSummary {
	sum := traceql.TraceSummary{
		ServiceNames: make(map[string]struct{}, 2),
		SpanNames:    make(map[string]struct{}, len(rows)),
		NoErrors:     true,
	}
	start, end := traceBounds(rows)
	sum.MaxTraceDuration = time.Duration(end - start)
	for i := range rows {
		r := &rows[i]
		sum.ServiceNames[r.Service] = struct{}{}
		sum.SpanNames[r.Name] = struct{}{}
		sum.MaxSpanDuration = max(sum.MaxSpanDuration, time.Duration(r.Duration))
		if r.StatusCode == int32(ptrace.StatusCodeError) {
			sum.NoErrors = false
		}
	}
	return sum
}

// blockSummary translates a block's meta summary for Hints.MayMatch.
func blockSummary(b *block.Summary) traceql.TraceSummary {
	sum := traceql.TraceSummary{
		MaxSpanDuration:  time.Duration(b.MaxSpanDuration),
		MaxTraceDuration: time.Duration(b.MaxTraceDuration),
		NoErrors:         !b.HasErrors,
	}
	if b.ServicesComplete {
		sum.ServiceNames = set(b.Services)
	}
	if b.NamesComplete {
		sum.SpanNames = set(b.SpanNames)
	}
	if b.SpanTagsComplete {
		sum.SpanAttrKeys = keys(b.SpanTags)
	}
	if b.ResTagsComplete {
		sum.ResourceAttrKeys = keys(b.ResourceTags)
	}
	has := func(tags map[string]*block.TagValues, complete bool, k, v string) bool {
		tv := tags[k]
		if tv == nil {
			return !complete
		}
		return tv.Has(v)
	}
	sum.HasAttrValue = func(k traceql.ScopedKey, v string) bool {
		switch k.Scope {
		case "span":
			return has(b.SpanTags, b.SpanTagsComplete, k.Key, v)
		case "resource":
			return has(b.ResourceTags, b.ResTagsComplete, k.Key, v)
		case "":
			return has(b.SpanTags, b.SpanTagsComplete, k.Key, v) || has(b.ResourceTags, b.ResTagsComplete, k.Key, v)
		}
		return true
	}
	return sum
}

func set(list []string) map[string]struct{} {
	m := make(map[string]struct{}, len(list))
	for _, v := range list {
		m[v] = struct{}{}
	}
	return m
}

func keys[V any](m map[string]V) map[string]struct{} {
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

// Summaries returns the summaries of the tenant's blocks overlapping [start, end] and
// of the data not yet in blocks, for tag autocomplete.
func (s *Store) Summaries(ctx context.Context, tenant string, start, end int64) []block.Summary {
	heads, blocks := s.sources(tenant)
	var out []block.Summary
	z := block.NewSummarizer()
	n := 0
	for _, h := range heads {
		h.each(tenant, func(rows []spanrow.Span) bool {
			n++
			z.AddTrace(rows)
			return ctx.Err() == nil
		})
	}
	if n > 0 {
		out = append(out, z.Summary())
	}
	for _, b := range blocks {
		if b.Meta.Overlaps(start, end) {
			out = append(out, b.Meta.Summary)
		}
	}
	return out
}
