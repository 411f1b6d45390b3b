package logs

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

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
	"github.com/vispyr/vispyr/internal/wal"
)

// activeWindow is how long a stream that got no line still counts as active
// against MaxStreamsPerTenant (Loki's chunk_idle_period).
const activeWindow = 30 * time.Minute

// Store is the log store. It implements pipeline.Logs and Querier.
type Store struct {
	cfg    Config
	dir    string
	logger *slog.Logger
	wal    *wal.WAL
	now    func() time.Time
	m      *metrics

	// ingest is read-locked by every push (WAL append, then head append) and
	// write-locked by a flush while it cuts the WAL and seals every head, so each
	// line is either in the sealed chunks or in a later WAL segment.
	ingest sync.RWMutex

	mu        sync.RWMutex // guards tenants and blocks
	tenants   map[string]*tenant
	blocks    []*block
	nextBlock int

	headBytes atomic.Int64 // line bytes not yet in a block
	flushReq  chan struct{}
	flushMu   sync.Mutex
	stop      chan struct{}
	done      sync.WaitGroup
}

var (
	_ pipeline.Logs = (*Store)(nil)
	_ Querier       = (*Store)(nil)
)

// Open opens the store in dir (creating it), loads its blocks, replays its WAL and
// starts flushing and retention in the background.
func Open(dir string, cfg Config, logger *slog.Logger, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, dir: dir, logger: logger, now: time.Now, tenants: map[string]*tenant{},
		flushReq: make(chan struct{}, 1), stop: make(chan struct{})}
	s.m = newMetrics(o.reg, s)
	if err := os.MkdirAll(s.blockDir(), 0o755); err != nil {
		return nil, fmt.Errorf("create log store dir: %w", err)
	}
	if err := finishCompactions(s.blockDir()); err != nil {
		return nil, err
	}
	if err := s.loadBlocks(); err != nil {
		return nil, err
	}
	w, err := wal.Open(s.walDir(), wal.Options{Name: "logs", Logger: logger, Registerer: o.reg})
	if err != nil {
		return nil, fmt.Errorf("open logs wal: %w", err)
	}
	if err := w.Replay(s.replay); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("replay logs wal: %w", err)
	}
	s.wal = w
	s.done.Add(1)
	go s.loop()
	return s, nil
}

func (s *Store) walDir() string   { return filepath.Join(s.dir, "wal") }
func (s *Store) blockDir() string { return filepath.Join(s.dir, "blocks") }

func (s *Store) loadBlocks() error {
	seqs, err := listBlocks(s.blockDir())
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		b, streams, err := openBlock(filepath.Join(s.blockDir(), fmt.Sprintf("%08d%s", seq, blockSuffix)))
		if err != nil {
			// A block is renamed into place only once complete, so this is damage
			// on disk: keep serving the rest.
			s.logger.Error("skipping unreadable log block", "err", err)
			continue
		}
		for _, ls := range streams {
			st := s.tenant(ls.tenant).getOrCreate(ls.labels)
			st.mu.Lock()
			for _, r := range ls.refs {
				if st.empty() {
					st.minT, st.maxT = r.meta.MinT, r.meta.MaxT
				}
				st.minT, st.maxT = min(st.minT, r.meta.MinT), max(st.maxT, r.meta.MaxT)
				st.chunks = append(st.chunks, r)
			}
			st.mu.Unlock()
		}
		s.blocks = append(s.blocks, b)
		s.nextBlock = seq + 1
	}
	return nil
}

// replay re-applies one WAL record: lines acknowledged but not yet in a block.
func (s *Store) replay(_ int, rec []byte) error {
	tenant, streams, err := decodeRecord(bytes.Clone(rec)) // rec is only valid during the call
	if err != nil {
		return err
	}
	s.apply(tenant, streams)
	return nil
}

