package traces

import (
	"context"
	"fmt"
	"iter"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// QueryMetrics runs a TraceQL metrics query over the tenant's traces with spans in
// [req.Start, req.End]. Blocks and traces are pruned by time and by the query's
// hints. Span-local queries see each stored piece of a trace on its own (their
// result does not depend on other spans); other queries see whole traces.
//
// Like a search, a query longer than Config.SearchTimeout ends with an error
// wrapping ErrSearchTimeout, and one whose client left ends with the context's
// error. Its memory is charged to req.Memory as it is built.
func (s *Store) QueryMetrics(ctx context.Context, tenant string, q *traceql.Query, req traceql.MetricsRequest) (*traceql.MetricsResult, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.SearchTimeout, ErrSearchTimeout)
	defer cancel()
	var iterErr error
	seq := func(yield func(ptrace.Traces) bool) {
		iterErr = s.eachPiece(ctx, tenant, q, req, yield)
	}
	res, err := q.EvalMetrics(req, iter.Seq[ptrace.Traces](seq))
	if err == nil {
		err = iterErr
	}
	if err != nil && context.Cause(ctx) == ErrSearchTimeout {
		return nil, fmt.Errorf("%w: metrics query ran longer than %v", ErrSearchTimeout, s.cfg.SearchTimeout)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// seenTraceBytes is what remembering one trace ID costs a query.
const seenTraceBytes = 64

// eachPiece feeds yield the traces (or, for span-local queries, trace pieces) that
// may match and overlap [start, end], found as Search finds its candidates.
func (s *Store) eachPiece(ctx context.Context, tenant string, q *traceql.Query, req traceql.MetricsRequest, yield func(ptrace.Traces) bool) error {
	// A query that stops early (refused, or its evaluation failed) stops the
	// reads too.
	parent := ctx
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var m SearchMetrics
	g := s.newGatherer(tenant, q, req.Start.UnixNano(), req.End.UnixNano(), &m)
	cands, err := g.all(ctx)
	if err != nil {
		return err
	}
	seen := map[[16]byte]bool{}
	stopped := false
	var memErr error
	err = s.readCandidates(ctx, g, cands, func(i int, rows []spanrow.Span) {
		c := cands[i]
		if stopped || ctx.Err() != nil {
			return
		}
		if !g.local {
			if seen[c.id] {
				return
			}
			if memErr = req.Memory.Charge(seenTraceBytes); memErr != nil {
				stopped = true
				stop()
				return
			}
			seen[c.id] = true
			rows = s.wholeTrace(ctx, g, c, rows)
		}
		td, err := spanrow.ToTraces(rows)
		if err != nil {
			return
		}
		if stopped = !yield(td); stopped {
			stop()
		}
	})
	switch {
	case memErr != nil:
		return memErr
	case stopped && parent.Err() == nil:
		return nil
	case err != nil:
		return err
	}
	return parent.Err()
}
