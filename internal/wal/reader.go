package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
)

// Reader reads records in order from a position on, across segments and into
// the segment being written: it returns only durable records and waits for
// new ones. A Reader is not safe for concurrent use.
type Reader struct {
	w   *WAL
	pos Pos
	sr  *segmentReader // open on pos.Segment, or nil
}

// NewReader returns a reader positioned at from; Pos{} is the oldest record.
func (w *WAL) NewReader(from Pos) *Reader { return &Reader{w: w, pos: from} }

// readState is what a reader may read of segment seg.
type readState struct {
	exists  bool
	limit   int64         // durable bytes of seg
	sealed  bool          // seg is no longer written
	next    int           // the segment after seg
	changed chan struct{} // closed when limit, sealed or the segments change
}

func (w *WAL) readState(seg int) (readState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return readState{}, ErrClosed
	}
	size, ok := w.sizes[seg]
	st := readState{exists: ok, limit: size, sealed: seg < w.seg, next: w.seg, changed: w.changed}
	for _, n := range slices.Sorted(maps.Keys(w.sizes)) {
		if n > seg {
			st.next = n
			break
		}
	}
	return st, nil
}

// Next returns a copy of the next record and the position after it. It
// blocks until a record is durable, ctx ends or the WAL is closed.
func (r *Reader) Next(ctx context.Context) ([]byte, Pos, error) {
	for {
		st, err := r.w.readState(r.pos.Segment)
		if err != nil {
			return nil, Pos{}, err
		}
		if !st.exists || r.pos.Offset >= st.limit && st.sealed {
			if st.next <= r.pos.Segment {
				return nil, Pos{}, fmt.Errorf("wal reader at segment %d: no segment after it", r.pos.Segment)
			}
			r.moveTo(Pos{Segment: st.next})
			continue
		}
		if r.pos.Offset >= st.limit {
			select {
			case <-st.changed:
				continue
			case <-ctx.Done():
				return nil, Pos{}, ctx.Err()
			}
		}
		if r.sr == nil {
			r.sr, err = openSegmentReader(r.w.segmentPath(r.pos.Segment), r.pos.Offset)
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted meanwhile: the next readState moves on
			}
			if err != nil {
				return nil, Pos{}, fmt.Errorf("open wal segment: %w", err)
			}
		}
		rec, err := r.sr.next(st.limit)
		switch {
		case err == nil:
			r.pos.Offset = r.sr.pos()
			return bytes.Clone(rec), r.pos, nil
		case errors.Is(err, io.EOF):
			continue
		case errors.Is(err, errZeroEnd):
			// A preallocated segment of an earlier run, not replayed.
			r.moveTo(Pos{Segment: r.pos.Segment, Offset: st.limit})
		case errors.Is(err, ErrTorn) || errors.Is(err, ErrCorrupt):
			// Damage below the durable limit is bit rot: skip what cannot be
			// framed any more and count it.
			r.w.m.corruptions.Inc()
			r.w.logger.Warn("WAL segment damaged under a reader; skipping the rest of it",
				"segment", r.pos.Segment, "offset", r.sr.pos(), "dropped_bytes", st.limit-r.sr.pos(), "err", err)
			r.moveTo(Pos{Segment: r.pos.Segment, Offset: st.limit})
		default:
			return nil, Pos{}, err
		}
	}
}

func (r *Reader) moveTo(p Pos) {
	if r.sr != nil {
		_ = r.sr.close()
		r.sr = nil
	}
	r.pos = p
}

// Close releases the reader's open segment.
func (r *Reader) Close() error {
	r.moveTo(r.pos)
	return nil
}
