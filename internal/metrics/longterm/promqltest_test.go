package longterm

import (
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/teststorage"
)

// excludedScripts are the promqltest scripts whose semantics the long-term
// tier does not keep, with the reason.
var excludedScripts = map[string]string{
	"testdata/start_timestamps.test": "start timestamps (created timestamps) are not kept: the long-term format stores timestamps and float values only",
}

// Prometheus's own PromQL acceptance scripts, answered from long-term
// blocks: every sample a script loads is rewritten into a long-term block
// before its first evaluation, and the queries read that block. Series with
// native histograms stay in a TSDB block, as Vispyr keeps them in the TSDB.
func TestPromQLScriptsOverLongTermBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("the PromQL acceptance scripts take a while")
	}
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	var rewritten rewriteStats
	promqltest.RunBuiltinTestsWithStorage(skipRun{t}, engine, func(tb testing.TB) storage.Storage {
		return &longTermStorage{TestStorage: promqltest.NewBuiltinTestStorage(tb), tb: tb, stats: &rewritten}
	})
	t.Logf("long-term blocks answered for %d float series (%d samples); %d series with native histograms from TSDB blocks",
		rewritten.floatSeries, rewritten.floatSamples, rewritten.histSeries)
	if rewritten.floatSamples == 0 || rewritten.floatSeries < 2*rewritten.histSeries {
		t.Fatal("the scripts' float series did not go through long-term blocks")
	}
}

type rewriteStats struct{ floatSeries, floatSamples, histSeries int }

// skipRun skips the excluded scripts.
type skipRun struct{ *testing.T }

func (s skipRun) Run(name string, f func(*testing.T)) bool {
	if reason, ok := excludedScripts[name]; ok {
		return s.T.Run(name, func(t *testing.T) { t.Skip(reason) })
	}
	return s.T.Run(name, f)
}

// longTermStorage takes a script's writes into a TSDB and answers its
// queries from a long-term block of everything written so far (and a TSDB
// block of the series with native histograms), rewritten when written to.
type longTermStorage struct {
	*teststorage.TestStorage
	tb      testing.TB
	dirty   bool
	rewrite int
	lt      *Store
	hist    *tsdb.Block
	stats   *rewriteStats // summed over rewrites
}

func (s *longTermStorage) Appender(ctx context.Context) storage.Appender {
	s.dirty = true
	return s.TestStorage.Appender(ctx)
}

func (s *longTermStorage) AppenderV2(ctx context.Context) storage.AppenderV2 {
	s.dirty = true
	return s.TestStorage.AppenderV2(ctx)
}

func (s *longTermStorage) Querier(mint, maxt int64) (storage.Querier, error) {
	if err := s.rewriteIfWritten(); err != nil {
		return nil, err
	}
	qs := []storage.Querier{storage.NoopQuerier()}
	if q := s.lt.Querier(mint, maxt); q != nil {
		qs = append(qs, q)
	}
	if s.hist != nil {
		q, err := tsdb.NewBlockQuerier(s.hist, mint, maxt)
		if err != nil {
			return nil, err
		}
		qs = append(qs, q)
	}
	return storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge), nil
}

func (s *longTermStorage) ChunkQuerier(int64, int64) (storage.ChunkQuerier, error) {
	s.tb.Fatal("the scripts query samples, not chunks")
	return nil, nil
}

// rewriteIfWritten rewrites every sample written into a TSDB block of the
// float series, which it rewrites into a long-term block, and a TSDB block
// of the series holding native histograms.
func (s *longTermStorage) rewriteIfWritten() error {
	if !s.dirty && s.lt != nil {
		return nil
	}
	s.dirty = false
	s.rewrite++
	dir := filepath.Join(s.tb.TempDir(), strconv.Itoa(s.rewrite))
	q, err := s.TestStorage.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return err
	}
	defer q.Close()
	var floats, hists []storage.Series
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".*"))
	var it chunkenc.Iterator
	for ss.Next() {
		series := ss.At()
		it = series.Iterator(it)
		withHist := false
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			withHist = withHist || vt != chunkenc.ValFloat
		}
		if withHist {
			hists = append(hists, series)
		} else {
			floats = append(floats, series)
		}
	}
	if err := ss.Err(); err != nil {
		return err
	}
	if s.lt != nil {
		_ = s.lt.Close()
	}
	if s.lt, err = Open(filepath.Join(dir, "longterm"), nil); err != nil {
		return err
	}
	s.tb.Cleanup(func() { _ = s.lt.Close() })
	if len(floats) > 0 {
		b, err := createBlock(s.tb, floats, filepath.Join(dir, "floats"))
		if err != nil {
			return err
		}
		m, err := s.lt.Rewrite(context.Background(), []*tsdb.Block{b})
		if err != nil {
			return err
		}
		s.stats.floatSeries += int(m.NumSeries)
		s.stats.floatSamples += int(m.NumSamples)
	}
	s.hist = nil
	if len(hists) > 0 {
		s.stats.histSeries += len(hists)
		s.hist, err = createBlock(s.tb, hists, filepath.Join(dir, "histograms"))
	}
	return err
}

func createBlock(tb testing.TB, series []storage.Series, dir string) (*tsdb.Block, error) {
	path, err := tsdb.CreateBlock(series, dir, math.MaxInt64/4, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	b, err := tsdb.OpenBlock(nil, path, nil, nil)
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b, nil
}
