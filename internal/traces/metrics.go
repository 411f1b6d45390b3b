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
// may match and overlap [start, end], found as Search finds its candidates.
func (s *Store) eachPiece(ctx context.Context, tenant string, q *traceql.Query, start, end int64, yield func(ptrace.Traces) bool) error {
	var m SearchMetrics
	g := s.newGatherer(tenant, q, start, end, &m)
	cands, err := g.all(ctx)
	if err != nil {
		return err
	}
	seen := map[[16]byte]bool{}
	stopped := false
	err = s.readCandidates(ctx, g, cands, func(i int, rows []spanrow.Span) {
		c := cands[i]
		if stopped || ctx.Err() != nil {
			return
		}
		if !g.local {
			if seen[c.id] {
				return
			}
			seen[c.id] = true
			rows = s.wholeTrace(ctx, g, c, rows)
		}
		td, err := spanrow.ToTraces(rows)
		if err != nil {
			return
		}
		stopped = !yield(td)
	})
	if err != nil {
		return err
	}
	return ctx.Err()
}
