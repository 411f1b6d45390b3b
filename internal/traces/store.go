package traces

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traces/backend"
	"github.com/vispyr/vispyr/internal/traces/block"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
	"github.com/vispyr/vispyr/internal/wal"
)

// Store is the trace store. It is safe for concurrent use.
type Store struct {
	cfg    Config
	logger *slog.Logger
	be     backend.Raw
	wal    *wal.WAL

	// appendMu is held shared by writers from WAL append to head insert, and
	// exclusively by a cut, so that a cut's WAL boundary matches the head it swaps out.
	appendMu sync.RWMutex

	mu       sync.RWMutex // guards the three fields below
	head     *head
	flushing []*head                    // cut, being written to blocks; still queried
	blocks   map[string][]*block.Reader // by tenant dir name

	indexes *block.IndexCache // bounds the blocks' indexes and postings held in memory

	flushMu sync.Mutex // one flusher at a time (Run, or Flush from tests/shutdown)
	maintMu sync.Mutex // one compaction or retention pass at a time

	memBytes atomic.Int64 // head + flushing
	cutNow   chan struct{}
	closed   atomic.Bool

	m metrics

	tenantSpans func(tenant string) int // per-tenant max spans per trace; nil: cfg's
}

type metrics struct {
	spans          prometheus.Counter
	overloaded     prometheus.Counter
	refusedSpans   prometheus.Counter
	truncatedAttrs prometheus.Counter
	blocksCut      prometheus.Counter
	compactions    prometheus.Counter
	deleted        prometheus.Counter
	headBytes      prometheus.GaugeFunc
	blocks         prometheus.GaugeFunc
}

// Open opens (or creates) the store in dataDir: the WAL in dataDir/traces/wal and,
// for the local backend, blocks in dataDir/traces/blocks. It replays the WAL into
// the head before returning, logging progress.
func Open(cfg Config, dataDir string, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	root := filepath.Join(dataDir, "traces")
	ctx := context.Background()
	be, err := backend.New(ctx, cfg.Storage, filepath.Join(root, "blocks"))
	if err != nil {
		return nil, fmt.Errorf("open block storage: %w", err)
	}
	s := &Store{cfg: cfg, logger: logger, be: be, head: newHead(), blocks: map[string][]*block.Reader{},
		indexes: block.NewIndexCache(cfg.IndexCacheBytes), cutNow: make(chan struct{}, 1)}
	s.initMetrics(reg)
	if err := s.loadBlocks(ctx); err != nil {
		return nil, err
	}
	w, err := wal.Open(filepath.Join(root, "wal"), wal.Options{Name: "traces", SegmentSize: cfg.WALSegmentSize, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("open trace wal: %w", err)
	}
	spans := 0
	err = w.Replay(func(_ int, p []byte) error {
		tenant, rows, err := decodeWALRecord(p)
		if err != nil {
			return err
		}
		spans += len(rows)
		s.memBytes.Add(s.head.add(tenant, rows, traceOrder(rows)))
		return nil
	})
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("replay trace wal: %w", err)
	}
	s.wal = w
	logger.Info("trace store opened", "replayed_spans", spans, "blocks", s.blockCount(), "backend", cfg.Storage.Backend)
	return s, nil
}

func (s *Store) initMetrics(reg prometheus.Registerer) {
	s.m = metrics{
		spans:      prometheus.NewCounter(prometheus.CounterOpts{Name: "vispyr_traces_spans_ingested_total", Help: "Spans made durable by the trace store."}),
		overloaded: prometheus.NewCounter(prometheus.CounterOpts{Name: "vispyr_traces_overloaded_total", Help: "Requests refused because the head was over its memory budget."}),
		refusedSpans: prometheus.NewCounter(prometheus.CounterOpts{Name: "vispyr_traces_refused_spans_total",
			Help: "Spans refused because their trace was over max_spans_per_trace."}),
		truncatedAttrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "vispyr_traces_truncated_attributes_total",
			Help: "String attribute values cut to max_attribute_bytes."}),
		blocksCut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "vispyr_traces_blocks_cut_total", Help: "Blocks written from the head."}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{Name: "vispyr_traces_compactions_total", Help: "Compactions finished."}),
		deleted:     prometheus.NewCounter(prometheus.CounterOpts{Name: "vispyr_traces_blocks_deleted_total", Help: "Blocks deleted by retention."}),
		headBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vispyr_traces_head_bytes", Help: "Estimated memory of spans not yet in blocks."},
			func() float64 { return float64(s.memBytes.Load()) }),
		blocks: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vispyr_traces_blocks", Help: "Blocks in the store."},
			func() float64 { return float64(s.blockCount()) }),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.m.spans, s.m.overloaded, s.m.refusedSpans, s.m.truncatedAttrs, s.m.blocksCut, s.m.compactions, s.m.deleted, s.m.headBytes, s.m.blocks} {
			_ = reg.Register(c)
		}
	}
}

