package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Segment files are named by their number, zero-padded so that they sort.
func segmentName(n int) string { return fmt.Sprintf("%08d", n) }

// legacySuffix is how the profile store's WAL named its segments before this
// package: such files are renamed on Open.
const legacySuffix = ".wal"

// Segment describes one segment file.
type Segment struct {
	Index   int
	Size    int64 // bytes of whole records
	ModTime time.Time
}

// listSegments returns the segment numbers in dir, ascending, renaming
// segments of the older naming first.
func listSegments(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list wal segments: %w", err)
	}
	var segs []int
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		name, legacy := strings.CutSuffix(e.Name(), legacySuffix)
		n, err := strconv.Atoi(name)
		if err != nil || n < 0 {
			continue
		}
		if legacy {
			if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dir, segmentName(n))); err != nil {
				return nil, fmt.Errorf("rename wal segment: %w", err)
			}
		}
		segs = append(segs, n)
	}
	slices.Sort(segs)
	return segs, nil
}

// readAhead is how much a segmentReader reads at once.
const readAhead = 1 << 20

// segmentReader reads records of one segment file from a given offset. It
// reads no further than the limit passed to next, so it can follow a segment
// that is still being written.
type segmentReader struct {
	f   *os.File
	off int64  // file offset of buf[0]
	buf []byte // file bytes from off
	rd  int    // index in buf of the next record
}

func openSegmentReader(path string, offset int64) (*segmentReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &segmentReader{f: f, off: offset}, nil
}

// pos is the offset of the next record.
func (r *segmentReader) pos() int64 { return r.off + int64(r.rd) }

// next returns the next record's payload, which aliases the reader's buffer
// until the following call. It returns io.EOF when no byte is left before
// limit, ErrTorn when the bytes before limit end inside a record, and an
// error wrapping ErrCorrupt for a damaged record.
func (r *segmentReader) next(limit int64) ([]byte, error) {
	hdr, err := r.peek(headerSize, limit)
	if err != nil {
		return nil, err
	}
	switch {
	case len(hdr) == 0:
		return nil, io.EOF
	case isZero(hdr): // even a short one: records may end a few bytes before a preallocated end
		return nil, r.zeroTail(limit)
	case len(hdr) < headerSize:
		return nil, ErrTorn
	}
	size, err := payloadSize(hdr)
	if err != nil {
		return nil, err
	}
	b, err := r.peek(headerSize+size, limit)
	if err != nil {
		return nil, err
	}
	if len(b) < headerSize+size {
		return nil, ErrTorn
	}
	payload := b[headerSize:]
	if err := checkPayload(b, payload); err != nil {
		return nil, err
	}
	r.rd += len(b)
	return payload, nil
}

// errZeroEnd means the records end where zeros start that run to the end of
// the file (or the limit): the not yet written rest of a preallocated
// segment, or what an OS crash leaves of a write never acknowledged.
var errZeroEnd = errors.New("records end in zero bytes")

// zeroTail checks the bytes from a zero header on: all zero is errZeroEnd,
// anything else is damage (a record whose header did not reach the disk).
// The read position stays at the header.
func (r *segmentReader) zeroTail(limit int64) error {
	start := r.pos()
	defer func() { r.off, r.buf, r.rd = start, r.buf[:0], 0 }()
	for {
		b, err := r.peek(readAhead, limit)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return errZeroEnd
		}
		if !isZero(b) {
			return fmt.Errorf("%w: data after a zero header", ErrCorrupt)
		}
		r.rd += len(b)
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// peek returns the n bytes at the read position, fewer when the file or
// limit ends first.
func (r *segmentReader) peek(n int, limit int64) ([]byte, error) {
	if len(r.buf)-r.rd >= n {
		return r.buf[r.rd : r.rd+n], nil
	}
	// Move the unread bytes to the front, then read more after them.
	r.off += int64(r.rd)
	r.buf = r.buf[:copy(r.buf, r.buf[r.rd:])]
	r.rd = 0
	want := max(n, readAhead)
	if cap(r.buf) < want || cap(r.buf) > 4*readAhead && want <= readAhead {
		r.buf = append(make([]byte, 0, want), r.buf...) // grow, or let one huge record's buffer go
	}
	end := r.off + int64(want)
	if limit >= 0 {
		end = min(end, limit)
	}
	if have := r.off + int64(len(r.buf)); end > have {
		got, err := r.f.ReadAt(r.buf[len(r.buf):len(r.buf)+int(end-have)], have)
		r.buf = r.buf[:len(r.buf)+got]
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read wal segment: %w", err)
		}
	}
	return r.buf[:min(n, len(r.buf))], nil
}

func (r *segmentReader) close() error { return r.f.Close() }
