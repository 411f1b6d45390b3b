package traces

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traces/block"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// sources returns the heads and the tenant's blocks to query, newest head first.
func (s *Store) sources(tenant string) ([]*head, []*block.Reader) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	heads := make([]*head, 0, 1+len(s.flushing))
	heads = append(heads, s.head)
	for i := len(s.flushing) - 1; i >= 0; i-- {
		heads = append(heads, s.flushing[i])
	}
	return heads, append([]*block.Reader(nil), s.blocks[tenantDir(tenant)]...)
}

// traceRows gathers a trace's spans from the head, cut heads and every block that may
// hold some (a trace whose spans straddle block cuts lives in several), merged in
// block order without duplicates. start and end (Unix ns, 0 = open) prune blocks.
func (s *Store) traceRows(ctx context.Context, tenant string, id [16]byte, start, end int64) ([]spanrow.Span, error) {
	heads, blocks := s.sources(tenant)
	var rows []spanrow.Span
	for _, h := range heads {
		rows = append(rows, h.trace(tenant, id)...)
	}
	for _, b := range blocks {
		if !b.Meta.Overlaps(start, end) {
			continue
		}
		r, err := b.Trace(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("read block %s: %w", b.Meta.ID, err)
		}
		rows = append(rows, r...)
	}
	spanrow.Sort(rows)
	return spanrow.Dedupe(rows), nil
}

// FindTrace returns every stored span of a trace, and false when there is none.
// start and end (Unix ns, 0 = unbounded) limit which blocks are consulted.
func (s *Store) FindTrace(ctx context.Context, tenant string, id [16]byte, start, end int64) (ptrace.Traces, bool, error) {
	rows, err := s.traceRows(ctx, tenant, id, start, end)
	if err != nil || len(rows) == 0 {
		return ptrace.NewTraces(), false, err
	}
	td, err := spanrow.ToTraces(rows)
	if err != nil {
		return td, false, fmt.Errorf("rebuild trace: %w", err)
	}
	return td, true, nil
}