func (s *Store) tenant(name string) *tenant {
	s.mu.RLock()
	t := s.tenants[name]
	s.mu.RUnlock()
	if t != nil {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.tenants[name]; t == nil {
		t = newTenant()
		s.tenants[name] = t
	}
	return t
}

// ConsumeLogs validates req, applies Loki's ingest defaults, writes the accepted
// lines to the WAL (returning once fsync'd) and makes them queryable.
func (s *Store) ConsumeLogs(ctx context.Context, req *logpush.Request) error {
	tenantName := pipeline.Tenant(ctx)
	if s.headBytes.Load() > 2*s.cfg.MaxHeadBytes {
		s.requestFlush()
		s.m.overload.Inc()
		return fmt.Errorf("log store: %d bytes waiting to be flushed: %w", s.headBytes.Load(), pipeline.ErrOverloaded)
	}
	t := s.tenant(tenantName)
	v := validator{cfg: &s.cfg, now: s.now()}
	streams, err := s.prepare(tenantName, t, &v, req.Streams)
	if err != nil {
		s.m.refused.Add(float64(v.rejected))
		return err
	}
	if len(streams) > 0 {
		s.ingest.RLock()
		err := s.wal.Append(ctx, encodeRecord(nil, tenantName, streams))
		if err == nil {
			s.apply(tenantName, streams)
		}
		s.ingest.RUnlock()
		if err != nil {
			return fmt.Errorf("append logs wal: %w", err)
		}
		for _, st := range streams {
			s.m.lines.Add(float64(len(st.Entries)))
		}
		if s.headBytes.Load() > s.cfg.MaxHeadBytes {
			s.requestFlush()
		}
	}
	if v.rejected == 0 {
		return nil
	}
	s.m.refused.Add(float64(v.rejected))
	msg := errors.New(strings.Join(v.errs, "\n"))
	if len(streams) == 0 {
		return pipeline.Invalid(msg)
	}
	return &pipeline.PartialError{Rejected: int64(v.rejected), Err: msg}
}

// prepare returns the acceptable streams of a push with service_name and
// detected_level added; entries of one label set are merged into one stream.
// A push refused only for the stream limit answers ErrOverloaded (429), as Loki.
func (s *Store) prepare(tenantName string, t *tenant, v *validator, in []Stream) ([]Stream, error) {
	out := make([]Stream, 0, len(in))
	byLabels := map[uint64]int{}
	newStreams := 0
	active := -1
	for i := range in {
		st := &in[i]
		if !v.stream(st) {
			continue
		}
		ls := withServiceName(st.Labels)
		entries := st.Entries[:0]
		for j := range st.Entries {
			e := st.Entries[j]
			if !v.entry(ls, &e) {
				continue
			}
			withDetectedLevel(ls, &e)
			entries = append(entries, e)
		}
		if len(entries) == 0 {
			continue
		}
		h := ls.Hash()
		if k, ok := byLabels[h]; ok && labels.Equal(out[k].Labels, ls) {
			out[k].Entries = append(out[k].Entries, entries...)
			continue
		}
		if existing := t.lookup(ls); existing == nil || !s.isActive(existing) {
			if active < 0 {
				active = s.activeStreams(t)
			}
			if active+newStreams >= s.cfg.MaxStreamsPerTenant {
				v.fail(len(entries), "Maximum active stream limit exceeded when trying to create stream %s, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: '%s'", ls, tenantName)
				continue
			}
			newStreams++
		}
		byLabels[h] = len(out)
		out = append(out, Stream{Labels: ls, Entries: entries})
	}
	if len(out) == 0 && v.rejected > 0 && strings.HasPrefix(v.errs[0], "Maximum active stream limit") {
		return nil, fmt.Errorf("%s: %w", v.errs[0], pipeline.ErrOverloaded)
	}
	return out, nil
}

func (s *Store) isActive(st *stream) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lastPush > s.now().Add(-activeWindow).UnixNano()
}

func (s *Store) activeStreams(t *tenant) int {
	n := 0
	for _, st := range t.all() {
		if s.isActive(st) {
			n++
		}
	}
	return n
}

// apply adds accepted streams to the head and feeds live tails.
func (s *Store) apply(tenantName string, streams []Stream) {
	t := s.tenant(tenantName)
	now := s.now().UnixNano()
	for _, in := range streams {
		st := t.getOrCreate(in.Labels)
		s.headBytes.Add(int64(st.append(in.Entries, s.cfg.ChunkBytes, now)))
		t.notifyTails(in)
	}
}

func (s *Store) requestFlush() {
	select {
	case s.flushReq <- struct{}{}:
	default:
	}
}

// loop flushes on FlushInterval or when the head grows past MaxHeadBytes, and
// applies retention every minute.
func (s *Store) loop() {
	defer s.done.Done()
	flush := time.NewTicker(s.cfg.FlushInterval)
	defer flush.Stop()
	retention := time.NewTicker(time.Minute)
	defer retention.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-flush.C:
		case <-s.flushReq:
		case <-retention.C:
			s.applyRetention()
			if err := s.Compact(); err != nil {
				s.logger.Error("compact log blocks", "err", err)
			}
			continue
		}
		if err := s.Flush(); err != nil {
			s.logger.Error("flush log store", "err", err)
		}
	}
}

