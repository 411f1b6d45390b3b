package profiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/wal"
)

// Store is the profile store. Append is durable when it returns; queries see data as
// soon as Append returns.
type Store struct {
	cfg       Config
	dir       string
	blocksDir string
	logger    *slog.Logger
	m         *storeMetrics
	wal       *wal.WAL
	now       func() time.Time

	// appendMu is held shared by Append across its WAL write and head insert, and
	// exclusively by a head cut, so no record can land in a WAL segment that is
	// truncated after its head was flushed without it.
	appendMu sync.RWMutex

	mu        sync.RWMutex // guards everything below
	head      *table
	headStart time.Time
	flushing  []flushItem // cut heads not yet in a block, oldest first
	blocks    []*block    // ascending MinT

	cache   *blockCache
	pending atomic.Int64
	cutReq  chan struct{}
	cutMu   sync.Mutex // one cut at a time
	closed  atomic.Bool
}

// Open opens (or creates) the store under dataDir/profiles (wal/ and blocks/),
// replaying its WAL into the head.
func Open(cfg Config, dataDir string, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dataDir = filepath.Join(dataDir, "profiles")
	s := &Store{
		cfg:       cfg,
		dir:       dataDir,
		blocksDir: filepath.Join(dataDir, "blocks"),
		logger:    logger,
		now:       time.Now,
		head:      newTable(),
		headStart: time.Now(),
		cache:     newBlockCache(cfg.BlockCacheSize),
		cutReq:    make(chan struct{}, 1),
	}
	s.m = newStoreMetrics(reg, s.headSize)
	if err := os.MkdirAll(s.blocksDir, 0o755); err != nil {
		return nil, fmt.Errorf("create blocks dir: %w", err)
	}
	walSeq, err := s.openBlocks()
	if err != nil {
		return nil, err
	}
	s.wal, err = wal.Open(filepath.Join(dataDir, "wal"), wal.Options{Name: "profiles", Logger: logger, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("open profiles wal: %w", err)
	}
	if err := s.replay(walSeq); err != nil {
		_ = s.wal.Close()
		return nil, err
	}
	s.updateDiskMetrics()
	return s, nil
}

// openBlocks loads every block's meta and returns the WAL segment below which all
// data is already in blocks.
func (s *Store) openBlocks() (int, error) {
	ents, err := os.ReadDir(s.blocksDir)
	if err != nil {
		return 0, fmt.Errorf("list blocks: %w", err)
	}
	walSeq := 0
	for _, e := range ents {
		path := filepath.Join(s.blocksDir, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			// A flush that crashed half-way: its data is still in the WAL.
			if err := os.RemoveAll(path); err != nil {
				return 0, fmt.Errorf("remove partial block: %w", err)
			}
			continue
		}
		b, err := openBlock(path)
		if err != nil {
			return 0, err
		}
		s.blocks = append(s.blocks, b)
		walSeq = max(walSeq, b.meta.WALSeq)
	}
	slices.SortFunc(s.blocks, func(a, b *block) int { return cmpI64(a.meta.MinT, b.meta.MinT) })
	s.logger.Info("opened profile blocks", "blocks", len(s.blocks))
	return walSeq, nil
}

func (s *Store) replay(flushedSeq int) error {
	// Segments below flushedSeq were flushed into a block before a crash that
	// came before truncation.
	if err := s.wal.TruncateBefore(flushedSeq); err != nil {
		return fmt.Errorf("remove flushed wal segments: %w", err)
	}
	start := time.Now()
	n := 0
	err := s.wal.Replay(func(_ int, rec []byte) error {
		b, err := DecodeBatch(bytes.Clone(rec)) // rec is only valid during the call
		if err != nil {
			s.logger.Warn("skipping undecodable profiles wal record", "err", err)
			return nil
		}
		withTenant(b)
		s.head.append(b)
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay wal: %w", err)
	}
	if n > 0 {
		s.logger.Info("replayed profiles wal", "batches", n, "samples", s.head.samples, "duration", time.Since(start))
		// The head is as old as its oldest WAL segment, so frequent restarts do not
		// postpone the cut (and let the WAL grow) forever.
		if segs, err := s.wal.Segments(); err == nil && len(segs) > 0 && segs[0].ModTime.Before(s.headStart) {
			s.headStart = segs[0].ModTime
		}
	}
	return nil
}

// Append stores b durably. It returns pipeline.ErrOverloaded when too much data is
// waiting for the disk, and an invalid-input error when b is inconsistent.
func (s *Store) Append(ctx context.Context, b *Batch) error {
	if err := b.Validate(); err != nil {
		return pipeline.Invalid(err)
	}
	if len(b.Profiles) == 0 {
		return nil
	}
	if s.closed.Load() {
		return errClosed
	}
	if b.Tenant == "" {
		b.Tenant = pipeline.Tenant(ctx)
	}
	rec := EncodeBatch(nil, b)
	size := int64(len(rec))
	if s.pending.Add(size) > s.cfg.MaxPendingBytes {
		s.pending.Add(-size)
		s.m.rejected.Inc()
		return pipeline.ErrOverloaded
	}
	defer s.pending.Add(-size)
	withTenant(b)

	s.appendMu.RLock()
	defer s.appendMu.RUnlock()
	if err := s.wal.Append(ctx, rec); err != nil {
		return fmt.Errorf("write profiles wal: %w", err)
	}
	s.mu.Lock()
	s.head.append(b)
	full := s.head.samples >= s.cfg.MaxHeadSamples
	s.mu.Unlock()
	if full {
		select {
		case s.cutReq <- struct{}{}:
		default:
		}
	}
	s.m.profiles.Add(float64(len(b.Profiles)))
	s.m.samples.Add(float64(b.NumSamples()))
	return nil
}

// ConsumeProfiles is Append: the store is the pipeline's profile consumer.
func (s *Store) ConsumeProfiles(ctx context.Context, b *Batch) error { return s.Append(ctx, b) }

var _ pipeline.Profiles = (*Store)(nil)

// withTenant adds the hidden tenant label to every profile.
func withTenant(b *Batch) {
	for i := range b.Profiles {
		p := &b.Profiles[i]
		lb := labels.NewBuilder(p.Labels)
		lb.Set(labelTenant, b.Tenant)
		p.Labels = lb.Labels()
	}
}

// Run cuts the head into blocks and applies retention until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	tick := time.NewTicker(min(s.cfg.BlockDuration/4, 10*time.Second))
	defer tick.Stop()
	retention := time.NewTicker(time.Minute)
	defer retention.Stop()
	s.applyRetention()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.cutReq:
			s.cutAndLog()
		case <-tick.C:
			s.mu.RLock()
			due := (!s.head.empty() && s.now().Sub(s.headStart) >= s.cfg.BlockDuration) || len(s.flushing) > 0
			s.mu.RUnlock()
			if due {
				s.cutAndLog()
			}
		case <-retention.C:
			s.applyRetention()
		}
	}
}

