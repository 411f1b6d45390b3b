package wal

import (
	"errors"
	"fmt"
	"time"
)

// Group commit with overlapping syncs. The writer takes every append queued
// since its last write and writes them at once; an fsync of that write then
// runs on its own while the writer goes on with the next appends (up to
// maxSyncs syncs at a time). The acker answers commits strictly in write
// order: a commit is acknowledged only when its own sync and every earlier
// one succeeded, so an acknowledged record never sits behind bytes that did
// not reach the disk. After a failed sync nothing more is acknowledged in
// that segment; the writer continues in a new one.

// syncJob is one write and its sync.
type syncJob struct {
	batch  []*request
	seg    int
	end    int64 // segment size after the write
	bytes  int
	start  time.Time
	synced bool // the write succeeded and a sync ran: err is the sync's
	err    error
	done   chan struct{} // closed when err is final
}

// errEarlierSync answers commits written after one whose sync failed.
var errEarlierSync = errors.New("an earlier WAL sync of the segment failed")

// writeLoop is the only writer: it takes every append queued while it was
// busy and writes them at once.
func (w *WAL) writeLoop() {
	defer close(w.done)
	go w.ackLoop()
	defer func() {
		close(w.jobs)
		<-w.ackDone
	}()
	var buf []byte
	for {
		var batch []*request
		select {
		case r := <-w.reqs:
			batch = append(batch, r)
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
		w.commit(buf, batch)
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

// commit writes buf at the end of the current segment and starts its sync;
// the acker answers batch once the sync is done (at once with AckOnWrite).
func (w *WAL) commit(buf []byte, batch []*request) {
	job := &syncJob{batch: batch, bytes: len(buf), start: time.Now(), done: make(chan struct{})}
	w.ioMu.Lock()
	defer w.ioMu.Unlock()
	job.seg, job.end, job.err = w.write(buf)
	if job.err == nil && !w.opts.AckOnWrite {
		job.synced = true
		slot := <-w.slots
		fd := w.syncFDs[slot]
		go func() {
			if err := fdatasync(fd); err != nil {
				job.err = fmt.Errorf("sync wal: %w", err)
			}
			w.slots <- slot
			close(job.done)
		}()
	} else {
		close(job.done)
	}
	w.pending.Add(1)
	w.jobs <- job
}

// write appends buf to the segment being written, first moving to a new
// segment when the current one is full, failed to sync, or could not be
// repaired. Call with ioMu held.
func (w *WAL) write(buf []byte) (seg int, end int64, err error) {
	if w.isClosed() {
		return 0, 0, ErrClosed
	}
	if w.f == nil || w.syncFailed() {
		if w.f != nil {
			// Best effort: what follows the durable part was never
			// acknowledged; Replay would otherwise deliver it.
			w.pending.Wait()
			_ = w.f.Truncate(w.durableSize())
		}
		// Continue in a new segment; the failed one keeps its durable part.
		if err := w.rotateLocked(); err != nil {
			return 0, 0, err
		}
	}
	if w.written > 0 && w.written+int64(len(buf)) > w.opts.SegmentSize {
		if err := w.rotateLocked(); err != nil {
			return 0, 0, err
		}
	}
	if _, err := w.f.WriteAt(buf, w.written); err != nil {
		w.discardFailedWrite()
		return 0, 0, fmt.Errorf("write wal: %w", err)
	}
	w.written += int64(len(buf))
	return w.seg, w.written, nil
}

func (w *WAL) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// syncFailed reports whether a sync of the segment being written failed.
func (w *WAL) syncFailed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.brokenSeg == w.seg
}

// durableSize is the acknowledged size of the segment being written.
func (w *WAL) durableSize() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sizes[w.seg]
}

// discardFailedWrite cuts off what a failed write may have left after the
// previous write, so that records written later are not hidden behind a torn
// one at replay. When that fails, the segment is closed and the next write
// starts a new one; Replay then repairs the old segment's tail. Call with
// ioMu held.
func (w *WAL) discardFailedWrite() {
	err := w.f.Truncate(w.written)
	if err == nil {
		w.mu.Lock()
		w.curAlloc = 0 // the zeros after written went too
		w.mu.Unlock()
		return
	}
	w.logger.Warn("cut failed WAL write; continuing in a new segment", "segment", w.seg, "err", err)
	_ = w.f.Close()
	w.f = nil
}

// ackLoop answers commits in the order they were written.
func (w *WAL) ackLoop() {
	defer close(w.ackDone)
	for job := range w.jobs {
		<-job.done
		err := w.settle(job)
		if err != nil {
			w.m.writeFailures.Inc()
			if !w.failing {
				w.logger.Error("WAL write failed; appends are refused until a write succeeds", "err", err)
			}
			w.failing = true
		} else {
			if w.failing {
				w.logger.Info("WAL writes resumed")
				w.failing = false
			}
			w.m.writtenBytes.Add(float64(job.bytes))
			if job.synced {
				w.m.fsyncs.Inc()
				w.m.fsyncDuration.Observe(time.Since(job.start).Seconds())
			}
		}
		for _, r := range job.batch {
			r.done <- err
		}
		w.pending.Done()
	}
}

// settle makes a synced job's bytes durable for readers, or records that the
// segment's sync failed; it returns the job's outcome.
func (w *WAL) settle(job *syncJob) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case job.err != nil && job.synced:
		w.brokenSeg = job.seg
		return job.err
	case job.err != nil:
		return job.err
	case w.brokenSeg == job.seg:
		return errEarlierSync
	}
	w.sizes[job.seg] = job.end
	w.m.bytes.Set(float64(w.sizeLocked()))
	w.changedLocked()
	return nil
}
