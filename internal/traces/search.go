package traces

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
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

// Search returns up to req.Limit matching traces, most recent first. The head and cut
// heads are searched too, so a trace is found as soon as its spans are acknowledged.
//
// Push-down: candidates come from what is cheap to read (head rows, block summaries,
// tag postings and trace indexes; see gatherer), then are read and evaluated most
// recent first until the limit is reached, so neither a selective query nor a broad
// one with a small limit decodes more spans than it returns. Blocks are visited
// newest first, and one is opened only when the candidates so far cannot fill the
// limit with traces more recent than anything it holds.
//
// A trace whose spans straddle block cuts is always evaluated whole.
//
// A search longer than Config.SearchTimeout ends with an error wrapping
// ErrSearchTimeout.
func (s *Store) Search(ctx context.Context, req SearchRequest) ([]Match, SearchMetrics, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.SearchTimeout, ErrSearchTimeout)
	defer cancel()
	matches, m, err := s.search(ctx, req)
	if err != nil && context.Cause(ctx) == ErrSearchTimeout {
		return nil, m, fmt.Errorf("%w: search ran longer than %v", ErrSearchTimeout, s.cfg.SearchTimeout)
	}
	return matches, m, err
}

// ErrSearchTimeout ends a search that outran Config.SearchTimeout.
var ErrSearchTimeout = errors.New("search timed out")

func (s *Store) search(ctx context.Context, req SearchRequest) ([]Match, SearchMetrics, error) {
	if req.Limit <= 0 {
		req.Limit = 20
	}
	// {} matches every trace: the limit most recent of each head and block are
	// enough, and each one evaluated is a result. Only when some fail to read is
	// the search run again over every candidate.
	matchAll := req.Query.MatchesAll()
	matches, m, truncated, err := s.searchKeeping(ctx, req, matchAll)
	if err == nil && truncated && len(matches) < req.Limit {
		matches, m, _, err = s.searchKeeping(ctx, req, false)
	}
	return matches, m, err
}

// searchKeeping is search, taking only the req.Limit most recent candidates of each
// source if newestOnly; truncated reports that some were left out.
func (s *Store) searchKeeping(ctx context.Context, req SearchRequest, newestOnly bool) (_ []Match, _ SearchMetrics, truncated bool, _ error) {
	var m SearchMetrics
	g := s.newGatherer(req.Tenant, req.Query, req.Start, req.End, &m)
	batch := 32
	if newestOnly {
		g.keep, batch = req.Limit, 0
	}
	blocks := slices.Clone(g.blocks)
	slices.SortFunc(blocks, func(a, b *block.Reader) int { return cmp.Compare(b.Meta.MaxEnd, a.Meta.MaxEnd) })
	g.countJobs()
	e := &evaluator{s: s, g: g, q: req.Query, limit: req.Limit, seen: map[[16]byte]bool{}, batch: batch}
	e.pending = g.fromHeads(nil)
	for next := 0; len(e.out) < req.Limit; next++ {
		// Every piece in a block starts no later than the block's newest span end.
		frontier := int64(math.MinInt64)
		if next < len(blocks) {
			frontier = blocks[next].Meta.MaxEnd
		}
		if err := e.evaluateNewerThan(ctx, frontier); err != nil {
			return nil, m, false, err
		}
		if next == len(blocks) || len(e.out) >= req.Limit {
			break
		}
		var err error
		if e.pending, err = g.fromBlock(ctx, e.pending, blocks[next]); err != nil {
			return nil, m, false, fmt.Errorf("search block %s: %w", blocks[next].Meta.ID, err)
		}
		m.CompletedJobs++
	}
	sort.SliceStable(e.out, func(i, j int) bool { return e.out[i].Start > e.out[j].Start })
	return e.out, m, g.truncated, nil
}

// evaluator reads and evaluates candidates most recent first.
type evaluator struct {
	s       *Store
	g       *gatherer
	q       *traceql.Query
	limit   int
	pending []candidate // not yet evaluated
	seen    map[[16]byte]bool
	out     []Match
	// batch is how many candidates the next round reads at least, growing as
	// rounds fall short; 0 reads just as many as results are missing, for a
	// query where every candidate matches.
	batch int
}

