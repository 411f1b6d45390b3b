package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Preallocation (Options.Preallocate). A background loop keeps one spare
// file ready: written with zeros to SegmentSize and synced. Rotation renames
// it into place, so appends overwrite blocks that are allocated and written,
// and their fdatasync on ext4 is a data write and a flush, without the
// journal commit that a growing file needs. The zeros go to another inode
// than the segment being synced, so their own journal commit holds no
// append up. Readers take a zero header followed by zeros as the end of a
// segment (segment.go); Replay cuts that tail off.
//
// Nothing depends on the spare for correctness: when it is not ready or
// cannot be made (a full disk), segments are plain files that grow, as
// without the option.

// spareGlob names spare files; they are no segment (not a number), and Open
// removes those a crash left.
const spareGlob = "spare-*"

// zeroBlock is what spares are written with. Never written itself, it
// takes no memory.
var zeroBlock [256 << 10]byte

// spareLoop makes a spare, hands it to the next rotation, and makes the next.
func (w *WAL) spareLoop() {
	defer close(w.spareDone)
	failing := false
	for {
		path, err := w.makeSpare()
		if err != nil {
			if w.isClosed() {
				return
			}
			w.m.preallocFailures.Inc()
			if !failing {
				w.logger.Warn("cannot preallocate the next WAL segment; segments grow by appends until it works", "err", err)
			}
			failing = true
			select {
			case <-w.kick: // a rotation went by: try again
				continue
			case <-w.quit:
				return
			}
		}
		if failing {
			w.logger.Info("WAL segment preallocation resumed")
			failing = false
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			w.dropSpare(path)
			continue
		}
		select {
		case w.spare <- f:
		case <-w.quit:
			f.Close()
			w.dropSpare(path)
			return
		}
	}
}

// makeSpare writes a spare file of zeros and syncs it; it returns its path.
func (w *WAL) makeSpare() (string, error) {
	w.addSpareAlloc(w.opts.SegmentSize) // counted from the start: the bound on disk holds meanwhile
	f, err := os.CreateTemp(w.dir, spareGlob)
	if err != nil {
		w.addSpareAlloc(-w.opts.SegmentSize)
		return "", fmt.Errorf("create spare wal segment: %w", err)
	}
	err = f.Chmod(0o644)
	for off := int64(0); err == nil && off < w.opts.SegmentSize; off += int64(len(zeroBlock)) {
		if w.isClosed() {
			err = ErrClosed
			break
		}
		_, err = f.Write(zeroBlock[:min(int64(len(zeroBlock)), w.opts.SegmentSize-off)])
	}
	if err == nil {
		err = f.Sync() // the blocks are written, not only reserved: overwriting them changes no metadata
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		w.dropSpare(f.Name())
		return "", fmt.Errorf("preallocate wal segment: %w", err)
	}
	return f.Name(), nil
}

// takeSpare returns the spare if one is ready, and nil otherwise (the next
// segment is then a plain file). Call with ioMu held.
func (w *WAL) takeSpare() *os.File {
	if !w.opts.Preallocate {
		return nil
	}
	select {
	case f := <-w.spare:
		w.addSpareAlloc(-w.opts.SegmentSize) // the segment's now: curAlloc
		return f
	default:
		select {
		case w.kick <- struct{}{}:
		default:
		}
		return nil
	}
}

// dropSpare removes a spare file that no rotation took.
func (w *WAL) dropSpare(path string) {
	w.removeSpare(path)
	w.addSpareAlloc(-w.opts.SegmentSize)
}

func (w *WAL) removeSpare(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.logger.Warn("cannot remove a spare WAL segment", "path", path, "err", err)
	}
}

func (w *WAL) addSpareAlloc(n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.spareAlloc += n
	w.m.bytes.Set(float64(w.sizeLocked()))
}

// preallocated returns the disk held ahead by preallocation: zeros not yet
// overwritten in the segment being written, and the spare.
func (w *WAL) preallocated() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.preallocatedLocked()
}

func (w *WAL) preallocatedLocked() int64 {
	return max(w.curAlloc-w.sizes[w.seg], 0) + w.spareAlloc
}

// trimLocked gives back the zeros of the segment being written that no
// record reached, so that sealed segments hold only records (and the queue's
// bound counts only those). Not synced: after a crash, Replay cuts them off.
// Call with ioMu held and no commit pending.
func (w *WAL) trimLocked() {
	w.mu.Lock()
	prealloc, durable := w.curAlloc > 0, w.sizes[w.seg]
	w.curAlloc = 0
	w.mu.Unlock()
	if prealloc && w.f != nil {
		_ = w.f.Truncate(durable)
	}
}

// removeSpares removes the spare files a crash left.
func removeSpares(dir string) error {
	spares, err := filepath.Glob(filepath.Join(dir, spareGlob))
	if err != nil {
		return fmt.Errorf("list spare wal segments: %w", err)
	}
	for _, p := range spares {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove spare wal segment: %w", err)
		}
	}
	return nil
}
