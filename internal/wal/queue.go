package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// ErrFull is returned by Queue.Append when the undelivered bytes reached the
// queue's bound.
var ErrFull = errors.New("queue is full")

// QueueOptions configure a Queue.
type QueueOptions struct {
	Options
	// MaxBytes bounds the bytes on disk not yet delivered, with room for
	// preallocation (two segments): Append refuses a record that would go
	// past it with ErrFull (a first record is always taken). SegmentSize
	// defaults to a 64th of it, within 256 KiB..16 MiB, so that delivered
	// segments are deleted early.
	MaxBytes int64
}

// Queue is a durable FIFO on a WAL, bounded by bytes on disk. Records are read
// back from disk in append order; Commit persists the read cursor and deletes
// segments that are wholly delivered. After a restart, records read but not
// committed are read again. Append, Next and Commit may be called
// concurrently; Next by one goroutine at a time.
type Queue struct {
	w        *WAL
	maxBytes int64
	cursor   *os.File

	readMu sync.Mutex // one Next at a time
	r      *Reader

	mu        sync.Mutex // guards the fields below
	committed Pos
	reserved  int64 // bytes of appends in flight
	records   int64 // durable records after committed
	read      []Pos // ends of records handed out by Next and not yet committed
	// full is set when an append is refused and cleared once delivery freed
	// a tenth of the bound, so readiness does not flap per request.
	full bool
}

const cursorFile = "cursor"

// OpenQueue opens (or creates) the queue in dir; what was not delivered
// before a restart is read again.
func OpenQueue(dir string, o QueueOptions) (*Queue, error) {
	if o.SegmentSize <= 0 {
		o.SegmentSize = min(max(o.MaxBytes/64, 256<<10), 16<<20)
	}
	w, err := Open(dir, o.Options)
	if err != nil {
		return nil, err
	}
	q, err := openQueue(w, o.MaxBytes)
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	return q, nil
}