func (s *Store) cutAndLog() {
	if err := s.CutHead(); err != nil {
		s.logger.Error("flush profiles head", "err", err)
	}
}

// flushItem is a cut head waiting to become a block; WAL segments below seq hold
// its data until then.
type flushItem struct {
	t   *table
	seq int
}

// CutHead writes the current head as a block and starts a new one. The head stays
// queryable (from memory) until its block is on disk. A head whose block could not
// be written (disk full) stays in memory and in the WAL, and is retried first.
func (s *Store) CutHead() error {
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	if err := s.swapHead(); err != nil {
		return err
	}
	return s.flushPending()
}

func (s *Store) swapHead() error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.RLock()
	empty := s.head.empty()
	s.mu.RUnlock()
	if empty {
		return nil
	}
	seq, err := s.wal.Cut()
	if err != nil {
		return fmt.Errorf("cut wal: %w", err)
	}
	s.mu.Lock()
	s.flushing = append(s.flushing, flushItem{t: s.head, seq: seq})
	s.head, s.headStart = newTable(), s.now()
	s.mu.Unlock()
	return nil
}

// flushPending writes cut heads oldest first, truncating the WAL after each, and
// stops at the first failure so no WAL segment is dropped before its block exists.
func (s *Store) flushPending() error {
	for {
		s.mu.RLock()
		if len(s.flushing) == 0 {
			s.mu.RUnlock()
			return nil
		}
		item := s.flushing[0]
		s.mu.RUnlock()

		start := time.Now()
		name := fmt.Sprintf("%019d-%08d", item.t.minT, item.seq)
		b, err := writeBlock(s.blocksDir, name, item.t, item.seq)
		if err != nil {
			return fmt.Errorf("write block: %w", err)
		}
		s.mu.Lock()
		s.flushing = s.flushing[1:]
		s.blocks = append(s.blocks, b)
		slices.SortFunc(s.blocks, func(a, b *block) int { return cmpI64(a.meta.MinT, b.meta.MinT) })
		s.mu.Unlock()
		s.cache.put(b.dir, &table{names: item.t.names, nodes: item.t.nodes})

		if err := s.wal.TruncateBefore(item.seq); err != nil {
			return fmt.Errorf("truncate wal: %w", err)
		}
		s.m.blocksWritten.Inc()
		s.logger.Info("flushed profiles head", "block", name, "series", len(b.meta.Series),
			"profiles", b.meta.Profiles, "bytes", b.size, "duration", time.Since(start))
		s.updateDiskMetrics()
	}
}

