package wal

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"
)

// Pos is a position in the WAL: a segment and a byte offset in it. Records
// are ordered by their Pos.
type Pos struct {
	Segment int
	Offset  int64
}

// Less orders positions.
func (p Pos) Less(q Pos) bool {
	return p.Segment < q.Segment || p.Segment == q.Segment && p.Offset < q.Offset
}

// progressEvery is how often a long replay logs how far it got.
const progressEvery = 10 * time.Second

// Replay calls fn with every record of the segments that existed at Open,
// oldest first, with the number of the segment holding it. rec is valid only
// during the call. A torn or corrupt record ends its segment: the segment is
// cut there, the damage counted and logged, and replay goes on with the next
// segment. An error from fn stops replay and is returned.
func (w *WAL) Replay(fn func(seg int, rec []byte) error) error {
	return w.replay(Pos{}, func(rec []byte, end Pos) error { return fn(end.Segment, rec) })
}

// replay reads the segments that existed at Open from position from on;
// fn gets each record and the position after it.
func (w *WAL) replay(from Pos, fn func(rec []byte, end Pos) error) error {
	w.mu.Lock()
	var segs []int
	var total int64
	for _, n := range slices.Sorted(maps.Keys(w.sizes)) {
		if n >= from.Segment && n < w.first {
			segs = append(segs, n)
			total += w.sizes[n]
		}
	}
	w.mu.Unlock()
	if len(segs) == 0 {
		return nil
	}
	p := replayProgress{w: w, segments: len(segs), bytes: total, start: time.Now()}
	p.last = p.start
	w.logger.Info("replaying WAL", "segments", len(segs), "bytes", total)
	for _, n := range segs {
		off := int64(0)
		if n == from.Segment {
			off = from.Offset
		}
		if err := w.replaySegment(n, off, fn, &p); err != nil {
			return err
		}
		p.segmentsDone++
	}
	w.logger.Info("replayed WAL", "segments", len(segs), "records", p.records, "bytes", p.bytesDone,
		"damaged_segments", p.damaged, "duration", time.Since(p.start).Round(time.Millisecond))
	return nil
}

type replayProgress struct {
	w                      *WAL
	segments, segmentsDone int
	bytes, bytesDone       int64
	records, damaged       int
	start, last            time.Time
}

func (p *replayProgress) record(size int) {
	p.records++
	p.bytesDone += int64(headerSize + size)
	if p.records%1024 == 0 && time.Since(p.last) >= progressEvery {
		p.last = time.Now()
		p.w.logger.Info("replaying WAL", "segments_done", p.segmentsDone, "segments_total", p.segments,
			"bytes_done", p.bytesDone, "bytes_total", p.bytes)
	}
}

func (w *WAL) replaySegment(n int, off int64, fn func([]byte, Pos) error, p *replayProgress) error {
	r, err := openSegmentReader(w.segmentPath(n), off)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open wal segment: %w", err)
	}
	defer r.close()
	for {
		rec, err := r.next(-1)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, errZeroEnd):
			return w.cutSegment(n, r.pos()) // give the unused zeros back
		case errors.Is(err, ErrTorn) || errors.Is(err, ErrCorrupt):
			p.damaged++
			return w.repair(n, r.pos(), err)
		default:
			return err
		}
		p.record(len(rec))
		if err := fn(rec, Pos{n, r.pos()}); err != nil {
			return fmt.Errorf("replay wal segment %d offset %d: %w", n, r.pos(), err)
		}
	}
}

// repair cuts segment n at off, where a damaged record starts. Only a segment
// that is no longer written is repaired.
func (w *WAL) repair(n int, off int64, damage error) error {
	w.m.corruptions.Inc()
	w.mu.Lock()
	size := w.sizes[n]
	w.mu.Unlock()
	w.logger.Warn("WAL segment damaged (a crash tore its last write, or the disk corrupted it); cutting the segment there and going on with the next one",
		"segment", n, "offset", off, "dropped_bytes", size-off, "err", damage)
	return w.cutSegment(n, off)
}

// cutSegment truncates segment n, no longer written, to off bytes.
func (w *WAL) cutSegment(n int, off int64) error {
	f, err := os.OpenFile(w.segmentPath(n), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cut wal segment: %w", err)
	}
	err = f.Truncate(off)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cut wal segment: %w", err)
	}
	w.mu.Lock()
	if _, ok := w.sizes[n]; ok {
		w.sizes[n] = off
	}
	w.m.bytes.Set(float64(w.sizeLocked()))
	w.mu.Unlock()
	return nil
}
