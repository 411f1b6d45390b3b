// Package wal is an append-only log of opaque records in numbered segment files.
// Appends from many goroutines are grouped into one write and one fsync, so an
// acknowledged record survives kill -9 without paying an fsync per request.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const (
	headerSize = 8 // uint32 length + uint32 CRC-32C
	// MaxRecordSize bounds one record so a corrupt length cannot make replay
	// allocate without limit.
	MaxRecordSize = 256 << 20
	segmentSuffix = ".wal"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("wal closed")

// WAL is safe for concurrent use.
type WAL struct {
	dir    string
	logger *slog.Logger

	reqs chan *request
	done chan struct{}

	mu      sync.Mutex // guards f, seq and closed
	f       *os.File
	seq     int
	closed  bool
	syncErr error
}

type request struct {
	rec  []byte
	cut  bool // start a new segment after this request's batch
	errc chan error
	seq  int // segment the record went to, or the new segment for cut
}

// Open opens (creating if needed) the WAL in dir and starts a new segment after the
// existing ones; call Replay first to read what is there.
func Open(dir string, logger *slog.Logger) (*WAL, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	segs, err := Segments(dir)
	if err != nil {
		return nil, err
	}
	next := 1
	if len(segs) > 0 {
		next = segs[len(segs)-1] + 1
	}
	w := &WAL{dir: dir, logger: logger, reqs: make(chan *request, 1024), done: make(chan struct{})}
	if err := w.openSegment(next); err != nil {
		return nil, err
	}
	go w.loop()
	return w, nil
}

func (w *WAL) segmentPath(seq int) string {
	return filepath.Join(w.dir, fmt.Sprintf("%08d%s", seq, segmentSuffix))
}

func (w *WAL) openSegment(seq int) error {
	f, err := os.OpenFile(w.segmentPath(seq), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open wal segment: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	w.f, w.seq = f, seq
	return nil
}

// Append writes rec and returns once it is fsync'd, with the segment number that
// holds it.
func (w *WAL) Append(rec []byte) (int, error) {
	if len(rec) > MaxRecordSize {
		return 0, fmt.Errorf("wal record of %d bytes exceeds %d", len(rec), MaxRecordSize)
	}
	return w.submit(&request{rec: rec, errc: make(chan error, 1)})
}

// Cut closes the current segment and starts a new one. It returns the number of
// the new segment: every record appended before Cut returned lives in a lower one.
func (w *WAL) Cut() (int, error) {
	return w.submit(&request{cut: true, errc: make(chan error, 1)})
}

func (w *WAL) submit(r *request) (int, error) {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	select {
	case w.reqs <- r:
	case <-w.done:
		return 0, ErrClosed
	}
	select {
	case err := <-r.errc:
		return r.seq, err
	case <-w.done:
		// The loop may have answered just before stopping.
		select {
		case err := <-r.errc:
			return r.seq, err
		default:
			return 0, ErrClosed
		}
	}
}

// loop is the only writer: it drains whatever requests queued up while the previous
// fsync ran and commits them together.
func (w *WAL) loop() {
	var batch []*request
	buf := make([]byte, 0, 1<<20)
	for {
		r, ok := <-w.reqs
		if !ok {
			close(w.done)
			return
		}
		batch = append(batch[:0], r)
	drain:
		for len(batch) < 4096 {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		buf = w.commit(batch, buf[:0])
		if cap(buf) > 64<<20 {
			buf = make([]byte, 0, 1<<20) // do not pin one huge request's memory
		}
	}
}

func (w *WAL) commit(batch []*request, buf []byte) []byte {
	// Records up to (and including) a cut go to the current segment; a cut then
	// switches segments. Writes are grouped between cuts.
	start := 0
	for i, r := range batch {
		if r.cut {
			err := w.write(batch[start:i], buf)
			answer(batch[start:i], err)
			r.seq, err = w.rotate()
			r.errc <- err
			start = i + 1
		}
	}
	answer(batch[start:], w.write(batch[start:], buf))
	return buf
}

func answer(rs []*request, err error) {
	for _, r := range rs {
		r.errc <- err
	}
}

func (w *WAL) write(rs []*request, buf []byte) error {
	if len(rs) == 0 {
		return nil
	}
	if w.syncErr != nil {
		// After a failed fsync the page cache state is unknown: refuse further
		// writes rather than acknowledge data that may be lost.
		return w.syncErr
	}
	for _, r := range rs {
		var hdr [headerSize]byte
		binary.LittleEndian.PutUint32(hdr[0:], uint32(len(r.rec)))
		binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(r.rec, castagnoli))
		buf = append(buf, hdr[:]...)
		buf = append(buf, r.rec...)
		r.seq = w.seq
	}
	if _, err := w.f.Write(buf); err != nil {
		w.syncErr = fmt.Errorf("write wal: %w", err)
		return w.syncErr
	}
	if err := w.f.Sync(); err != nil {
		w.syncErr = fmt.Errorf("sync wal: %w", err)
		return w.syncErr
	}
	return nil
}

func (w *WAL) rotate() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.f.Close(); err != nil {
		return 0, fmt.Errorf("close wal segment: %w", err)
	}
	if err := w.openSegment(w.seq + 1); err != nil {
		return 0, err
	}
	return w.seq, nil
}

