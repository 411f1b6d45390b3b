package logs

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Every flush writes one block, so a day at the default flush interval leaves
// hundreds of small files. Compaction merges the small blocks whose lines
// start in the same window into one: fewer files to open and index entries to
// walk, the same chunks byte for byte (queries answer exactly as before).
const (
	compactWindow   = time.Hour
	compactMaxBytes = 64 << 20 // blocks this big are left alone, merged ones stay under it
	markerSuffix    = ".compacting"
)

// Compact merges small blocks of the same window. It is crash-safe: a marker
// naming the sources is made durable before the merged block is renamed into
// place, and Open finishes (or forgets) a compaction a crash interrupted, so
// no line is ever lost or read twice.
func (s *Store) Compact() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	for _, group := range s.compactGroups() {
		if err := s.merge(group); err != nil {
			return err
		}
	}
	return nil
}

// compactGroups returns runs of at least two small blocks per window, each
// under compactMaxBytes in total.
func (s *Store) compactGroups() [][]*block {
	s.mu.RLock()
	byWindow := map[int64][]*block{}
	for _, b := range s.blocks {
		if b.size < compactMaxBytes/2 {
			w := b.minT / int64(compactWindow)
			byWindow[w] = append(byWindow[w], b)
		}
	}
	s.mu.RUnlock()
	var groups [][]*block
	for _, w := range slices.Sorted(maps.Keys(byWindow)) {
		var cur []*block
		var size int64
		for _, b := range byWindow[w] {
			if size+b.size > compactMaxBytes && len(cur) > 0 {
				groups, cur, size = appendGroup(groups, cur), nil, 0
			}
			cur, size = append(cur, b), size+b.size
		}
		groups = appendGroup(groups, cur)
	}
	return groups
}

func appendGroup(groups [][]*block, g []*block) [][]*block {
	if len(g) < 2 {
		return groups
	}
	return append(groups, g)
}

// merge writes the chunks of srcs to one new block, points the streams at it
// and deletes srcs.
func (s *Store) merge(srcs []*block) error {
	pending, old, err := s.chunksOf(srcs)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		return nil
	}
	s.mu.Lock()
	seq := s.nextBlock
	s.nextBlock++
	s.mu.Unlock()
	marker := filepath.Join(s.blockDir(), fmt.Sprintf("%08d%s", seq, markerSuffix))
	names := make([]string, len(srcs))
	for i, b := range srcs {
		names[i] = filepath.Base(b.path)
	}
	if err := writeDurable(marker, []byte(strings.Join(names, "\n"))); err != nil {
		return err
	}
	nb, refs, err := writeBlock(s.blockDir(), seq, pending)
	if err != nil {
		_ = os.Remove(marker)
		return fmt.Errorf("compact log blocks: %w", err)
	}
	for i, c := range pending {
		c.stream.mu.Lock()
		if k := slices.Index(c.stream.chunks, old[i]); k >= 0 {
			c.stream.chunks[k] = refs[i]
		}
		c.stream.mu.Unlock()
	}
	s.mu.Lock()
	s.blocks = append(slices.DeleteFunc(s.blocks, func(b *block) bool { return slices.Contains(srcs, b) }), nb)
	s.mu.Unlock()
	for _, b := range srcs {
		// Queries still reading a source keep its open file.
		if err := os.Remove(b.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete compacted log block: %w", err)
		}
	}
	if err := syncDir(s.blockDir()); err != nil {
		return err
	}
	s.logger.Info("compacted log blocks", "blocks", len(srcs), "into", filepath.Base(nb.path), "bytes", nb.size)
	return os.Remove(marker)
}

// chunksOf reads every chunk held by srcs, grouped by tenant and stream as a
// block index wants them, with the refs they replace.
func (s *Store) chunksOf(srcs []*block) ([]blockChunk, []*chunkRef, error) {
	s.mu.RLock()
	names := slices.Sorted(maps.Keys(s.tenants))
	s.mu.RUnlock()
	var pending []blockChunk
	var old []*chunkRef
	for _, n := range names {
		for _, st := range s.tenant(n).all() {
			st.mu.Lock()
			refs := slices.Clone(st.chunks)
			st.mu.Unlock()
			for _, c := range refs {
				if c.blk == nil || !slices.Contains(srcs, c.blk) {
					continue
				}
				data, err := c.bytes()
				if err != nil {
					return nil, nil, fmt.Errorf("compact log blocks: %w", err)
				}
				pending = append(pending, blockChunk{tenant: n, stream: st, ref: &chunkRef{meta: c.meta, data: data}})
				old = append(old, c)
			}
		}
	}
	return pending, old, nil
}

// finishCompactions runs before the blocks load: a marker whose merged block
// exists means the sources may still be there (delete them); without the block
// the merge never completed (the sources are whole: forget the marker).
func finishCompactions(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list blocks: %w", err)
	}
	for _, e := range ents {
		seq, ok := strings.CutSuffix(e.Name(), markerSuffix)
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(seq); err != nil {
			continue
		}
		marker := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, seq+blockSuffix)); err == nil {
			b, err := os.ReadFile(marker)
			if err != nil {
				return fmt.Errorf("read compaction marker: %w", err)
			}
			for _, name := range strings.Split(string(b), "\n") {
				if name == "" || strings.ContainsAny(name, `/\`) {
					continue
				}
				if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("delete compacted log block: %w", err)
				}
			}
		}
		if err := os.Remove(marker); err != nil {
			return fmt.Errorf("remove compaction marker: %w", err)
		}
	}
	return syncDir(dir)
}

// writeDurable writes b to path and makes the file and its name durable.
func writeDurable(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return syncDir(filepath.Dir(path))
}
