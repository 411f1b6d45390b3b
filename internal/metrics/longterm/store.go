package longterm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/fileutil"
)

// Store is one tenant's long-term blocks, in one directory.
type Store struct {
	dir         string
	logger      *slog.Logger
	resolutions []int64 // downsampled resolutions of new blocks, ms

	mu       sync.RWMutex
	blocks   []*block // by MinTime
	closed   bool
	removing sync.WaitGroup // blocks deleted, waiting for their readers
}

// Open opens the long-term blocks under dir (creating it), removing what a
// crash left half-written or half-deleted. Blocks it writes keep aggregates
// at the downsample resolutions too (downsample.go).
func Open(dir string, logger *slog.Logger, downsample ...time.Duration) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create long-term dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list long-term dir: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{dir: dir, logger: logger}
	for _, res := range downsample {
		s.resolutions = append(s.resolutions, res.Milliseconds())
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			if err := os.RemoveAll(path); err != nil {
				return nil, fmt.Errorf("remove unfinished long-term block: %w", err)
			}
			continue
		}
		if _, err := ulid.ParseStrict(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		b, err := openBlock(path)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.blocks = append(s.blocks, b)
	}
	s.sortBlocks()
	return s, nil
}

func (s *Store) sortBlocks() {
	slices.SortFunc(s.blocks, func(a, b *block) int { return int(a.meta.MinTime>>1 - b.meta.MinTime>>1) })
}

// Close closes every block; queriers must be closed first.
func (s *Store) Close() error {
	s.removing.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, b := range s.blocks {
		errs = append(errs, b.close())
	}
	s.blocks = nil
	return errors.Join(errs...)
}

// Metas lists the blocks, oldest first.
func (s *Store) Metas() []Meta {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Meta, len(s.blocks))
	for i, b := range s.blocks {
		out[i] = b.meta
	}
	return out
}

// Replaces reports whether a long-term block holds the TSDB block id's data,
// which the TSDB may then delete.
func (s *Store) Replaces(id ulid.ULID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, b := range s.blocks {
		if slices.Contains(b.meta.Sources, id) {
			return true
		}
	}
	return false
}

// Querier reads the blocks overlapping [mint, maxt]; nil when there are none.
func (s *Store) Querier(mint, maxt int64) storage.Querier {
	s.mu.RLock()
	defer s.mu.RUnlock()
	q := &querier{mint: mint, maxt: maxt}
	for _, b := range s.blocks {
		if b.meta.MaxTime >= mint && b.meta.MinTime <= maxt {
			b.readers.Add(1)
			q.blocks = append(q.blocks, b)
		}
	}
	if len(q.blocks) == 0 {
		return nil
	}
	return q
}

// Rewrite writes srcs into one long-term block and opens it. Once it
// returns, Replaces is true for every source.
func (s *Store) Rewrite(ctx context.Context, srcs []*tsdb.Block) (Meta, error) {
	m, err := writeBlock(ctx, s.dir, srcs, s.resolutions)
	if err != nil {
		return m, err
	}
	b, err := openBlock(filepath.Join(s.dir, m.ULID.String()))
	if err != nil {
		return m, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return m, errors.Join(errors.New("long-term store is closed"), b.close())
	}
	s.blocks = append(s.blocks, b)
	s.sortBlocks()
	return m, nil
}

// Size is the bytes of every block on disk.
func (s *Store) Size() int64 {
	size, _ := fileutil.DirSize(s.dir)
	return size
}

// DeleteOldest deletes blocks, oldest first, while keep says no: retention.
// keep is given each block's meta and the bytes the blocks after it (and
// it) take. A deleted block's files go once no querier reads it.
func (s *Store) DeleteOldest(keep func(m Meta, bytesFromHere int64) bool) {
	s.mu.Lock()
	sizes := make([]int64, len(s.blocks))
	var total int64
	for i := len(s.blocks) - 1; i >= 0; i-- {
		sz, _ := fileutil.DirSize(s.blocks[i].dir)
		total += sz
		sizes[i] = total
	}
	n := 0
	for n < len(s.blocks) && !keep(s.blocks[n].meta, sizes[n]) {
		n++
	}
	gone := slices.Clone(s.blocks[:n])
	s.blocks = s.blocks[n:]
	s.mu.Unlock()
	for _, b := range gone {
		s.logger.Info("deleting long-term block past retention", "block", b.meta.ULID, "mint", b.meta.MinTime, "maxt", b.meta.MaxTime)
		s.removing.Add(1)
		go s.remove(b)
	}
}

// remove waits for b's readers, then renames it out of sight (so a crash
// leaves no half-deleted block) and deletes it.
func (s *Store) remove(b *block) {
	defer s.removing.Done()
	b.readers.Wait()
	if err := b.close(); err != nil {
		s.logger.Warn("close long-term block", "block", b.meta.ULID, "err", err)
	}
	tmp := b.dir + tmpSuffix
	if err := fileutil.Rename(b.dir, tmp); err != nil {
		s.logger.Error("delete long-term block", "block", b.meta.ULID, "err", err)
		return
	}
	if err := os.RemoveAll(tmp); err != nil {
		s.logger.Error("delete long-term block", "block", b.meta.ULID, "err", err)
	}
}