// tenantDir maps a tenant ID to a safe object-name component.
func tenantDir(tenant string) string {
	d := url.PathEscape(tenant)
	return strings.ReplaceAll(d, ".", "%2E")
}

// loadBlocks opens every complete block and removes the leftovers of blocks whose
// write a crash interrupted (objects without a meta.json).
func (s *Store) loadBlocks(ctx context.Context) error {
	names, err := s.be.List(ctx, "")
	if err != nil {
		return fmt.Errorf("list blocks: %w", err)
	}
	dirs := map[string][]string{}
	for _, n := range names {
		if i := strings.LastIndexByte(n, '/'); i > 0 {
			dirs[n[:i]] = append(dirs[n[:i]], n[i+1:])
		}
	}
	for dir, files := range dirs {
		parts := strings.Split(dir, "/")
		if len(parts) != 2 {
			continue
		}
		if !slices.Contains(files, block.MetaName) {
			s.logger.Warn("removing incomplete trace block", "block", dir)
			for _, f := range files {
				if err := s.be.Delete(ctx, dir+"/"+f); err != nil {
					return err
				}
			}
			continue
		}
		r, err := block.Open(ctx, s.be, s.indexes, parts[0], parts[1])
		if err != nil {
			return fmt.Errorf("open block %s: %w", dir, err)
		}
		s.blocks[parts[0]] = append(s.blocks[parts[0]], r)
	}
	for t := range s.blocks {
		sortBlocks(s.blocks[t])
	}
	// Upgrade once every block is known, so that the rewritten blocks' split marks
	// see all the others.
	for t, bs := range s.blocks {
		for i, r := range bs {
			if r.Meta.Format == block.FormatVersion {
				continue
			}
			nb, err := s.upgradeBlock(ctx, r)
			if err != nil {
				return err
			}
			s.blocks[t][i] = nb
		}
		sortBlocks(s.blocks[t])
	}
	return nil
}

func sortBlocks(bs []*block.Reader) {
	sort.Slice(bs, func(i, j int) bool { return bs[i].Meta.MinStart < bs[j].Meta.MinStart })
}

func (s *Store) blockCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, bs := range s.blocks {
		n += len(bs)
	}
	return n
}

// ConsumeTraces implements pipeline.Traces: it returns nil only once the spans are
// fsync'd in the WAL, and they are visible to queries from then on.
func (s *Store) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if err := s.admit(); err != nil {
		return err
	}
	tenant := pipeline.Tenant(ctx)
	max := s.spansPerTrace(tenant)
	rows, order, refused, first, err := s.rowsOf(tenant, td, max)
	if err != nil {
		return pipeline.Invalid(err)
	}
	if err := s.append(ctx, tenant, rows, order); err != nil {
		return err
	}
	if refused > 0 {
		s.m.refusedSpans.Add(float64(refused))
		// Tempo's reason and wording, in spans where Tempo counts bytes.
		return &pipeline.PartialError{Rejected: refused, Err: fmt.Errorf(
			"TRACE_TOO_LARGE: max size of trace (%d spans, max_spans_per_trace) exceeded while adding %d spans to trace %s for tenant %s",
			max, refused, hex.EncodeToString(first[:]), tenant)}
	}
	return nil
}

// ConsumeRows implements pipeline.Rows: it stores rows, a request decoded
// straight into rows (spanrow.FromProto), as ConsumeTraces stores the
// request decoded into pdata, and keeps them in the head. A batch that one of
// the store's limits would change (an attribute value over
// max_attribute_bytes, a trace over max_spans_per_trace) is refused with
// pipeline.ErrWantTraces: the limits cut pdata, so the caller hands it over
// through ConsumeTraces. Both are rare, and cheap to rule out on rows.
func (s *Store) ConsumeRows(ctx context.Context, rows []spanrow.Span) error {
	if err := s.admit(); err != nil {
		return err
	}
	if hasBlobOver(rows, s.cfg.MaxAttributeBytes) {
		return pipeline.ErrWantTraces
	}
	tenant := pipeline.Tenant(ctx)
	order := traceOrder(rows)
	s.mu.RLock()
	over := overSpanLimit(s.head, tenant, rows, order, s.spansPerTrace(tenant))
	s.mu.RUnlock()
	if over {
		return pipeline.ErrWantTraces
	}
	return s.append(ctx, tenant, rows, order)
}

