package traces

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/vispyr/vispyr/internal/traces/block"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// upgradeBlock rewrites a block of an older format as a current one (same spans,
// same level) and deletes the old block: format 1 lacks the tag postings and the
// per-trace times that search relies on. The new block is complete before the old
// one is deleted, so a crash in between leaves duplicate spans, which reads dedupe.
func (s *Store) upgradeBlock(ctx context.Context, old *block.Reader) (*block.Reader, error) {
	start := time.Now()
	w := block.NewWriter(old.Meta.Tenant, newBlockID(), old.Meta.Level)
	w.LatestEnd = old.Meta.MaxEnd
	if raw, err := url.PathUnescape(old.Meta.Tenant); err == nil {
		w.Shared = s.sharedTest(raw, old)
	} else {
		w.Shared = func([16]byte) bool { return true } // cannot tell: mark every trace
	}
	var trace []spanrow.Span
	var addErr error
	err := old.Scan(ctx, func(rows []spanrow.Span) bool {
		trace = append(trace[:0], rows...)
		spanrow.Sort(trace)
		addErr = w.AddTrace(spanrow.Dedupe(trace))
		return addErr == nil
	})
	if err == nil {
		err = addErr
	}
	if err != nil {
		return nil, fmt.Errorf("upgrade block %s: %w", old.Meta.ID, err)
	}
	meta, err := w.Finish(ctx, s.be)
	if err != nil {
		return nil, fmt.Errorf("upgrade block %s: %w", old.Meta.ID, err)
	}
	nb, err := s.openWritten(ctx, w, meta)
	if err != nil {
		return nil, err
	}
	old.Close()
	if err := block.Delete(ctx, s.be, old.Meta.Tenant, old.Meta.ID); err != nil {
		return nil, err
	}
	s.logger.Info("upgraded trace block", "tenant", meta.Tenant, "from", old.Meta.ID, "format", old.Meta.Format,
		"to", meta.ID, "spans", meta.Spans, "duration", time.Since(start))
	return nb, nil
}
