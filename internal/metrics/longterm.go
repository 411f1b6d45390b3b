package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/fileutil"

	"github.com/vispyr/vispyr/internal/metrics/longterm"
)

// The long-term tier (metrics.longterm): TSDB blocks older than
// LongTerm.After are rewritten, a UTC day at a time, into long-term blocks
// in <tenant's TSDB dir>/longterm, which take well under half the disk;
// the TSDB then drops them at its next block reload (BlocksToDelete), so a
// crash between the two leaves the data in both tiers, which queries merge,
// never in neither. Queries read both tiers merged (tenantquery.go).
const (
	longTermDir      = "longterm"
	longTermDay      = int64(24 * time.Hour / time.Millisecond)
	longTermInterval = time.Minute
)

// longTermResolutions are the downsampled resolutions of
// metrics.longterm.downsample, as Thanos keeps.
var longTermResolutions = []time.Duration{5 * time.Minute, time.Hour}

// blockReloadInterval is how often the TSDB drops the blocks the long-term
// tier replaced (tsdb's own default; tests shorten it).
var blockReloadInterval = time.Minute

// openTSDB opens a tenant's TSDB in dir and, when the tier is on, its
// long-term store, whose blocks' sources the TSDB deletes.
func (s *Storage) openTSDB(dir string, logger *slog.Logger, reg prometheus.Registerer) (*tsdb.DB, *longterm.Store, error) {
	opts := s.tsdbOpts()
	var lt *longterm.Store
	if s.cfg.LongTerm.Enabled {
		var err error
		var res []time.Duration
		if s.cfg.LongTerm.Downsample {
			res = longTermResolutions
		}
		if lt, err = longterm.Open(filepath.Join(dir, longTermDir), logger.With("tier", "longterm"), res...); err != nil {
			return nil, nil, err
		}
		var db atomic.Pointer[tsdb.DB]
		opts.BlocksToDelete = func(blocks []*tsdb.Block) map[ulid.ULID]struct{} {
			del := map[ulid.ULID]struct{}{}
			if d := db.Load(); d != nil { // retention, from the first reload after Open
				del = tsdb.DefaultBlocksToDelete(d)(blocks)
			}
			for _, b := range blocks {
				if lt.Replaces(b.Meta().ULID) {
					del[b.Meta().ULID] = struct{}{}
				}
			}
			return del
		}
		d, err := tsdb.Open(dir, logger, reg, opts, nil)
		if err != nil {
			return nil, nil, errors.Join(err, lt.Close())
		}
		db.Store(d)
		return d, lt, nil
	}
	db, err := tsdb.Open(dir, logger, reg, opts, nil)
	return db, nil, err
}