// Flush seals every head and writes all unflushed chunks to a new block, then
// drops the WAL segments that held them.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.ingest.Lock()
	seq, err := s.wal.Cut()
	if err != nil {
		s.ingest.Unlock()
		return fmt.Errorf("cut logs wal: %w", err)
	}
	pending := s.sealAll()
	flushed := s.headBytes.Swap(0)
	s.ingest.Unlock()
	if len(pending) > 0 {
		if err := s.writeBlock(pending); err != nil {
			s.headBytes.Add(flushed)
			return err
		}
	}
	if err := s.wal.TruncateBefore(seq); err != nil {
		return fmt.Errorf("truncate logs wal: %w", err)
	}
	return nil
}

// sealAll seals every head and returns all in-memory chunks, grouped by tenant
// and stream.
func (s *Store) sealAll() []blockChunk {
	s.mu.RLock()
	names := make([]string, 0, len(s.tenants))
	for n := range s.tenants {
		names = append(names, n)
	}
	s.mu.RUnlock()
	slices.Sort(names)
	var out []blockChunk
	for _, n := range names {
		for _, st := range s.tenant(n).all() {
			st.mu.Lock()
			st.sealLocked()
			for _, c := range st.chunks {
				if c.blk == nil {
					out = append(out, blockChunk{tenant: n, stream: st, ref: c})
				}
			}
			st.mu.Unlock()
		}
	}
	return out
}

func (s *Store) writeBlock(pending []blockChunk) error {
	s.mu.Lock()
	seq := s.nextBlock
	s.nextBlock++
	s.mu.Unlock()
	b, refs, err := writeBlock(s.blockDir(), seq, pending)
	if err != nil {
		return err
	}
	for i, c := range pending {
		c.stream.mu.Lock()
		if k := slices.Index(c.stream.chunks, c.ref); k >= 0 {
			c.stream.chunks[k] = refs[i]
		}
		c.stream.mu.Unlock()
	}
	s.mu.Lock()
	s.blocks = append(s.blocks, b)
	s.mu.Unlock()
	return nil
}

// applyRetention deletes blocks whose newest line is past Retention, then the
// oldest blocks while the blocks take more than MaxDiskBytes.
func (s *Store) applyRetention() {
	cutoff := s.now().Add(-s.cfg.Retention).UnixNano()
	s.mu.Lock()
	slices.SortStableFunc(s.blocks, func(a, b *block) int { return cmpInt(a.maxT, b.maxT) })
	var total int64
	for _, b := range s.blocks {
		total += b.size
	}
	var drop []*block
	for len(s.blocks) > 0 {
		b := s.blocks[0]
		if b.maxT >= cutoff && (s.cfg.MaxDiskBytes == 0 || total <= s.cfg.MaxDiskBytes) {
			break
		}
		drop = append(drop, b)
		total -= b.size
		s.blocks = s.blocks[1:]
	}
	tenants := make([]*tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		tenants = append(tenants, t)
	}
	s.mu.Unlock()
	if len(drop) == 0 {
		return
	}
	for _, t := range tenants {
		t.mu.Lock()
		for _, ss := range t.streams {
			for _, st := range slices.Clone(ss) {
				if st.dropBlocks(drop) {
					t.removeLocked(st)
				}
			}
		}
		t.mu.Unlock()
	}
	for _, b := range drop {
		// Queries still reading the block keep its open file; the descriptor
		// closes when the last reference goes.
		if err := os.Remove(b.path); err != nil {
			s.logger.Error("delete log block", "block", b.path, "err", err)
		}
		s.logger.Info("deleted log block by retention", "block", filepath.Base(b.path), "bytes", b.size)
	}
}

// dropBlocks removes the chunks held by blocks; it reports whether the stream is
// left without data.
func (st *stream) dropBlocks(drop []*block) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.chunks = slices.DeleteFunc(st.chunks, func(c *chunkRef) bool { return c.blk != nil && slices.Contains(drop, c.blk) })
	if st.empty() {
		return true
	}
	st.minT, st.maxT = 0, 0
	first := true
	for _, c := range st.chunks {
		if first {
			st.minT, st.maxT, first = c.meta.MinT, c.meta.MaxT, false
		}
		st.minT, st.maxT = min(st.minT, c.meta.MinT), max(st.maxT, c.meta.MaxT)
	}
	for _, e := range st.head {
		if first {
			st.minT, st.maxT, first = e.Timestamp, e.Timestamp, false
		}
		st.minT, st.maxT = min(st.minT, e.Timestamp), max(st.maxT, e.Timestamp)
	}
	return false
}

// DiskBytes returns the bytes the store's blocks and WAL take on disk.
func (s *Store) DiskBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.wal.Size()
	for _, b := range s.blocks {
		n += b.size
	}
	return n
}

// Close flushes the head to a block and stops the store.
func (s *Store) Close() error {
	close(s.stop)
	s.done.Wait()
	err := s.Flush()
	return errors.Join(err, s.wal.Close())
}
