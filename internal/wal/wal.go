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
// logged); later segments are still read. With Options.Preallocate, new
// segments are files already written with zeros, which appends overwrite
// (prealloc.go); a zero header followed by zeros ends a segment's records.
// Queue (queue.go) is a bounded durable FIFO on a WAL with a persisted read
// cursor, for forwarders.
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
	// Preallocate keeps the next segment ready: a file written with zeros
	// to SegmentSize and synced, in the background, which appends then
	// overwrite. On ext4 the fdatasync of an overwrite of written blocks
	// needs no journal commit (an append changes the file size and does),
	// so the sync that every acknowledgement waits for is shorter. The cost
	// is a second write of each segment, and SegmentSize of disk held ahead.
	Preallocate bool
	// AckOnWrite acknowledges an append once its record is written to the
	// segment file, i.e. in the kernel's page cache, instead of once it is
	// fsync'd: it survives a kill -9 of the process, not a crash of the
	// machine. That is Prometheus's WAL's guarantee, and the metrics store's
	// with its default head; a head of our own keeps it rather than making
	// every remote-write request wait for a sync. A segment is fsync'd in
	// the background once the next one starts, and on Close.
	AckOnWrite bool
}

// maxSyncs is how many commits may be syncing at once. Concurrent fsyncs of
// one file cost little more than one (the device flushes once for all), so
// appends that arrive while one syncs need not wait for it to end.
const maxSyncs = 4

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

	// ioMu serialises writes and segment switches. It is not held across an
	// fsync: the writer goes on writing the next commit while up to
	// maxSyncs earlier ones are being synced (see commit.go).
	ioMu      sync.Mutex
	f         *os.File   // segment being written; nil after a failure that could not be repaired. Guarded by ioMu.
	syncFDs   []*os.File // the segment opened once per sync slot, so each fsync sees every write error (guarded by ioMu)
	written   int64      // bytes written to f, durable or not; guarded by ioMu
	slots     chan int   // free indexes into syncFDs
	jobs      chan *syncJob
	pending   sync.WaitGroup // commits written and not yet answered
	ackDone   chan struct{}  // closed when the acker has stopped
	failing   bool           // the last commit failed; logged once until one succeeds. The acker's.
	spare     chan *os.File  // a preallocated file ready to become the next segment (see prealloc.go)
	kick      chan struct{}  // asks the spare maker to try again after a failure
	spareDone chan struct{}  // closed when the spare maker has stopped
	segSyncs  sync.WaitGroup // finished segments being synced (AckOnWrite)

	mu         sync.Mutex // guards the fields below; never held across I/O on the segment being written
	seg        int        // number of the segment being written; set with ioMu and mu held
	first      int        // first segment this process wrote: Replay reads the ones before
	sizes      map[int]int64
	brokenSeg  int   // segment whose fsync failed: nothing after its durable end is acknowledged
	curAlloc   int64 // preallocated size of the segment being written, 0 for a plain one
	spareAlloc int64 // disk held by spare files made or being made
	closed     bool
	changed    chan struct{} // closed and replaced whenever durable data or segments change
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
		slots: make(chan int, maxSyncs), jobs: make(chan *syncJob, maxSyncs), ackDone: make(chan struct{}),
		sizes: map[int]int64{}, changed: make(chan struct{}),
		spare: make(chan *os.File), kick: make(chan struct{}, 1), spareDone: make(chan struct{}),
	}
	if err := removeSpares(dir); err != nil {
		return nil, err
	}
	for i := range maxSyncs {
		w.slots <- i
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
	w.ioMu.Lock()
	err = w.openSegment(w.first, nil)
	w.ioMu.Unlock()
	if err != nil {
		return nil, err
	}
	go w.writeLoop()
	if opts.Preallocate {
		go w.spareLoop()
	} else {
		close(w.spareDone)
	}
	return w, nil
}

// Dir is the directory holding the segments.
func (w *WAL) Dir() string { return w.dir }

func (w *WAL) segmentPath(n int) string { return filepath.Join(w.dir, segmentName(n)) }

// openSegment makes segment n, new, the one written: the preallocated file
// spare renamed, or an empty file when spare is nil. Call with ioMu held and
// no commit pending.
func (w *WAL) openSegment(n int, spare *os.File) error {
	path := w.segmentPath(n)
	f, alloc := spare, w.opts.SegmentSize
	if f == nil {
		// A file of that number can only be left by a failed earlier
		// attempt: it holds no record.
		var err error
		if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644); err != nil {
			return fmt.Errorf("create wal segment: %w", err)
		}
		alloc = 0
	}
	fds := make([]*os.File, maxSyncs)
	var err error
	for i := range fds {
		if fds[i], err = os.OpenFile(f.Name(), os.O_WRONLY, 0); err != nil {
			break
		}
	}
	if err == nil && spare != nil {
		err = os.Rename(spare.Name(), path)
	}
	if err == nil {
		err = syncDir(w.dir)
	}
	if err != nil {
		closeFiles(f, fds)
		if spare != nil {
			w.removeSpare(spare.Name())
		}
		return fmt.Errorf("open wal segment: %w", err)
	}
	w.f, w.syncFDs, w.written = f, fds, 0
	w.mu.Lock()
	w.seg, w.sizes[n], w.curAlloc = n, 0, alloc
	w.changedLocked()
	w.mu.Unlock()
	return nil
}