func openQueue(w *WAL, maxBytes int64) (*Queue, error) {
	cur, err := readCursor(w, filepath.Join(w.dir, cursorFile))
	if err != nil {
		return nil, err
	}
	// Segments before the cursor's were delivered before a crash cut the
	// deletion short.
	if err := w.TruncateBefore(cur.Segment); err != nil {
		return nil, err
	}
	q := &Queue{w: w, maxBytes: maxBytes, committed: cur, r: w.NewReader(cur)}
	err = w.replay(cur, func(rec []byte, _ Pos) error {
		q.records++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan queue: %w", err)
	}
	q.cursor, err = os.OpenFile(filepath.Join(w.dir, cursorFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open queue cursor: %w", err)
	}
	// Write the cursor now, so that its disk block exists when the disk is full.
	err = writeCursor(q.cursor, cur)
	if err == nil {
		err = syncDir(w.dir)
	}
	if err != nil {
		q.cursor.Close()
		return nil, err
	}
	if q.records > 0 {
		w.logger.Info("queue holds undelivered records", "records", q.records, "bytes", w.bytesFrom(cur))
	}
	return q, nil
}

// Append returns once rec is durable, or with an error wrapping ErrFull.
func (q *Queue) Append(rec []byte) error {
	n := int64(headerSize + len(rec))
	q.mu.Lock()
	used := q.usedLocked() + q.reserved
	if used > 0 && used+n > q.maxBytes {
		q.full = true
		q.mu.Unlock()
		return fmt.Errorf("append to queue of %d bytes: %w", q.maxBytes, ErrFull)
	}
	q.reserved += n // so that concurrent appends respect the bound
	q.mu.Unlock()

	err := q.w.Append(context.Background(), rec)

	q.mu.Lock()
	defer q.mu.Unlock()
	q.reserved -= n
	if err != nil {
		return fmt.Errorf("append to queue: %w", err)
	}
	q.records++
	return nil
}

// Next blocks until a record after the last one read is durable and returns
// a copy of it with its position: Commit(pos) marks it and every record
// before it delivered. Positions increase by record.
func (q *Queue) Next(ctx context.Context) (rec []byte, pos uint64, err error) {
	q.readMu.Lock()
	defer q.readMu.Unlock()
	rec, end, err := q.r.Next(ctx)
	if err != nil {
		return nil, 0, err
	}
	q.mu.Lock()
	q.read = append(q.read, end)
	q.mu.Unlock()
	return rec, packPos(end), nil
}

// Commit marks every record up to pos delivered: segments wholly delivered
// are deleted and the cursor is persisted.
func (q *Queue) Commit(pos uint64) error {
	p := unpackPos(pos)
	q.mu.Lock()
	if !q.committed.Less(p) {
		q.mu.Unlock()
		return nil
	}
	q.mu.Unlock()
	// Everything delivered: start a new segment so that the drained one is
	// deleted now rather than once it is full, which may take a long while
	// under light load. A failed cut (a full disk) only keeps the segment.
	if seg, ok := q.w.cutAt(p, drainedCut(q.w.opts.SegmentSize)); ok {
		p = Pos{Segment: seg}
	}
	// Deleting first frees space even when the disk is full; a crash before
	// the cursor is written only reads part of p's segment again.
	if err := q.w.TruncateBefore(p.Segment); err != nil {
		return fmt.Errorf("delete delivered queue segments: %w", err)
	}
	if err := writeCursor(q.cursor, p); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.committed = p
	for len(q.read) > 0 && !p.Less(q.read[0]) {
		q.read = q.read[1:]
		q.records--
	}
	if q.full && q.usedLocked() < q.maxBytes-q.maxBytes/10 {
		q.full = false
	}
	return nil
}

// drainedCut is how big a drained segment must be for Commit to replace it:
// smaller ones wait, so that light load does not create a file per commit.
func drainedCut(segmentSize int64) int64 { return min(segmentSize/4, 1<<20) }

// cutAt starts a new segment when p is the end of the segment being written
// and that segment holds at least minSize bytes; it returns the new
// segment's number. A preallocated segment is not cut: its disk is held
// whatever it holds, and cutting it would only cost another preallocation.
func (w *WAL) cutAt(p Pos, minSize int64) (int, bool) {
	w.ioMu.Lock()
	defer w.ioMu.Unlock()
	// A write may be in the segment with its sync still running, so that
	// sizes does not show it yet: its record is acknowledged once the sync
	// ends, and the caller deletes the segment this cut leaves. With ioMu
	// held no write starts, so once these are settled sizes is the end.
	w.pending.Wait()
	w.mu.Lock()
	drained := !w.closed && p.Segment == w.seg && w.sizes[w.seg] == p.Offset && p.Offset >= minSize && w.curAlloc == 0
	w.mu.Unlock()
	if !drained || w.f == nil {
		return 0, false
	}
	if err := w.rotateLocked(); err != nil {
		w.logger.Warn("could not start a new queue segment; the drained one stays until the next commit", "err", err)
		return 0, false
	}
	return w.seg, true
}

// Size returns the bytes and records not yet committed.
func (q *Queue) Size() (bytes, records int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.w.bytesFrom(q.committed), q.records
}

// Full reports whether the queue refuses records now.
func (q *Queue) Full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.full || q.usedLocked() >= q.maxBytes
}

// usedLocked is what counts against MaxBytes: the undelivered bytes and,
// when there are any, room for preallocation (an empty queue takes a record
// whatever it). Call with mu held.
func (q *Queue) usedLocked() int64 {
	n := q.w.bytesFrom(q.committed)
	if n > 0 && q.w.opts.Preallocate {
		// The segment being written may be a full preallocated file, and a
		// spare of the same size is made whenever the writer takes one:
		// counting both in full bounds the disk whenever that happens.
		n += 2 * q.w.opts.SegmentSize
	}
	return n
}

// Close closes the queue; a blocked Next returns ErrClosed.
func (q *Queue) Close() error {
	err := q.w.Close()
	q.readMu.Lock()
	q.r.Close()
	q.readMu.Unlock()
	return errors.Join(err, q.cursor.Close())
}

// bytesFrom returns the durable bytes after p.
func (w *WAL) bytesFrom(p Pos) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var n int64
	for seg, size := range w.sizes {
		switch {
		case seg > p.Segment:
			n += size
		case seg == p.Segment:
			n += max(size-p.Offset, 0)
		}
	}
	return n
}

// A position packs into 64 bits as segment<<32 | offset: segments are
// smaller than 4 GiB.
func packPos(p Pos) uint64 { return uint64(p.Segment)<<32 | uint64(p.Offset) }

func unpackPos(v uint64) Pos { return Pos{Segment: int(v >> 32), Offset: int64(v & (1<<32 - 1))} }

// The cursor file is 12 bytes rewritten in place: the packed position and its
// CRC-32C. Rewriting in place needs no new disk block, so delivery can move
// the cursor (and free segments) on a full disk.
const cursorSize = 12

func writeCursor(f *os.File, p Pos) error {
	var b [cursorSize]byte
	binary.LittleEndian.PutUint64(b[:], packPos(p))
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	if _, err := f.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("write queue cursor: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync queue cursor: %w", err)
	}
	return nil
}

// readCursor returns the persisted position; a missing cursor is the start,
// a damaged one too (records are then delivered again, never lost).
func readCursor(w *WAL, path string) (Pos, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Pos{}, nil
	}
	if err != nil {
		return Pos{}, fmt.Errorf("read queue cursor: %w", err)
	}
	defer f.Close()
	var b [cursorSize]byte
	n, err := io.ReadFull(f, b[:])
	if n == 0 && errors.Is(err, io.EOF) {
		return Pos{}, nil // created, never written
	}
	if err != nil || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		w.m.corruptions.Inc()
		w.logger.Warn("queue cursor damaged; delivering the queue again from its oldest record", "path", path)
		return Pos{}, nil
	}
	return unpackPos(binary.LittleEndian.Uint64(b[:])), nil
}
