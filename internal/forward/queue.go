package forward

import (
	"context"
	"errors"
)

// ErrQueueFull is returned (wrapped) by a Queue whose bytes on disk reached
// its bound; ingest answers it as overload, with Retry-After.
var ErrQueueFull = errors.New("forward queue is full")

// Queue is one destination's durable queue (internal/wal). Records are read in
// the order they were appended; Commit moves the read cursor that survives a
// restart, so records read but not committed are read again after a crash.
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

// OpenQueue opens the queue in dir bounded by maxBytes. It is internal/wal's
// queue once that lands; server wiring passes it in.
type OpenQueue func(dir string, maxBytes int64) (Queue, error)