// admit refuses writes to a closed store, and to a head over its memory
// budget (asking for a cut, which frees it).
func (s *Store) admit() error {
	if s.closed.Load() {
		return errors.New("trace store closed")
	}
	if s.memBytes.Load() > s.cfg.MaxHeadBytes {
		s.m.overloaded.Inc()
		s.requestCut()
		return fmt.Errorf("trace head over its %d byte budget: %w", s.cfg.MaxHeadBytes, pipeline.ErrOverloaded)
	}
	return nil
}

// rowsOf turns td into rows grouped by trace (traceOrder), first applying the
// limits to td itself, so that what the consumers after the store see is what
// it kept: string attributes cut to max_attribute_bytes, and spans past max
// per trace removed (counted in refused, first naming the first such trace).
// Both are rare, so the rows are built first and checked cheaply; td is
// walked and the rows built again only when a limit applies.
func (s *Store) rowsOf(tenant string, td ptrace.Traces, max int) (rows []spanrow.Span, order []int32, refused int64, first [16]byte, err error) {
	if rows, err = spanrow.FromTraces(td, nil); err != nil {
		return nil, nil, 0, first, err
	}
	order = traceOrder(rows)
	again := false
	if hasBlobOver(rows, s.cfg.MaxAttributeBytes) {
		if n := truncateAttributes(td, s.cfg.MaxAttributeBytes); n > 0 {
			s.m.truncatedAttrs.Add(float64(n))
			again = true
		}
	}
	s.mu.RLock()
	if overSpanLimit(s.head, tenant, rows, order, max) {
		refused, first = limitSpansPerTrace(s.head, tenant, td, max)
		again = true
	}
	s.mu.RUnlock()
	if again {
		if rows, err = spanrow.FromTraces(td, nil); err != nil {
			return nil, nil, 0, first, err
		}
		order = traceOrder(rows)
	}
	return rows, order, refused, first, nil
}

// SetTenantSpansPerTrace gives each tenant its own spans-per-trace limit;
// f returning 0 keeps traces.max_spans_per_trace. Call before serving.
func (s *Store) SetTenantSpansPerTrace(f func(tenant string) int) { s.tenantSpans = f }

func (s *Store) spansPerTrace(tenant string) int {
	if s.tenantSpans != nil {
		if n := s.tenantSpans(tenant); n > 0 {
			return n
		}
	}
	return s.cfg.MaxSpansPerTrace
}

// append makes rows (grouped by order) durable in the WAL, then visible in the head.
func (s *Store) append(ctx context.Context, tenant string, rows []spanrow.Span, order []int32) error {
	if len(rows) == 0 {
		return nil
	}
	rec := encodeWALRecord(tenant, rows)
	s.appendMu.RLock()
	defer s.appendMu.RUnlock()
	err := s.wal.Append(ctx, rec) // copies rec
	putBuf(rec)
	if err != nil {
		return fmt.Errorf("append trace wal: %w", err)
	}
	s.mu.RLock()
	h := s.head
	s.mu.RUnlock()
	s.memBytes.Add(h.add(tenant, rows, order))
	s.m.spans.Add(float64(len(rows)))
	if n, _ := h.size(); n >= s.cfg.MaxBlockSpans {
		s.requestCut()
	}
	return nil
}

func (s *Store) requestCut() {
	select {
	case s.cutNow <- struct{}{}:
	default:
	}
}

// Run cuts the head into blocks, compacts and applies retention until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	tick := time.NewTicker(min(time.Second, s.cfg.BlockCutInterval))
	defer tick.Stop()
	lastMaint := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.cutNow:
			s.cutAndFlush(ctx)
		case <-tick.C:
			s.mu.RLock()
			h := s.head
			s.mu.RUnlock()
			if n, _ := h.size(); n > 0 && h.age() >= s.cfg.BlockCutInterval {
				s.cutAndFlush(ctx)
			} else {
				s.flushPending(ctx) // retry earlier failures
			}
			if time.Since(lastMaint) >= s.cfg.CompactionInterval {
				lastMaint = time.Now()
				s.applyRetention(ctx, time.Now())
				s.compact(ctx)
			}
		}
	}
}

// cutAndFlush swaps in an empty head and writes the old one to blocks.
func (s *Store) cutAndFlush(ctx context.Context) {
	if err := s.cut(); err != nil {
		s.logger.Error("cut trace head", "err", err)
		return
	}
	s.flushPending(ctx)
}

