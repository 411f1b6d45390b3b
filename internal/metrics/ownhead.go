package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/metrics/head"
)

// With metrics.head: vispyr (the default), a tenant's float samples go to
// Vispyr's own head (internal/metrics/head) instead of the TSDB's: a fifth
// of the heap a series. Histogram samples still go to the TSDB's head, and so do float
// samples the own head refuses as out of order when an out-of-order window
// is configured (the TSDB's head keeps those); queries merge both heads and
// the blocks. The exemplars of float samples are kept beside the own head,
// in Prometheus's exemplar storage, and written into its WAL with their
// samples, from which they come back at start-up, as the TSDB keeps those
// of its head (not those of a WAL replayed into blocks in the background:
// blocks hold no exemplars, there as with the TSDB).
//
// Its oldest chunk range is written into a block in the tenant's TSDB once
// it spans one and a half ranges (runOwnHeads), as the TSDB does with its
// own head, and the TSDB's retention and compaction take it from there.
//
// Appends through the V1 storage.Appender (the span-metrics generator's)
// take the same route (ownheadv1.go).
//
// At start-up its WAL replays with the TSDB's: before ready when small,
// else moved aside with the TSDB's head files and written into blocks in
// the background (replay.go). A WAL left by a run with the own head when
// metrics.head is no longer vispyr goes the same way.
//
// Where it differs from the TSDB's head: it keeps no series metadata
// (Prometheus's API reads metadata from the scrape targets), start
// timestamps are ignored (as the TSDB, configured as Vispyr configures it,
// ignores them), its chunk files are re-encoded from the WAL at start-up
// rather than read back (so a graceful stop does not shorten the next
// start-up's replay), and the TSDB status API counts its series
// (headstats.go) but not its chunks.
const ownHeadDir = "vispyr_head"

// ownHead is a tenant's own head and the exemplars of its series.
type ownHead struct {
	head      *head.Head
	exemplars tsdb.ExemplarStorage
	// floatsInDB spans the float samples sent to the TSDB's head beside
	// it (those the own head refused), and what that head held at open:
	// where the TSDB's head may hold floats, a series may have samples in
	// both heads, and fastrate must not read chunks there.
	floatsInDB timeSpan
}

// timeSpan is a span of timestamps that only widens; empty at first.
type timeSpan struct{ mint, maxt atomic.Int64 }

func (s *timeSpan) init() {
	s.mint.Store(math.MaxInt64)
	s.maxt.Store(math.MinInt64)
}

func (s *timeSpan) widen(mint, maxt int64) {
	for old := s.mint.Load(); mint < old && !s.mint.CompareAndSwap(old, mint); old = s.mint.Load() {
	}
	for old := s.maxt.Load(); maxt > old && !s.maxt.CompareAndSwap(old, maxt); old = s.maxt.Load() {
	}
}

// floatsInDBHead reports whether floats sent to the TSDB's head may still
// be in it (not yet in its blocks) within [mint, maxt].
func (o *ownHead) floatsInDBHead(db *tsdb.DB, mint, maxt int64) bool {
	fmin, fmax := o.floatsInDB.mint.Load(), o.floatsInDB.maxt.Load()
	return fmin <= maxt && mint <= fmax && fmax >= db.Head().MinTime()
}

// ownRef marks a series ref as the own head's, so refs callers cache (the
// remote-write series cache) go back to the head that gave them.
const ownRef = storage.SeriesRef(1) << 62