// runLongTerm moves every tenant's old blocks into the long-term tier and
// applies retention to it, once a minute, until ctx ends.
func (s *Storage) runLongTerm(ctx context.Context) {
	defer close(s.longTermDone)
	tick := time.NewTicker(longTermInterval)
	defer tick.Stop()
	for {
		for _, t := range s.allTenants() {
			if t.lt == nil {
				continue
			}
			s.moveOld(ctx, t)
			s.longTermRetention(t)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// newest is the newest timestamp the tenant holds, the reference of
// "older than" as in Prometheus's retention.
func newest(db *tsdb.DB) int64 {
	n := db.Head().MaxTime()
	for _, b := range db.Blocks() {
		n = max(n, b.Meta().MaxTime)
	}
	return n
}

// moveOld rewrites the tenant's TSDB blocks of every UTC day that ended
// LongTerm.After before its newest sample, one long-term block per day.
// Blocks with native histograms stay in the TSDB: the long-term format
// keeps floats only.
func (s *Storage) moveOld(ctx context.Context, t *tenantDB) {
	cutoff := newest(t.db) - s.cfg.LongTerm.After.Milliseconds()
	days := map[int64][]*tsdb.Block{}
	for _, b := range t.db.Blocks() {
		m := b.Meta()
		day := m.MinTime - ((m.MinTime%longTermDay)+longTermDay)%longTermDay
		if m.Stats.NumHistogramSamples > 0 || t.lt.Replaces(m.ULID) || m.MaxTime > cutoff || day+longTermDay > cutoff {
			continue
		}
		days[day] = append(days[day], b)
	}
	keys := make([]int64, 0, len(days))
	for d := range days {
		keys = append(keys, d)
	}
	slices.Sort(keys)
	for _, day := range keys {
		if ctx.Err() != nil {
			return
		}
		if err := s.moveDay(ctx, t, days[day]); err != nil {
			s.logger.Error("move metrics blocks to the long-term tier", "tenant", t.id, "day", time.UnixMilli(day).UTC().Format(time.DateOnly), "err", err)
		}
	}
}

func (s *Storage) moveDay(ctx context.Context, t *tenantDB, blocks []*tsdb.Block) error {
	// No compaction may merge these blocks while they are rewritten, or the
	// merged block would outlive them holding the same samples again.
	t.db.DisableCompactions()
	defer t.db.EnableCompactions()
	start := time.Now()
	m, err := t.lt.Rewrite(ctx, blocks)
	if err != nil {
		return err
	}
	var bytes int64
	for _, b := range blocks {
		bytes += b.Size()
	}
	s.logger.Info("moved metrics blocks to the long-term tier", "tenant", t.id, "blocks", len(blocks),
		"series", m.NumSeries, "samples", m.NumSamples, "tsdb_bytes", bytes, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// longTermRetention applies metrics.retention and retention_size_bytes to
// the long-term blocks, which are all older than the TSDB's: the oldest go
// first, counting the TSDB's bytes in the size.
func (s *Storage) longTermRetention(t *tenantDB) {
	oldest := newest(t.db) - s.cfg.Retention.Milliseconds()
	var tsdbBytes int64
	if s.cfg.RetentionSize > 0 {
		all, _ := fileutil.DirSize(t.db.Dir())
		tsdbBytes = all - t.lt.Size()
	}
	t.lt.DeleteOldest(func(m longterm.Meta, bytesFromHere int64) bool {
		if m.MaxTime < oldest {
			return false
		}
		return s.cfg.RetentionSize <= 0 || tsdbBytes+bytesFromHere <= s.cfg.RetentionSize
	})
}

// querier is the tenant's TSDB and long-term blocks over [mint, maxt].
// While a WAL of the tenant replays in the background, its answers carry a
// warning (replay.go).
func (t *tenantDB) querier(mint, maxt int64) (storage.Querier, error) {
	warning := t.replayWarning()
	q, err := t.db.Querier(mint, maxt)
	if err != nil {
		return q, err
	}
	qs := []storage.Querier{q}
	if t.own != nil {
		oq, err := t.own.head.Querier(mint, maxt)
		if err != nil {
			return nil, errors.Join(err, q.Close())
		}
		qs = append(qs, oq)
	}
	if t.lt != nil {
		if lq := t.lt.Querier(mint, maxt); lq != nil {
			qs = append(qs, lq)
		}
	}
	if len(qs) > 1 {
		q = storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge)
	}
	if warning != nil {
		q = warnQuerier{q, warning}
	}
	return q, nil
}

// chunkQuerier is querier for chunks (remote read).
func (t *tenantDB) chunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, err := t.db.ChunkQuerier(mint, maxt)
	if err != nil {
		return q, err
	}
	qs := []storage.ChunkQuerier{q}
	if t.own != nil {
		oq, err := t.own.head.ChunkQuerier(mint, maxt)
		if err != nil {
			return nil, errors.Join(err, q.Close())
		}
		qs = append(qs, oq)
	}
	if t.lt != nil {
		if lq := t.lt.ChunkQuerier(mint, maxt); lq != nil {
			qs = append(qs, lq)
		}
	}
	if len(qs) == 1 {
		return q, nil
	}
	return storage.NewMergeChunkQuerier(qs, nil, storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge)), nil
}

// minTime is the oldest timestamp the tenant holds in either tier.
func (t *tenantDB) minTime() int64 {
	if t.lt != nil {
		if metas := t.lt.Metas(); len(metas) > 0 {
			return metas[0].MinTime
		}
	}
	if blocks := t.db.Blocks(); len(blocks) > 0 {
		return blocks[0].Meta().MinTime
	}
	return t.db.Head().MinTime()
}

// close closes the tenant's TSDB and long-term store.
func (t *tenantDB) close() error {
	err := errors.Join(t.own.close(), t.db.Close())
	if t.lt != nil {
		err = errors.Join(err, t.lt.Close())
	}
	if err != nil {
		return fmt.Errorf("close tenant %q metrics: %w", t.id, err)
	}
	return nil
}
