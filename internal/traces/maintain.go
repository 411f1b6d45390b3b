package traces

import (
	"context"
	"time"

	"github.com/vispyr/vispyr/internal/traces/block"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// applyRetention deletes every block whose newest span ended before now-Retention.
// Whole blocks go, so the disk (or bucket) really shrinks.
func (s *Store) applyRetention(ctx context.Context, now time.Time) {
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	cutoff := now.Add(-s.cfg.Retention).UnixNano()
	var doomed []*block.Reader
	s.mu.Lock()
	for t, bs := range s.blocks {
		kept := bs[:0]
		for _, b := range bs {
			if b.Meta.MaxEnd < cutoff {
				doomed = append(doomed, b)
			} else {
				kept = append(kept, b)
			}
		}
		s.blocks[t] = kept
	}
	s.mu.Unlock()
	for _, b := range doomed {
		b.Close()
		if err := block.Delete(ctx, s.be, b.Meta.Tenant, b.Meta.ID); err != nil {
			s.logger.Error("delete expired trace block", "block", b.Meta.ID, "err", err)
			continue
		}
		s.m.deleted.Inc()
		s.logger.Info("deleted expired trace block", "tenant", b.Meta.Tenant, "block", b.Meta.ID,
			"newest_span_end", time.Unix(0, b.Meta.MaxEnd).UTC())
	}
}

// compact merges runs of small blocks of a tenant (in time order) into blocks of up
// to CompactionMaxSpans spans, dropping duplicate spans. Fewer, larger blocks mean
// fewer bloom checks per lookup and better compression.
func (s *Store) compact(ctx context.Context) {
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	s.mu.RLock()
	var groups [][]*block.Reader
	for _, bs := range s.blocks {
		var cur []*block.Reader
		spans := 0
		for _, b := range bs {
			if b.Meta.Spans >= s.cfg.CompactionMaxSpans/2 {
				continue // already big enough
			}
			if spans+b.Meta.Spans > s.cfg.CompactionMaxSpans {
				if len(cur) > 1 {
					groups = append(groups, cur)
				}
				cur, spans = nil, 0
			}
			cur = append(cur, b)
			spans += b.Meta.Spans
		}
		if len(cur) > 1 {
			groups = append(groups, cur)
		}
	}
	s.mu.RUnlock()
	for _, g := range groups {
		if ctx.Err() != nil {
			return
		}
		if err := s.compactGroup(ctx, g); err != nil {
			s.logger.Error("compact trace blocks", "err", err)
		}
	}
}

func (s *Store) compactGroup(ctx context.Context, g []*block.Reader) error {
	start := time.Now()
	tenant := g[0].Meta.Tenant
	var rows []spanrow.Span
	level := 0
	for i, b := range g {
		r, err := b.ReadAll(ctx)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
		level = max(level, b.Meta.Level+1)
		s.logger.Debug("compaction progress", "tenant", tenant, "read_blocks", i+1, "of", len(g), "spans", len(rows))
	}
	spanrow.Sort(rows)
	rows = spanrow.Dedupe(rows)
	meta, err := block.Write(ctx, s.be, tenant, newBlockID(), level, rows)
	if err != nil {
		return err
	}
	nb, err := block.OpenMeta(ctx, s.be, meta)
	if err != nil {
		return err
	}
	// Swap atomically: queries see either the inputs or the output.
	gone := map[*block.Reader]bool{}
	for _, b := range g {
		gone[b] = true
	}
	s.mu.Lock()
	kept := []*block.Reader{nb}
	for _, b := range s.blocks[tenant] {
		if !gone[b] {
			kept = append(kept, b)
		}
	}
	sortBlocks(kept)
	s.blocks[tenant] = kept
	s.mu.Unlock()
	for _, b := range g {
		b.Close()
		if err := block.Delete(ctx, s.be, tenant, b.Meta.ID); err != nil {
			return err
		}
	}
	s.m.compactions.Inc()
	s.logger.Info("compacted trace blocks", "tenant", tenant, "inputs", len(g), "block", meta.ID,
		"spans", meta.Spans, "level", level, "duration", time.Since(start))
	return nil
}
