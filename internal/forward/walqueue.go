package forward

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/vispyr/vispyr/internal/profiles/wal"
)

// walQueue is a Queue on the project's segment WAL (group-committed fsync)
// plus a cursor file. Each record carries its sequence number, so the cursor
// names a record across restarts; segments wholly behind the cursor are
// deleted. Undelivered records are also held in memory, so MaxBytes bounds
// memory as well as disk.
type walQueue struct {
	dir     string
	w       *wal.WAL
	logger  *slog.Logger
	maxSize int64

	mu        sync.Mutex
	cond      *sync.Cond
	nextSeq   uint64            // next sequence number to assign
	acked     map[uint64][]byte // durable, not yet contiguous with delivered
	pending   []qrec            // contiguous durable records not yet read
	read      []readRec         // handed to Next, not yet committed
	contig    uint64            // every sequence ≤ contig is durable
	committed uint64
	bytes     int64 // undelivered record bytes
	records   int64
	segMax    map[int]uint64 // segment → highest sequence in it
	segBytes  int64          // bytes appended to the current segment
	closed    bool
	// full is set when an append is refused and cleared once delivery has
	// freed a tenth of the bound, so readiness does not flap per request.
	full bool
}

type readRec struct {
	seq  uint64
	size int64
}

type qrec struct {
	seq uint64
	rec []byte
}

// cutEvery starts a new segment after this many bytes, so that delivered
// segments can be deleted.
const cutEvery = 16 << 20

// OpenWALQueue opens (or creates) the queue in dir and replays what was not
// delivered before a restart.
func OpenWALQueue(logger *slog.Logger) OpenQueue {
	return func(dir string, maxBytes int64) (Queue, error) {
		return openWALQueue(dir, maxBytes, logger)
	}
}

func openWALQueue(dir string, maxBytes int64, logger *slog.Logger) (*walQueue, error) {
	q := &walQueue{dir: dir, logger: logger, maxSize: maxBytes, acked: map[uint64][]byte{}, segMax: map[int]uint64{}}
	q.cond = sync.NewCond(&q.mu)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create queue dir: %w", err)
	}
	cur, err := readCursor(dir)
	if err != nil {
		return nil, err
	}
	q.committed, q.contig = cur, cur
	var last uint64 = cur
	err = wal.Replay(dir, logger, func(seg int, rec []byte) error {
		seq, n := binary.Uvarint(rec)
		if n <= 0 {
			return nil // never acknowledged whole: skip
		}
		q.segMax[seg] = max(q.segMax[seg], seq)
		last = max(last, seq)
		if seq > cur {
			q.acked[seq] = append([]byte(nil), rec[n:]...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay queue: %w", err)
	}
	q.nextSeq = last + 1
	// Records lost to a corrupt segment leave gaps: skip them, so the rest
	// is still delivered.
	for s := cur + 1; s <= last; s++ {
		if rec, ok := q.acked[s]; ok {
			delete(q.acked, s)
			q.pending = append(q.pending, qrec{s, rec})
			q.bytes += int64(len(rec))
			q.records++
		} else {
			logger.Warn("forward queue record missing after a crash; skipped", "dir", dir, "seq", s)
		}
	}
	q.contig = last
	if q.w, err = wal.Open(dir, logger); err != nil {
		return nil, fmt.Errorf("open queue wal: %w", err)
	}
	if q.records > 0 {
		logger.Info("forward queue replayed", "dir", dir, "records", q.records, "bytes", q.bytes)
	}
	return q, nil
}

func (q *walQueue) Append(rec []byte) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return wal.ErrClosed
	}
	if q.bytes+int64(len(rec)) > q.maxSize && q.bytes > 0 {
		q.full = true
		q.mu.Unlock()
		return ErrQueueFull
	}
	seq := q.nextSeq
	q.nextSeq++
	q.bytes += int64(len(rec)) // reserved now, so concurrent appends respect the bound
	q.records++
	q.mu.Unlock()

	buf := binary.AppendUvarint(make([]byte, 0, len(rec)+binary.MaxVarintLen64), seq)
	buf = append(buf, rec...)
	seg, err := q.w.Append(buf)

	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		// Not durable, so not to be read; the sequence stays a gap that
		// Next steps over.
		q.bytes -= int64(len(rec))
		q.records--
		q.acked[seq] = nil
		q.advance()
		return fmt.Errorf("append to queue: %w", err)
	}
	q.segMax[seg] = max(q.segMax[seg], seq)
	q.segBytes += int64(len(buf))
	q.acked[seq] = buf[len(buf)-len(rec):]
	q.advance()
	if q.segBytes > cutEvery {
		q.segBytes = 0
		go func() { _, _ = q.w.Cut() }()
	}
	return nil
}

// advance moves durable records that are contiguous with the last one into
// pending, in sequence order. Call with mu held.
func (q *walQueue) advance() {
	moved := false
	for {
		rec, ok := q.acked[q.contig+1]
		if !ok {
			break
		}
		delete(q.acked, q.contig+1)
		q.contig++
		if rec != nil {
			q.pending = append(q.pending, qrec{q.contig, rec})
			moved = true
		}
	}
	if moved {
		q.cond.Broadcast()
	}
}

func (q *walQueue) Next(ctx context.Context) ([]byte, uint64, error) {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.pending) == 0 {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		if q.closed {
			return nil, 0, wal.ErrClosed
		}
		q.cond.Wait()
	}
	r := q.pending[0]
	q.pending[0] = qrec{}
	q.pending = q.pending[1:]
	q.read = append(q.read, readRec{r.seq, int64(len(r.rec))})
	return r.rec, r.seq, nil
}

func (q *walQueue) Commit(pos uint64) error {
	q.mu.Lock()
	if pos <= q.committed {
		q.mu.Unlock()
		return nil
	}
	q.mu.Unlock()
	if err := writeCursor(q.dir, pos); err != nil {
		return err
	}
	q.mu.Lock()
	q.committed = pos
	// Delivered bytes leave the bound once the cursor is durable.
	for len(q.read) > 0 && q.read[0].seq <= pos {
		q.bytes -= q.read[0].size
		q.records--
		q.read = q.read[1:]
	}
	if q.full && q.bytes < q.maxSize-q.maxSize/10 {
		q.full = false
	}
	// Every segment older than the oldest holding an undelivered record goes.
	keep, newest := -1, -1
	for seg, m := range q.segMax {
		newest = max(newest, seg)
		if m > pos && (keep < 0 || seg < keep) {
			keep = seg
		}
	}
	if keep < 0 {
		keep = newest
	}
	for seg := range q.segMax {
		if seg < keep {
			delete(q.segMax, seg)
		}
	}
	q.mu.Unlock()
	if keep > 0 {
		if err := q.w.Truncate(keep); err != nil {
			return fmt.Errorf("delete delivered queue segments: %w", err)
		}
	}
	return nil
}

func (q *walQueue) Size() (int64, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes, q.records
}

func (q *walQueue) Full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.full || q.bytes >= q.maxSize
}

func (q *walQueue) Close() error {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	return q.w.Close()
}

const cursorFile = "cursor"

func readCursor(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, cursorFile))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read queue cursor: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse queue cursor: %w", err)
	}
	return v, nil
}

// writeCursor replaces the cursor file atomically and durably.
func writeCursor(dir string, pos uint64) error {
	tmp := filepath.Join(dir, cursorFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write queue cursor: %w", err)
	}
	_, err = f.WriteString(strconv.FormatUint(pos, 10) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, cursorFile))
	}
	if err != nil {
		return fmt.Errorf("write queue cursor: %w", err)
	}
	return nil
}