// openOwnHead opens the tenant's own head in dir/vispyr_head if the config
// asks for one; nil otherwise. reg (the default tenant's only, as with its
// TSDB) takes its WAL's metrics and its series count.
func (s *Storage) openOwnHead(dir string, logger *slog.Logger, reg prometheus.Registerer) (*ownHead, error) {
	if s.cfg.Head != config.HeadVispyr {
		return nil, nil
	}
	ex, err := newGrowingExemplars(s.cfg.MaxExemplars, s.cfg.OutOfOrderWindow.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("own head exemplars: %w", err)
	}
	hd := filepath.Join(dir, ownHeadDir)
	h, err := head.New(head.Options{
		ChunkRange: s.tsdbOpts().MinBlockDuration,
		ChunkDir:   filepath.Join(hd, "chunks_head"),
		WALDir:     filepath.Join(hd, "wal"),
		Logger:     logger.With("head", "vispyr"),
		Registerer: reg,
		// The TSDB's head holds the histograms (and out-of-order
		// floats) of the same ranges until it compacts them itself. The
		// hint goes only when the compactor merges an own head's block
		// with one of the TSDB's, and Vispyr's TSDB writes 2 h blocks
		// only (MaxBlockDuration), so it merges blocks only where they
		// overlap: ranges the TSDB's head has compacted.
		OutOfOrderBlocks: true,
		OnWriteError: func(err error) {
			logger.Error("writing a closed chunk of the own head failed; its samples stay in the WAL", "err", err)
		},
		// As the TSDB's head at replay: refusals (out of order, or
		// duplicates of a commit the storage had refused the same way)
		// drop the exemplar.
		OnExemplar: func(l labels.Labels, e exemplar.Exemplar) { _ = ex.AddExemplar(l, e) },
	})
	if err != nil {
		return nil, fmt.Errorf("open own head: %w", err)
	}
	// prometheus_tsdb_head_series and _samples_appended_total count the
	// TSDB's head beside it, which holds only histograms then: dashboards
	// add the two.
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vispyr_metrics_head_series",
		Help: "Series in Vispyr's own metrics head (metrics.head: vispyr); prometheus_tsdb_head_series counts those of the TSDB's head beside it.",
	}, func() float64 { return float64(h.NumSeries()) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "vispyr_metrics_head_samples_appended_total",
		Help: "Samples appended to Vispyr's own metrics head (metrics.head: vispyr); prometheus_tsdb_head_samples_appended_total counts those of the TSDB's head beside it.",
	}, func() float64 { return float64(h.SamplesAppended()) })
	o := &ownHead{head: h, exemplars: ex}
	o.floatsInDB.init()
	return o, nil
}

// firstExemplars is how many exemplars the own head has room for at first.
const firstExemplars = 4096

// growingExemplars is Prometheus's circular exemplar storage, started
// small and doubled, up to metrics.max_exemplars, each time it fills: the
// TSDB's takes all of its room at once (12.7 MB at the default 100,000),
// which a store without exemplars would hold for nothing. Like the TSDB's,
// it takes exemplars out of order within the out-of-order window.
type growingExemplars struct {
	tsdb.ExemplarStorage
	resize func(int64) int

	mu                  sync.Mutex
	capacity, max, adds int64
}

func newGrowingExemplars(max, oooWindow int64) (*growingExemplars, error) {
	capacity := min(max, firstExemplars)
	ex, err := tsdb.NewCircularExemplarStorage(capacity, tsdb.NewExemplarMetrics(nil), oooWindow)
	if err != nil {
		return nil, err
	}
	resizer, ok := ex.(interface{ Resize(int64) int })
	if !ok {
		return nil, fmt.Errorf("exemplar storage %T cannot be resized", ex)
	}
	return &growingExemplars{ExemplarStorage: ex, resize: resizer.Resize, capacity: capacity, max: max}, nil
}

// AddExemplar adds e, doubling the room first when it is full.
func (g *growingExemplars) AddExemplar(l labels.Labels, e exemplar.Exemplar) error {
	g.mu.Lock()
	if g.adds >= g.capacity && g.capacity < g.max {
		g.capacity = min(2*g.capacity, g.max)
		g.resize(g.capacity)
	}
	g.adds++
	g.mu.Unlock()
	return g.ExemplarStorage.AddExemplar(l, e)
}

func (o *ownHead) close() error {
	if o == nil {
		return nil
	}
	return o.head.Close()
}

// appenderV2 is the tenant's appender: the TSDB's, or one that sends float
// samples to the own head.
func (t *tenantDB) appenderV2(ctx context.Context) storage.AppenderV2 {
	if t.own == nil {
		return t.db.AppenderV2(ctx)
	}
	return t.split(ctx)
}

// split is the appender of a tenant with an own head.
func (t *tenantDB) split(ctx context.Context) *splitAppender {
	return &splitAppender{db: t.db.AppenderV2(ctx), own: t.own.head.Appender(ctx), ownHead: t.own.head, exemplarsTo: t.own.exemplars, oooToDB: t.oooWindow > 0,
		floatsInDB: &t.own.floatsInDB}
}