// closeFiles closes a segment's files; nil ones are skipped.
func closeFiles(f *os.File, fds []*os.File) error {
	var errs []error
	if f != nil {
		errs = append(errs, f.Close())
	}
	for _, fd := range fds {
		if fd != nil {
			errs = append(errs, fd.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close wal segment: %w", err)
	}
	return nil
}

// Append writes rec as one record and returns once it is fsync'd. rec must
// not be empty and is not retained after Append returns. Once queued, the
// record is written even if ctx ends, and Append waits for the outcome so that
// it never reports a failure for data that became durable.
func (w *WAL) Append(ctx context.Context, rec []byte) error {
	wait, err := w.Enqueue(ctx, rec)
	if err != nil {
		return err
	}
	return wait()
}

// Enqueue is Append in two halves: it queues rec and returns, and wait
// returns once rec is fsync'd (or failed). Records are written in the order
// Enqueue returned for them, so a caller that must write one record before
// another (a series before its samples) enqueues both under its own lock
// and waits for durability outside it. rec is retained until wait returns.
func (w *WAL) Enqueue(ctx context.Context, rec []byte) (wait func() error, err error) {
	if len(rec) == 0 || len(rec) > MaxRecordSize {
		return nil, fmt.Errorf("wal record of %d bytes: want 1 to %d", len(rec), MaxRecordSize)
	}
	r := &request{rec: rec, done: make(chan error, 1)}
	appendHeader(r.hdr[:0], rec)
	select {
	case w.reqs <- r:
	case <-w.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return func() error { return w.outcome(r) }, nil
}

// outcome waits for a queued record's write and sync.
func (w *WAL) outcome(r *request) error {
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

// Cut closes the current segment and starts a new one, and returns the new
// one's number: every record whose Append returned before Cut was called is in
// a lower-numbered segment.
func (w *WAL) Cut() (int, error) {
	w.ioMu.Lock()
	defer w.ioMu.Unlock()
	if w.isClosed() {
		return 0, ErrClosed
	}
	if err := w.rotateLocked(); err != nil {
		return 0, err
	}
	return w.seg, nil
}

// rotateLocked waits for pending commits, opens the next segment and only
// then closes the current one, so that a failure leaves the WAL writing where
// it was. Call with ioMu held.
func (w *WAL) rotateLocked() error {
	// Readers take a segment as complete once a later one exists: its last
	// commits must be answered (and its size final) first.
	w.pending.Wait()
	w.trimLocked()
	old, oldFDs, oldSeg := w.f, w.syncFDs, w.seg
	if err := w.openSegment(w.seg+1, w.takeSpare()); err != nil {
		return err
	}
	if w.opts.AckOnWrite && old != nil {
		// Synced behind the appends, which need not wait for a whole
		// segment's flush, as Prometheus's WAL syncs a finished segment.
		w.segSyncs.Go(func() {
			w.syncUnsynced(old, oldSeg)
			_ = closeFiles(old, oldFDs)
		})
		return nil
	}
	return closeFiles(old, oldFDs)
}

// TruncateBefore deletes the segments numbered below seg (never the one being
// written): their records are held elsewhere now. The files are removed
// without holding mu, so appends and readers are not held up by it.
func (w *WAL) TruncateBefore(seg int) error {
	w.mu.Lock()
	seg = min(seg, w.seg)
	var gone []int
	for n := range w.sizes {
		if n < seg {
			gone = append(gone, n)
		}
	}
	for _, n := range gone {
		delete(w.sizes, n)
	}
	if len(gone) > 0 {
		w.m.bytes.Set(float64(w.sizeLocked()))
		w.changedLocked()
	}
	w.mu.Unlock()
	if len(gone) == 0 {
		return nil
	}
	slices.Sort(gone)
	for i, n := range gone {
		if err := os.Remove(w.segmentPath(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.keepSegments(gone[i:])
			return fmt.Errorf("remove wal segment: %w", err)
		}
	}
	return syncDir(w.dir)
}

// keepSegments puts back segments that TruncateBefore could not remove.
func (w *WAL) keepSegments(segs []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range segs {
		if fi, err := os.Stat(w.segmentPath(n)); err == nil {
			w.sizes[n] = fi.Size()
		}
	}
	w.m.bytes.Set(float64(w.sizeLocked()))
	w.changedLocked()
}

// Size returns the bytes the segments hold on disk.
func (w *WAL) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sizeLocked()
}

func (w *WAL) sizeLocked() int64 {
	n := w.preallocatedLocked()
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
	<-w.spareDone
	w.ioMu.Lock()
	defer w.ioMu.Unlock()
	w.segSyncs.Wait() // under ioMu: no rotation starts another
	w.trimLocked()
	if w.opts.AckOnWrite && w.f != nil {
		w.syncUnsynced(w.f, w.seg)
	}
	err := closeFiles(w.f, w.syncFDs)
	w.f, w.syncFDs = nil, nil
	return err
}

// syncUnsynced fsyncs segment seg, written with appends acknowledged
// without a sync (AckOnWrite). A failure cannot take back an
// acknowledgement: it is logged and counted.
func (w *WAL) syncUnsynced(f *os.File, seg int) {
	start := time.Now()
	if err := fdatasync(f); err != nil {
		w.m.writeFailures.Inc()
		w.logger.Error("sync wal segment written without syncs", "segment", seg, "err", err)
		return
	}
	w.m.fsyncs.Inc()
	w.m.fsyncDuration.Observe(time.Since(start).Seconds())
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