// Truncate deletes every segment numbered below seq: their records are now held
// elsewhere (in a block).
func (w *WAL) Truncate(seq int) error {
	segs, err := Segments(w.dir)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s >= seq {
			break
		}
		if err := os.Remove(w.segmentPath(s)); err != nil {
			return fmt.Errorf("remove wal segment: %w", err)
		}
	}
	return syncDir(w.dir)
}

// Close stops the writer after pending appends are committed.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.reqs)
	<-w.done
	return w.f.Close()
}

// Size returns the bytes held by all segments.
func (w *WAL) Size() int64 {
	segs, _ := Segments(w.dir)
	var n int64
	for _, s := range segs {
		if fi, err := os.Stat(w.segmentPath(s)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Segments lists the segment numbers in dir, ascending.
func Segments(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list wal: %w", err)
	}
	var segs []int
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segmentSuffix)
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(name); err == nil {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)
	return segs, nil
}

// Replay calls fn for every intact record in dir, oldest first, with the segment
// number it came from. A torn or corrupt tail (a crash mid-write, which was never
// acknowledged) ends that segment's replay; it is logged and truncated away.
func Replay(dir string, logger *slog.Logger, fn func(seq int, rec []byte) error) error {
	segs, err := Segments(dir)
	if err != nil {
		return err
	}
	for _, seq := range segs {
		path := filepath.Join(dir, fmt.Sprintf("%08d%s", seq, segmentSuffix))
		n, good, err := replaySegment(path, seq, fn)
		if err != nil {
			return err
		}
		logger.Info("replayed profiles wal segment", "segment", seq, "records", n)
		if good >= 0 {
			logger.Warn("truncating corrupt profiles wal tail", "segment", seq, "offset", good)
			if err := os.Truncate(path, good); err != nil {
				return fmt.Errorf("truncate wal segment: %w", err)
			}
		}
	}
	return nil
}

// replaySegment returns the record count and, when the segment ends in a bad
// record, the offset of the last good byte (else -1).
func replaySegment(path string, seq int, fn func(int, []byte) error) (int, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, -1, fmt.Errorf("open wal segment: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	n := 0
	for {
		var hdr [headerSize]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return n, -1, nil
			}
			return n, off, nil
		}
		size := binary.LittleEndian.Uint32(hdr[0:])
		if size > MaxRecordSize {
			return n, off, nil
		}
		rec := make([]byte, size)
		if _, err := io.ReadFull(r, rec); err != nil {
			return n, off, nil
		}
		if crc32.Checksum(rec, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			return n, off, nil
		}
		if err := fn(seq, rec); err != nil {
			return n, -1, err
		}
		off += headerSize + int64(size)
		n++
	}
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