// appendable is the tenant as a storage.AppendableV2, for the receivers
// that take one.
func (t *tenantDB) appendable() storage.AppendableV2 {
	if t.own == nil {
		return t.db
	}
	return tenantAppendable{t}
}

type tenantAppendable struct{ t *tenantDB }

func (a tenantAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return a.t.appenderV2(ctx)
}

// splitAppender sends float samples and their exemplars to the own head,
// the rest to the TSDB, and commits both. The own head's appender logs the
// exemplars in its WAL with the samples; its exemplar storage takes them
// once that commit returns.
type splitAppender struct {
	db          storage.AppenderV2
	own         storage.Appender
	ownHead     *head.Head
	exemplarsTo tsdb.ExemplarStorage
	oooToDB     bool // the TSDB takes out-of-order samples the own head refuses (unless RejectOutOfOrder)
	floatsInDB  *timeSpan
	exemplars   []ownExemplars
}

// ownExemplars waits for Commit: exemplars are kept with their samples.
type ownExemplars struct {
	ls labels.Labels
	es []exemplar.Exemplar
}

var _ storage.ExemplarAppenderV2 = (*splitAppender)(nil)

func (a *splitAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return a.db.Append(dbRef(ref), ls, st, t, v, h, fh, opts)
	}
	got, err := a.own.Append(ownRefOf(ref), ls, t, v)
	if a.oooToDB && !opts.RejectOutOfOrder && (errors.Is(err, storage.ErrOutOfOrderSample) || errors.Is(err, storage.ErrOutOfBounds)) {
		if ls.IsEmpty() {
			// Appended by ref alone (the remote-write path's known series):
			// the TSDB's head finds the series by labels, which the own head
			// has. Without them the TSDB refuses, and the caller tries again
			// with the labels it decodes, for every sample of a backlog.
			ls = a.ownHead.SeriesLabels(uint32(ownRefOf(ref)))
		}
		a.floatsInDB.widen(t, t) // before it can be read there
		return a.db.Append(0, ls, st, t, v, nil, nil, opts)
	}
	if err != nil {
		return 0, err
	}
	return got | ownRef, a.keepExemplars(got, ls, opts.Exemplars)
}

// AppendExemplars sends es to the head of the series: the own head's for a
// ref of it or, without a ref, for labels it holds.
func (a *splitAppender) AppendExemplars(ref storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	if (ref != 0 && ref&ownRef == 0) || (ref == 0 && !a.ownHead.HasSeries(ls.WithoutEmpty())) {
		if ea, ok := a.db.(storage.ExemplarAppenderV2); ok {
			return ea.AppendExemplars(ref, ls, es)
		}
	}
	return ref, a.keepExemplars(ownRefOf(ref), ls, es)
}

// keepExemplars checks es against the exemplars kept, as the TSDB's
// appender does (a duplicate is dropped quietly, any other refusal reported
// in a storage.AppendPartialError), and hands the rest to the own head's
// appender for its WAL and copies them for Commit (the caller may reuse es).
func (a *splitAppender) keepExemplars(ref storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) error {
	if len(es) == 0 {
		return nil
	}
	kept := ownExemplars{ls: ls.Copy()}
	var errs []storage.ExemplarError
	for i, e := range es {
		e.Labels = e.Labels.WithoutEmpty()
		if err := a.exemplarsTo.ValidateExemplar(kept.ls, e); err != nil {
			if !errors.Is(err, storage.ErrDuplicateExemplar) && !errors.Is(err, storage.ErrExemplarsDisabled) {
				errs = append(errs, storage.ExemplarError{Index: i, Err: err})
			}
			continue
		}
		if _, err := a.own.AppendExemplar(ref, kept.ls, e); err != nil {
			errs = append(errs, storage.ExemplarError{Index: i, Err: err})
			continue
		}
		kept.es = append(kept.es, e)
	}
	if len(kept.es) > 0 {
		a.exemplars = append(a.exemplars, kept)
	}
	if len(errs) > 0 {
		return &storage.AppendPartialError{ExemplarErrors: errs}
	}
	return nil
}

// Commit commits the own head first: its WAL holds the samples and
// exemplars when it returns. Exemplars that are duplicates or out of order
// by then are dropped, as the TSDB drops them (at replay too).
func (a *splitAppender) Commit() error {
	err := a.own.Commit()
	if err != nil {
		_ = a.db.Rollback()
		return err
	}
	for _, e := range a.exemplars {
		for _, ex := range e.es {
			_ = a.exemplarsTo.AddExemplar(e.ls, ex)
		}
	}
	a.exemplars = nil
	return a.db.Commit()
}