// evaluateNewerThan evaluates pending candidates that start after frontier, most
// recent first, until the limit is reached.
func (e *evaluator) evaluateNewerThan(ctx context.Context, frontier int64) error {
	slices.SortFunc(e.pending, byRecency)
	ready := 0
	for ready < len(e.pending) && e.pending[ready].start > frontier {
		ready++
	}
	done := 0
	for done < ready && len(e.out) < e.limit {
		n := min(ready-done, e.limit-len(e.out))
		if e.batch > 0 {
			n = min(ready-done, max(e.batch, 2*(e.limit-len(e.out))))
		}
		cands := e.pending[done : done+n]
		found := make([]*Match, n)
		err := e.s.readCandidates(ctx, e.g, cands, func(i int, rows []spanrow.Span) {
			found[i] = e.s.evalCandidate(ctx, e.g, cands[i], rows, e.seen, e.q, e.g.m)
		})
		if err != nil {
			return err
		}
		for _, f := range found {
			if f != nil && len(e.out) < e.limit {
				e.out = append(e.out, *f)
			}
		}
		done += n
		if e.batch > 0 {
			e.batch = min(2*e.batch, 8192)
		}
	}
	e.pending = e.pending[done:]
	return nil
}

// readCandidates reads the rows of each candidate and calls fn with its position in
// cands. Block reads go in row order, one reader per block, so that neighbouring
// traces share decoded pages. Blocks are read in parallel (decoding pages is most
// of a search's time) but fn is called for one candidate at a time.
func (s *Store) readCandidates(ctx context.Context, g *gatherer, cands []candidate, fn func(i int, rows []spanrow.Span)) error {
	byBlock := map[*block.Reader][]int{}
	for i, c := range cands {
		if c.head != nil {
			if rows := c.head.trace(g.tenant, c.id); len(rows) > 0 {
				fn(i, rows)
			}
			continue
		}
		byBlock[c.block] = append(byBlock[c.block], i)
	}
	var (
		mu   sync.Mutex // serialises fn
		wg   sync.WaitGroup
		sem  = make(chan struct{}, runtime.GOMAXPROCS(0))
		errs = make([]error, 0, len(byBlock))
	)
	for b, list := range byBlock {
		slices.SortFunc(list, func(x, y int) int { return cmp.Compare(cands[x].entry.First, cands[y].entry.First) })
		entries := make([]block.TraceEntry, len(list))
		spans := 0
		for k, i := range list {
			entries[k] = cands[i].entry
			spans += entries[k].Count
		}
		g.m.InspectedBytes += b.Meta.DataBytes * int64(spans) / int64(max(b.Meta.Spans, 1))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			k := 0
			err := b.ReadTraces(ctx, entries, func(_ block.TraceEntry, rows []spanrow.Span) bool {
				mu.Lock()
				defer mu.Unlock()
				fn(list[k], rows)
				k++
				return true
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("read block %s: %w", b.Meta.ID, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// wholeTrace returns the rows of the trace a piece belongs to: the piece plus the
// spans of the trace in other sources (heads, and blocks whose bloom filter and index
// hold it), merged in block order without duplicates. The piece's own source is not
// read again.
func (s *Store) wholeTrace(ctx context.Context, g *gatherer, c candidate, piece []spanrow.Span) []spanrow.Span {
	var rows []spanrow.Span
	for _, h := range g.heads {
		if h != c.head {
			rows = append(rows, h.trace(g.tenant, c.id)...)
		}
	}
	for _, b := range g.blocks {
		if b == c.block || !b.MayContain(c.id) {
			continue
		}
		r, err := b.Trace(ctx, c.id)
		if err != nil {
			s.logger.Warn("read trace piece for search", "block", b.Meta.ID, "err", err)
			continue
		}
		rows = append(rows, r...)
	}
	if len(rows) == 0 {
		return piece
	}
	rows = append(rows, piece...)
	spanrow.Sort(rows)
	return spanrow.Dedupe(rows)
}

// evalCandidate evaluates the whole trace of a candidate once, returning its match
// or nil.
func (s *Store) evalCandidate(ctx context.Context, g *gatherer, c candidate, piece []spanrow.Span,
	seen map[[16]byte]bool, q *traceql.Query, m *SearchMetrics) *Match {
	if seen[c.id] {
		return nil
	}
	seen[c.id] = true
	rows := s.wholeTrace(ctx, g, c, piece)
	m.InspectedTraces++
	m.InspectedSpans += int64(len(rows))
	td, err := spanrow.ToTraces(rows)
	if err != nil {
		return nil
	}
	sets := q.EvalTrace(td)
	if len(sets) == 0 {
		return nil
	}
	start, end := traceBounds(rows)
	return &Match{TraceID: c.id, Trace: td, Spansets: sets, Start: start, End: end}
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
	for _, h := range heads {
		if sum, ok := h.summarize(tenant); ok {
			out = append(out, sum)
		}
	}
	for _, b := range blocks {
		if b.Meta.Overlaps(start, end) {
			out = append(out, b.Meta.Summary)
		}
	}
	return out
}