// applyRetention deletes blocks past the retention time, then the oldest blocks
// while the store is larger than MaxDiskBytes.
func (s *Store) applyRetention() {
	cutoff := s.now().Add(-s.cfg.Retention).UnixNano()
	var drop []*block
	s.mu.Lock()
	total := s.wal.Size()
	for _, b := range s.blocks {
		total += b.size
	}
	keep := s.blocks[:0]
	for _, b := range s.blocks {
		switch {
		case b.meta.MaxT < cutoff:
			drop = append(drop, b)
			total -= b.size
		case s.cfg.MaxDiskBytes > 0 && total > s.cfg.MaxDiskBytes:
			drop = append(drop, b)
			total -= b.size
		default:
			keep = append(keep, b)
		}
	}
	s.blocks = keep
	s.mu.Unlock()
	for _, b := range drop {
		s.cache.remove(b.dir)
		if err := os.RemoveAll(b.dir); err != nil {
			s.logger.Error("delete profile block", "block", b.dir, "err", err)
			continue
		}
		s.m.blocksDeleted.Inc()
		s.logger.Info("deleted profile block by retention", "block", filepath.Base(b.dir), "bytes", b.size)
	}
	s.updateDiskMetrics()
}

func (s *Store) headSize() (samples, series int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head.samples, len(s.head.series)
}

// DiskBytes returns the bytes the store holds on disk (blocks and WAL).
func (s *Store) DiskBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.wal.Size()
	for _, b := range s.blocks {
		n += b.size
	}
	return n
}

func (s *Store) updateDiskMetrics() {
	s.m.diskBytes.Set(float64(s.DiskBytes()))
	s.mu.RLock()
	s.m.blocks.Set(float64(len(s.blocks)))
	s.mu.RUnlock()
}

// Close stops accepting data. The WAL already holds everything acknowledged, so
// the head is not flushed: the next Open replays it.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	return s.wal.Close()
}

func cmpI64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// blockCache keeps the most recently used decoded blocks.
type blockCache struct {
	mu    sync.Mutex
	size  int
	order []string
	items map[string]*table
}

func newBlockCache(size int) *blockCache {
	return &blockCache{size: size, items: map[string]*table{}}
}

func (c *blockCache) get(dir string) (*table, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.items[dir]
	if ok {
		c.touch(dir)
	}
	return t, ok
}

func (c *blockCache) touch(dir string) {
	c.order = slices.DeleteFunc(c.order, func(d string) bool { return d == dir })
	c.order = append(c.order, dir)
}

func (c *blockCache) put(dir string, t *table) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[dir] = t
	c.touch(dir)
	for len(c.order) > c.size {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *blockCache) remove(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, dir)
	c.order = slices.DeleteFunc(c.order, func(d string) bool { return d == dir })
}

var errClosed = errors.New("profile store closed")

// DropBlockCache forgets decoded blocks, so the next query reads them from disk
// (for benchmarks and memory pressure).
func (s *Store) DropBlockCache() {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	clear(s.cache.items)
	s.cache.order = nil
}
