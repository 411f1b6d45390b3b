package traces

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"iter"
	"math"
	"net/url"
	"slices"
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

// compactGroup merges the blocks of g into one. The inputs are read as streams of
// traces in trace ID order and merged like sorted files (mergeBlocks), so memory
// holds one trace per input plus the encoded output, not all the spans of the group.
func (s *Store) compactGroup(ctx context.Context, g []*block.Reader) error {
	start := time.Now()
	tenant := g[0].Meta.Tenant
	level, inSpans := 0, 0
	latestEnd := int64(math.MinInt64)
	inBytes := int64(0)
	for _, b := range g {
		level = max(level, b.Meta.Level+1)
		inSpans += b.Meta.Spans
		inBytes += b.Meta.DataBytes
		latestEnd = max(latestEnd, b.Meta.MaxEnd)
	}
	s.logger.Info("compacting trace blocks", "tenant", tenant, "inputs", len(g), "spans", inSpans, "level", level)
	w := block.NewWriter(tenant, newBlockID(), level)
	w.ExpectBytes(int(inBytes))
	// The inputs' ends were clamped when they were cut; blocks cut before the
	// clamp existed are healed here (every span was acknowledged before now).
	w.LatestEnd = min(latestEnd, time.Now().Add(s.cfg.IngestionSlack).UnixNano())
	exclude := make([]any, len(g))
	for i, b := range g {
		exclude[i] = b
	}
	if raw, err := url.PathUnescape(tenant); err == nil {
		w.Shared = s.sharedTest(raw, exclude...)
	} else {
		w.Shared = func([16]byte) bool { return true } // cannot tell: mark every trace
	}
	lastLog := time.Now()
	err := mergeBlocks(ctx, g, func(spans []spanrow.Span) error {
		if err := w.AddTrace(spans); err != nil {
			return err
		}
		if time.Since(lastLog) >= compactionLogEvery {
			lastLog = time.Now()
			s.logger.Info("compaction progress", "tenant", tenant, "spans_written", w.Spans(), "of", inSpans,
				"elapsed", time.Since(start).Round(time.Second))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("merge blocks: %w", err)
	}
	meta, err := w.Finish(ctx, s.be)
	if err != nil {
		return err
	}
	nb, err := s.openWritten(ctx, w, meta)
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
		"spans", meta.Spans, "dropped_duplicates", inSpans-meta.Spans, "level", level, "duration", time.Since(start))
	return nil
}

// compactionLogEvery spaces compaction progress logs.
const compactionLogEvery = 10 * time.Second

// mergeBlocks calls fn with every trace of the blocks in ascending trace ID order:
// the pieces of a trace found in several blocks are joined, sorted (spanrow.Sort)
// and deduplicated. The slice is reused between calls.
func mergeBlocks(ctx context.Context, bs []*block.Reader, fn func(spans []spanrow.Span) error) error {
	ins := make([]*mergeInput, 0, len(bs))
	defer func() {
		for _, in := range ins {
			in.stop()
		}
	}()
	for _, b := range bs {
		in := newMergeInput(ctx, b)
		ins = append(ins, in)
		if err := in.advance(); err != nil {
			return err
		}
	}
	h := mergeHeap(slices.DeleteFunc(slices.Clone(ins), func(in *mergeInput) bool { return in.cur == nil }))
	heap.Init(&h)
	var buf []spanrow.Span
	for len(h) > 0 {
		id := h[0].cur[0].TraceID
		buf = buf[:0]
		// Take the trace from every input that holds it; each input holds a trace once.
		for len(h) > 0 && h[0].cur[0].TraceID == id {
			in := h[0]
			buf = append(buf, in.cur...)
			if err := in.advance(); err != nil {
				return err
			}
			if in.cur == nil {
				heap.Pop(&h)
			} else {
				heap.Fix(&h, 0)
			}
		}
		spanrow.Sort(buf)
		if err := fn(spanrow.Dedupe(buf)); err != nil {
			return err
		}
	}
	return nil
}

// mergeInput pulls the traces of one block one at a time from its Scan.
type mergeInput struct {
	next func() ([]spanrow.Span, bool)
	stop func()
	err  *error
	cur  []spanrow.Span // current trace; nil once the block is exhausted
}

func newMergeInput(ctx context.Context, b *block.Reader) *mergeInput {
	var scanErr error
	seq := func(yield func([]spanrow.Span) bool) {
		scanErr = b.Scan(ctx, yield)
		if scanErr != nil {
			scanErr = fmt.Errorf("read block %s: %w", b.Meta.ID, scanErr)
		}
	}
	next, stop := iter.Pull(seq)
	return &mergeInput{next: next, stop: stop, err: &scanErr}
}

// advance moves to the input's next trace. The previous one's slice is reused by
// the block reader, so callers copy what they keep before advancing.
func (in *mergeInput) advance() error {
	spans, ok := in.next()
	if !ok {
		in.cur = nil
		return *in.err
	}
	in.cur = spans
	return nil
}

// mergeHeap orders inputs by their current trace ID.
type mergeHeap []*mergeInput

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	return bytes.Compare(h[i].cur[0].TraceID[:], h[j].cur[0].TraceID[:]) < 0
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*mergeInput)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