func (s *Store) cut() error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.RLock()
	h := s.head
	s.mu.RUnlock()
	if n, _ := h.size(); n == 0 {
		return nil
	}
	seg, err := s.wal.Cut()
	if err != nil {
		return err
	}
	h.walSeg = seg
	s.mu.Lock()
	s.head = newHead()
	s.flushing = append(s.flushing, h)
	s.mu.Unlock()
	return nil
}

// flushPending writes cut heads to blocks, oldest first, and truncates the WAL
// behind each one written. A failure leaves the head queued (and queryable) for retry.
func (s *Store) flushPending(ctx context.Context) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	for {
		s.mu.RLock()
		if len(s.flushing) == 0 {
			s.mu.RUnlock()
			return
		}
		h := s.flushing[0]
		s.mu.RUnlock()
		if err := s.flush(ctx, h); err != nil {
			s.logger.Error("write trace block; will retry", "err", err)
			return
		}
		s.mu.Lock()
		// Delete rather than reslice: s.flushing[1:] of a one-element slice still
		// points at the written head and would keep all its spans in memory.
		s.flushing = slices.Delete(s.flushing, 0, 1)
		s.mu.Unlock()
		_, bytes := h.size()
		s.memBytes.Add(-bytes)
		if err := s.wal.TruncateBefore(h.walSeg); err != nil {
			s.logger.Error("truncate trace wal", "err", err)
		}
	}
}

func (s *Store) flush(ctx context.Context, h *head) error {
	for _, tenant := range h.tenantNames() {
		start := time.Now()
		dir := tenantDir(tenant)
		w := block.NewWriter(dir, newBlockID(), 0)
		w.ExpectBytes(h.tenantSpans(tenant) * expectedBytesPerSpan)
		w.Shared = s.sharedTest(tenant, h)
		// Every span was acknowledged before now, so a later end is a wrong clock.
		w.LatestEnd = time.Now().Add(s.cfg.IngestionSlack).UnixNano()
		// One trace at a time: the head is already sorted into traces, so the block
		// costs only its encoded form on top of the head, not a second copy of it.
		if err := h.eachSorted(tenant, w.AddTracePtrs); err != nil {
			return fmt.Errorf("write block from head: %w", err)
		}
		if w.Spans() == 0 {
			continue
		}
		r, err := s.finishBlock(ctx, w)
		if err != nil {
			return err
		}
		s.m.blocksCut.Inc()
		s.logger.Info("cut trace block", "tenant", tenant, "block", r.Meta.ID, "spans", r.Meta.Spans,
			"traces", r.Meta.Traces, "bytes", r.Meta.DataBytes, "duration", time.Since(start))
	}
	return nil
}

// expectedBytesPerSpan is about what a span takes in a block's Parquet file
// (BenchmarkBytesPerSpan: 28 with typical HTTP attributes).
const expectedBytesPerSpan = 32

// finishBlock stores a block and makes it visible to queries.
func (s *Store) finishBlock(ctx context.Context, w *block.Writer) (*block.Reader, error) {
	meta, err := w.Finish(ctx, s.be)
	if err != nil {
		return nil, err
	}
	r, err := s.openWritten(ctx, w, meta)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.blocks[meta.Tenant] = append(s.blocks[meta.Tenant], r)
	sortBlocks(s.blocks[meta.Tenant])
	s.mu.Unlock()
	return r, nil
}

// openWritten opens a block just written by w, with the index w built and its
// Parquet footer read: the first lookup after a cut or compaction should not pay for
// them. (Its tags are read by the first search that needs them.)
func (s *Store) openWritten(ctx context.Context, w *block.Writer, meta *block.Meta) (*block.Reader, error) {
	r, err := block.OpenMeta(ctx, s.be, s.indexes, meta)
	if err != nil {
		return nil, err
	}
	r.SeedIndex(w.Index())
	if err := r.Warm(ctx); err != nil {
		s.logger.Warn("read new trace block's indexes; will retry on use", "block", meta.ID, "err", err)
	}
	return r, nil
}

// newBlockID is time-ordered (hex nanoseconds) with a random suffix.
func newBlockID() string {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%016x%s", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
}

// Flush cuts the head and writes it to blocks now (tests, shutdown).
func (s *Store) Flush(ctx context.Context) error {
	if err := s.cut(); err != nil {
		return err
	}
	s.flushPending(ctx)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.flushing) > 0 {
		return errors.New("flush trace head: block write failed (see log)")
	}
	return nil
}

// Close stops accepting writes and closes the WAL. Spans still in the head stay in the
// WAL and are replayed on the next Open.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	return s.wal.Close()
}