func (a *splitAppender) Rollback() error {
	a.exemplars = nil
	return errors.Join(a.own.Rollback(), a.db.Rollback())
}

// dbRef is ref for the TSDB: 0 if it is the own head's.
func dbRef(ref storage.SeriesRef) storage.SeriesRef {
	if ref&ownRef != 0 {
		return 0
	}
	return ref
}

// ownRefOf is ref for the own head: 0 if it is the TSDB's.
func ownRefOf(ref storage.SeriesRef) storage.SeriesRef {
	if ref&ownRef == 0 {
		return 0
	}
	return ref &^ ownRef
}

// mergedExemplars answers from the TSDB's exemplars and the own head's.
type mergedExemplars []storage.ExemplarQuerier

func (m mergedExemplars) Select(start, end int64, ms ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	var out []exemplar.QueryResult
	for _, q := range m {
		res, err := q.Select(start, end, ms...)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// ownHeadInterval is how often own heads are checked for a chunk range to
// write into a block, as the TSDB checks its head each minute, and give back
// the chunk slots their series outgrew (tests shorten it): series that
// start together outgrow their slots together, and the memory should come
// back within a scrape or two.
var ownHeadInterval = 10 * time.Second

// runOwnHeads writes the oldest chunk range of every tenant's own head into
// a block in the tenant's TSDB once the head spans one and a half ranges,
// as the TSDB does with its head, until ctx ends.
func (s *Storage) runOwnHeads(ctx context.Context) {
	defer close(s.ownHeadsDone)
	c, err := tsdb.NewLeveledCompactor(ctx, nil, s.logger, []int64{s.tsdbOpts().MinBlockDuration}, chunkenc.NewPool(), nil)
	if err != nil {
		s.logger.Error("own heads: no compactor; they will not be written into blocks", "err", err)
		return
	}
	tick := time.NewTicker(ownHeadInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, t := range s.allTenants() {
			if t.own != nil {
				if err := t.compactOwnHead(ctx, c, s.logger); err != nil && ctx.Err() == nil {
					s.logger.Error("writing the own head into blocks failed; it keeps its samples and tries again", "tenant", t.id, "err", err)
				}
			}
		}
	}
}

// compactOwnHead writes the own head's due chunk ranges into blocks, each
// loaded by the TSDB before the head drops it, then checkpoints the own
// head's WAL and gives back chunk memory.
func (t *tenantDB) compactOwnHead(ctx context.Context, c *tsdb.LeveledCompactor, logger *slog.Logger) error {
	loaded := func(id ulid.ULID) error {
		// The TSDB reloads its blocks after compacting its out-of-order
		// head (what it does each minute anyway when it has one): the
		// block is queried at once and the head may drop its range,
		// rather than after the next periodic reload, up to a minute
		// later for each of a backlog's ranges.
		if err := t.db.CompactOOOHead(ctx); err != nil {
			logger.Warn("compact the out-of-order head to load the own head's block", "tenant", t.id, "err", err)
		}
		return waitLoaded(ctx, t.db, []ulid.ULID{id})
	}
	truncatedTo := int64(math.MinInt64)
	for {
		start := time.Now()
		id, compacted, err := t.own.head.CompactOldest(ctx, c, t.db.Dir(), loaded)
		if err != nil {
			return err
		}
		if !compacted {
			break
		}
		truncatedTo = max(truncatedTo, blockMaxTime(t.db, id))
		logger.Info("own head range written into a block", "tenant", t.id, "block", id, "took", time.Since(start).Round(time.Millisecond))
	}
	if truncatedTo != math.MinInt64 {
		if err := t.own.head.TruncateWAL(ctx, truncatedTo); err != nil {
			return err
		}
	}
	t.own.head.Compact()
	return nil
}

// blockMaxTime is the end of the loaded block made of id, MinInt64 if none.
func blockMaxTime(db *tsdb.DB, id ulid.ULID) int64 {
	for _, b := range db.Blocks() {
		if slices.Contains(b.Meta().Compaction.Sources, id) {
			return b.Meta().MaxTime
		}
	}
	return math.MinInt64
}
