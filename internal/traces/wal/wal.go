package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSegmentSize is when a segment is closed and the next one started.
const DefaultSegmentSize = 128 << 20

// WAL appends records to numbered segment files in one directory.
type WAL struct {
	dir         string
	segmentSize int64
	logger      *slog.Logger

	reqs chan *request
	quit chan struct{}
	done chan struct{}

	mu     sync.Mutex // guards the fields below; held by the writer during a write+fsync
	f      *os.File
	seg    int
	size   int64
	closed bool

	fsyncs   prometheus.Counter
	bytesOut prometheus.Counter
	fsyncDur prometheus.Histogram
}

type request struct {
	rec  []byte // already framed
	done chan error
}

// Open opens the log in dir, creating it if needed. Call Replay before the first Append.
func Open(dir string, segmentSize int64, logger *slog.Logger, reg prometheus.Registerer) (*WAL, error) {
	if segmentSize <= 0 {
		segmentSize = DefaultSegmentSize
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	w := &WAL{
		dir: dir, segmentSize: segmentSize, logger: logger,
		reqs: make(chan *request, 1024), quit: make(chan struct{}), done: make(chan struct{}),
		fsyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_traces_wal_fsyncs_total", Help: "WAL fsyncs (one per group commit).",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vispyr_traces_wal_written_bytes_total", Help: "Bytes written to the WAL.",
		}),
		fsyncDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vispyr_traces_wal_fsync_duration_seconds", Help: "Time to write and fsync one group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{w.fsyncs, w.bytesOut, w.fsyncDur} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register wal metrics: %w", err)
			}
		}
	}
	return w, nil
}

// Segments lists the segment numbers present, ascending.
func (w *WAL) Segments() ([]int, error) {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("list wal: %w", err)
	}
	var segs []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && !e.IsDir() {
			segs = append(segs, n)
		}
	}
	sort.Ints(segs)
	return segs, nil
}

func (w *WAL) segPath(n int) string { return filepath.Join(w.dir, fmt.Sprintf("%08d", n)) }

// Replay calls fn with every intact record in order, then opens a fresh segment for
// appends and starts the writer. A torn or corrupt tail of a segment (a crash in the
// middle of a write) is logged and cut off; records before it are kept.
func (w *WAL) Replay(fn func(payload []byte) error) error {
	segs, err := w.Segments()
	if err != nil {
		return err
	}
	start := time.Now()
	var records, bytes int
	for i, n := range segs {
		data, err := os.ReadFile(w.segPath(n))
		if err != nil {
			return fmt.Errorf("read wal segment %d: %w", n, err)
		}
		off := 0
		for off < len(data) {
			payload, size, err := DecodeRecord(data[off:])
			if err != nil {
				w.logger.Warn("WAL segment ends in a damaged record; dropping the rest of the segment",
					"segment", n, "offset", off, "dropped_bytes", len(data)-off, "err", err)
				if terr := os.Truncate(w.segPath(n), int64(off)); terr != nil {
					return fmt.Errorf("truncate damaged wal segment %d: %w", n, terr)
				}
				break
			}
			if err := fn(payload); err != nil {
				return fmt.Errorf("replay wal segment %d offset %d: %w", n, off, err)
			}
			off += size
			records++
		}
		bytes += len(data)
		w.logger.Info("WAL replay progress", "segment", n, "segments_done", i+1, "segments_total", len(segs),
			"records", records, "bytes", bytes)
	}
	if len(segs) > 0 {
		w.logger.Info("WAL replay finished", "records", records, "bytes", bytes, "duration", time.Since(start))
	}
	next := 1
	if len(segs) > 0 {
		next = segs[len(segs)-1] + 1
	}
	w.mu.Lock()
	err = w.openSegment(next)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	go w.loop()
	return nil
}

// openSegment must be called with mu held.
func (w *WAL) openSegment(n int) error {
	f, err := os.OpenFile(w.segPath(n), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("create wal segment: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	w.f, w.seg, w.size = f, n, 0
	return nil
}

// Append writes payload as one record and returns once it is fsync'd.
func (w *WAL) Append(ctx context.Context, payload []byte) error {
	if len(payload) > MaxRecordSize {
		return fmt.Errorf("wal record of %d bytes over limit %d", len(payload), MaxRecordSize)
	}
	r := &request{rec: AppendRecord(make([]byte, 0, headerSize+len(payload)), payload), done: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-w.quit:
		return errors.New("wal closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the record will be written; wait for the outcome even if ctx ends,
	// so the caller never reports failure for data that became durable.
	return <-r.done
}

// loop is the single writer: it takes every queued record, writes them with one
// write call and one fsync, then releases all their callers (group commit).
func (w *WAL) loop() {
	defer close(w.done)
	var batch []*request
	var buf []byte
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-w.quit:
			w.failPending()
			return
		}
		size := len(batch[0].rec)
	drain:
		for size < 16<<20 {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
				size += len(r.rec)
			default:
				break drain
			}
		}
		buf = buf[:0]
		for _, r := range batch {
			buf = append(buf, r.rec...)
		}
		err := w.write(buf)
		for _, r := range batch {
			r.done <- err
		}
		if cap(buf) > 64<<20 {
			buf = nil
		}
	}
}

func (w *WAL) failPending() {
	for {
		select {
		case r := <-w.reqs:
			r.done <- errors.New("wal closed")
		default:
			return
		}
	}
}

func (w *WAL) write(buf []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("wal closed")
	}
	if w.size > 0 && w.size+int64(len(buf)) > w.segmentSize {
		if err := w.rotateLocked(); err != nil {
			return err
		}
	}
	start := time.Now()
	if _, err := w.f.Write(buf); err != nil {
		return fmt.Errorf("write wal: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("fsync wal: %w", err)
	}
	w.size += int64(len(buf))
	w.fsyncs.Inc()
	w.bytesOut.Add(float64(len(buf)))
	w.fsyncDur.Observe(time.Since(start).Seconds())
	return nil
}

// Rotate closes the current segment and starts a new one. It returns the new segment's
// number: every record appended before Rotate is in a lower-numbered segment.
func (w *WAL) Rotate() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("wal closed")
	}
	if err := w.rotateLocked(); err != nil {
		return 0, err
	}
	return w.seg, nil
}

func (w *WAL) rotateLocked() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close wal segment: %w", err)
	}
	return w.openSegment(w.seg + 1)
}

// TruncateBefore deletes the segments numbered below seg: their records are in blocks.
func (w *WAL) TruncateBefore(seg int) error {
	segs, err := w.Segments()
	if err != nil {
		return err
	}
	for _, n := range segs {
		if n >= seg {
			break
		}
		if err := os.Remove(w.segPath(n)); err != nil {
			return fmt.Errorf("remove wal segment %d: %w", n, err)
		}
	}
	return syncDir(w.dir)
}

// Close stops the writer; appends waiting in the queue fail.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	started := w.f != nil
	var err error
	if started {
		err = w.f.Close()
	}
	w.mu.Unlock()
	close(w.quit)
	if started {
		<-w.done
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}
