// Package wal is Vispyr's one write-ahead log and durable queue. Every store
// (traces, profiles, logs) and every forwarder queue writes through it.
//
// A WAL is a directory of numbered segment files holding records framed with
// their length and CRC-32C. Append returns once the record is fsync'd;
// concurrent appends share one write and one fsync (group commit). A failed
// write (a full disk) fails only the appends of that commit: the partial bytes
// are cut off and the next append tries again, so writing resumes by itself
// once space returns.
//
// Use:
//
//	w, err := wal.Open(dir, wal.Options{Name: "traces", Logger: l, Registerer: reg})
//	err = w.Replay(func(seg int, rec []byte) error { ... }) // what earlier runs wrote
//	err = w.Append(ctx, rec)                                // durable when nil
//	seg, err := w.Cut()       // records appended before are in segments < seg
//	err = w.TruncateBefore(seg) // once they are held elsewhere
//
// Replay repairs what a crash left: a torn or corrupt record ends its
// segment, which is cut there (counted in vispyr_wal_corruptions_total and
// logged); later segments are still read. Queue (queue.go) is a bounded
// durable FIFO on a WAL with a persisted read cursor, for forwarders.
package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSegmentSize is the size after which a new segment is started.
const DefaultSegmentSize = 128 << 20

// maxSegmentSize keeps record offsets within 32 bits (see Pos).
const maxSegmentSize = 1 << 30

// maxCommitBytes bounds one group commit's write.
const maxCommitBytes = 16 << 20

// ErrClosed is returned by Append and readers after Close.
var ErrClosed = errors.New("wal closed")

// Options configure a WAL. Logger is required; the rest have defaults.
type Options struct {
	// Name labels the WAL's metrics (wal="<Name>") and log lines.
	Name string
	// SegmentSize is the size after which a new segment file is started.
	// Truncation works by whole segments. Default DefaultSegmentSize, at most 1 GiB.
	SegmentSize int64
	Logger      *slog.Logger
	// Registerer takes the WAL's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// WAL is an append-only log of records in numbered segment files. It is safe
// for concurrent use.
type WAL struct {
	dir    string
	opts   Options
	logger *slog.Logger
	m      *metrics

	reqs chan *request
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the writer has stopped

	mu      sync.Mutex // guards the fields below; held by the writer during a write+fsync
	f       *os.File   // segment being written; nil after a failure that could not be repaired
	seg     int        // its number
	first   int        // first segment this process wrote: Replay reads the ones before
	sizes   map[int]int64
	closed  bool
	failing bool          // the last commit failed; logged once until one succeeds
	changed chan struct{} // closed and replaced whenever durable data or segments change
}

type request struct {
	hdr  [headerSize]byte
	rec  []byte
	done chan error
}

// Open opens the WAL in dir, creating the directory if needed, and starts a
// new segment after the existing ones. Call Replay to read those.
func Open(dir string, opts Options) (*WAL, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	opts.SegmentSize = min(opts.SegmentSize, maxSegmentSize)
	if opts.Name == "" {
		opts.Name = filepath.Base(dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	w := &WAL{
		dir: dir, opts: opts, logger: opts.Logger.With("wal", opts.Name), m: newMetrics(opts.Name, opts.Registerer),
		reqs: make(chan *request, 1024), quit: make(chan struct{}), done: make(chan struct{}),
		sizes: map[int]int64{}, changed: make(chan struct{}),
	}
	for _, n := range segs {
		fi, err := os.Stat(w.segmentPath(n))
		if err != nil {
			return nil, fmt.Errorf("stat wal segment: %w", err)
		}
		w.sizes[n] = fi.Size()
	}
	w.first = 1
	if len(segs) > 0 {
		w.first = segs[len(segs)-1] + 1
	}
	w.mu.Lock()
	err = w.openSegment(w.first)
	w.mu.Unlock()
	if err != nil {
		return nil, err
	}
	go w.writeLoop()
	return w, nil
}

// Dir is the directory holding the segments.
func (w *WAL) Dir() string { return w.dir }

func (w *WAL) segmentPath(n int) string { return filepath.Join(w.dir, segmentName(n)) }

// openSegment creates segment n and makes it the one written. Call with mu held.
func (w *WAL) openSegment(n int) error {
	f, err := os.OpenFile(w.segmentPath(n), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("create wal segment: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat wal segment: %w", err)
	}
	w.f, w.seg, w.sizes[n] = f, n, fi.Size()
	w.changedLocked()
	return nil
}

// Append writes rec as one record and returns once it is fsync'd. rec must
// not be empty and is not retained after Append returns. Once queued, the
// record is written even if ctx ends, and Append waits for the outcome so that
// it never reports a failure for data that became durable.
func (w *WAL) Append(ctx context.Context, rec []byte) error {
	if len(rec) == 0 || len(rec) > MaxRecordSize {
		return fmt.Errorf("wal record of %d bytes: want 1 to %d", len(rec), MaxRecordSize)
	}
	r := &request{rec: rec, done: make(chan error, 1)}
	appendHeader(r.hdr[:0], rec)
	select {
	case w.reqs <- r:
	case <-w.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-w.done:
		// The writer may have answered just before it stopped.
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// writeLoop is the only writer: it takes every append queued while the
// previous fsync ran and commits them with one write and one fsync.
func (w *WAL) writeLoop() {
	defer close(w.done)
	var batch []*request
	var buf []byte
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-w.quit:
			w.failQueued()
			return
		}
		size := headerSize + len(batch[0].rec)
	drain:
		for size < maxCommitBytes {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
				size += headerSize + len(r.rec)
			default:
				break drain
			}
		}
		buf = buf[:0]
		for _, r := range batch {
			buf = append(append(buf, r.hdr[:]...), r.rec...)
		}
		err := w.commit(buf)
		for i, r := range batch {
			r.done <- err
			batch[i] = nil
		}
		if cap(buf) > 4*maxCommitBytes {
			buf = nil // do not pin one huge record's memory
		}
	}
}

func (w *WAL) failQueued() {
	for {
		select {
		case r := <-w.reqs:
			r.done <- ErrClosed
		default:
			return
		}
	}
}

// commit writes and fsyncs buf at the end of the current segment.
func (w *WAL) commit(buf []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	err := w.writeLocked(buf)
	if err != nil {
		w.m.writeFailures.Inc()
		if !w.failing {
			w.logger.Error("WAL write failed; appends are refused until a write succeeds", "err", err)
		}
		w.failing = true
		return err
	}
	if w.failing {
		w.logger.Info("WAL writes resumed")
		w.failing = false
	}
	return nil
}

func (w *WAL) writeLocked(buf []byte) error {
	if w.f == nil {
		// An earlier failure closed the segment: continue in a new one.
		if err := w.openSegment(w.seg + 1); err != nil {
			return err
		}
	}
	if size := w.sizes[w.seg]; size > 0 && size+int64(len(buf)) > w.opts.SegmentSize {
		if err := w.rotateLocked(); err != nil {
			return err
		}
	}
	start := time.Now()
	_, err := w.f.Write(buf)
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.discardFailedWrite()
		return fmt.Errorf("write wal: %w", err)
	}
	w.sizes[w.seg] += int64(len(buf))
	w.m.fsyncs.Inc()
	w.m.writtenBytes.Add(float64(len(buf)))
	w.m.fsyncDuration.Observe(time.Since(start).Seconds())
	w.m.bytes.Set(float64(w.sizeLocked()))
	w.changedLocked()
	return nil
}

// discardFailedWrite cuts off what a failed write may have left after the
// last durable record, so that records written later are not hidden behind a
// torn one at replay. When that fails, the segment is closed and the next
// write starts a new one; Replay then repairs the old segment's tail.
func (w *WAL) discardFailedWrite() {
	err := w.f.Truncate(w.sizes[w.seg])
	if err == nil {
		err = w.f.Sync()
	}
	if err == nil {
		return
	}
	w.logger.Warn("cut failed WAL write; continuing in a new segment", "segment", w.seg, "err", err)
	_ = w.f.Close()
	w.f = nil
}

// Cut closes the current segment and starts a new one, and returns the new
// one's number: every record whose Append returned before Cut was called is in
// a lower-numbered segment.
func (w *WAL) Cut() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	if err := w.rotateLocked(); err != nil {
		return 0, err
	}
	return w.seg, nil
}

