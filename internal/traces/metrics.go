package traces

import (
	"context"
	"iter"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// QueryMetrics runs a TraceQL metrics query over the tenant's traces with spans in
// [req.Start, req.End]. Blocks and traces are pruned by time and by the query's
// hints. Span-local queries see each stored piece of a trace on its own (their
// result does not depend on other spans); other queries see whole traces.
func (s *Store) QueryMetrics(ctx context.Context, tenant string, q *traceql.Query, req traceql.MetricsRequest) (*traceql.MetricsResult, error) {
	var iterErr error
	seq := func(yield func(ptrace.Traces) bool) {
		iterErr = s.eachPiece(ctx, tenant, q, req.Start.UnixNano(), req.End.UnixNano(), yield)
	}
	res, err := q.EvalMetrics(req, iter.Seq[ptrace.Traces](seq))
	if iterErr != nil {
		return nil, iterErr
	}
	return res, err
}

// eachPiece feeds yield the traces (or, for span-local queries, trace pieces) that
// may match and overlap [start, end].
func (s *Store) eachPiece(ctx context.Context, tenant string, q *traceql.Query, start, end int64, yield func(ptrace.Traces) bool) error {
	hints := q.Hints()
	local := q.SpanLocal()
	seen := map[[16]byte]bool{}
	stopped := false
	visit := func(rows []spanrow.Span) bool {
		if stopped || ctx.Err() != nil {
			return false
		}
		st, en := traceBounds(rows)
		if st > end || en < start {
			return true
		}
		if !hints.Unconstrained() && local && !hints.MayMatch(rowSummary(rows)) {
			return true
		}
		if !local {
			// Evaluate whole traces, each once.
			id := rows[0].TraceID
			if seen[id] {
				return true
			}
			seen[id] = true
			whole, err := s.traceRows(ctx, tenant, id, 0, 0)
			if err != nil || len(whole) == 0 {
				return true
			}
			rows = whole
			if !hints.Unconstrained() && !hints.MayMatch(rowSummary(rows)) {
				return true
			}
		}
		td, err := spanrow.ToTraces(rows)
		if err != nil {
			return true
		}
		if !yield(td) {
			stopped = true
			return false
		}
		return true
	}
	heads, blocks := s.sources(tenant)
	for _, h := range heads {
		h.each(tenant, visit)
	}
	for _, b := range blocks {
		if stopped {
			break
		}
		if !b.Meta.Overlaps(start, end) || !hints.MayMatch(blockSummary(&b.Meta.Summary)) {
			continue
		}
		if err := b.Scan(ctx, visit); err != nil {
			return err
		}
	}
	return ctx.Err()
}
