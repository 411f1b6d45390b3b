package forward

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vispyr/vispyr/internal/wal"
)

// ErrQueueFull is returned (wrapped) by a Queue whose bytes on disk reached
// its bound; ingest answers it as overload, with Retry-After.
var ErrQueueFull = wal.ErrFull

// Queue is one destination's durable queue. Records are read in the order
// they were appended; Commit moves the read cursor that survives a restart,
// so records read but not committed are read again after a crash.
type Queue interface {
	// Append returns once rec is durable (fsync'd), or with an error wrapping
	// ErrQueueFull.
	Append(rec []byte) error
	// Next blocks until a record after the last one read is available.
	// pos increases by record; the returned slice is the caller's.
	Next(ctx context.Context) (rec []byte, pos uint64, err error)
	// Commit marks every record up to pos delivered.
	Commit(pos uint64) error
	// Size returns the bytes and records not yet committed.
	Size() (bytes, records int64)
	// Full reports whether Append would refuse a record now.
	Full() bool
	Close() error
}

var _ Queue = (*wal.Queue)(nil)

// OpenQueue opens the queue in dir bounded by maxBytes; server wiring passes
// it in.
type OpenQueue func(dir string, maxBytes int64) (Queue, error)

// OpenWALQueue opens internal/wal queues: records are read back from disk,
// so a backlog costs disk, not memory. Each queue's WAL metrics are labelled
// wal="forward/<signal>/<destination>".
func OpenWALQueue(logger *slog.Logger, reg prometheus.Registerer) OpenQueue {
	return func(dir string, maxBytes int64) (Queue, error) {
		name := "forward/" + filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		q, err := wal.OpenQueue(dir, wal.QueueOptions{
			Options:  wal.Options{Name: name, Logger: logger, Registerer: reg, Preallocate: true},
			MaxBytes: maxBytes,
		})
		if err != nil {
			return nil, err // not a nil *wal.Queue in a non-nil Queue
		}
		return q, nil
	}
}

// GuardQueues makes every queue open refuses appends while check(name)
// returns an error: the gateway passes the disk guard's Check, so that a
// full disk is answered 503 / RESOURCE_EXHAUSTED naming the queue before a
// WAL write could fail on ENOSPC. name is forward/<signal>/<destination>.
func GuardQueues(open OpenQueue, check func(name string) error) OpenQueue {
	return func(dir string, maxBytes int64) (Queue, error) {
		q, err := open(dir, maxBytes)
		if err != nil {
			return nil, err
		}
		name := "forward/" + filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		return guardedQueue{Queue: q, name: name, check: check}, nil
	}
}

type guardedQueue struct {
	Queue
	name  string
	check func(string) error
}

func (q guardedQueue) Append(rec []byte) error {
	if err := q.check(q.name); err != nil {
		return err
	}
	return q.Queue.Append(rec)
}