// rotateLocked opens the next segment and only then closes the current one,
// so that a failure leaves the WAL writing where it was.
func (w *WAL) rotateLocked() error {
	old := w.f
	if err := w.openSegment(w.seg + 1); err != nil {
		return err
	}
	if old != nil {
		if err := old.Close(); err != nil {
			return fmt.Errorf("close wal segment: %w", err)
		}
	}
	return nil
}

// TruncateBefore deletes the segments numbered below seg (never the one being
// written): their records are held elsewhere now.
func (w *WAL) TruncateBefore(seg int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	seg = min(seg, w.seg)
	removed := false
	for _, n := range slices.Sorted(maps.Keys(w.sizes)) {
		if n >= seg {
			break
		}
		if err := os.Remove(w.segmentPath(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove wal segment: %w", err)
		}
		delete(w.sizes, n)
		removed = true
	}
	if !removed {
		return nil
	}
	w.m.bytes.Set(float64(w.sizeLocked()))
	w.changedLocked()
	return syncDir(w.dir)
}

// Size returns the bytes the segments hold on disk.
func (w *WAL) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sizeLocked()
}

func (w *WAL) sizeLocked() int64 {
	var n int64
	for _, s := range w.sizes {
		n += s
	}
	return n
}

// Segments describes the segments, oldest first.
func (w *WAL) Segments() ([]Segment, error) {
	w.mu.Lock()
	segs := make([]Segment, 0, len(w.sizes))
	for _, n := range slices.Sorted(maps.Keys(w.sizes)) {
		segs = append(segs, Segment{Index: n, Size: w.sizes[n]})
	}
	w.mu.Unlock()
	for i := range segs {
		fi, err := os.Stat(w.segmentPath(segs[i].Index))
		if err != nil {
			return nil, fmt.Errorf("stat wal segment: %w", err)
		}
		segs[i].ModTime = fi.ModTime()
	}
	return segs, nil
}

// changedLocked wakes readers waiting for data. Call with mu held.
func (w *WAL) changedLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Close stops the writer. Appends still queued fail with ErrClosed; what was
// acknowledged stays in the segments for the next Open to replay.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.changedLocked()
	w.mu.Unlock()
	close(w.quit)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close wal segment: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open wal dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync wal dir: %w", err)
	}
	return nil
}
