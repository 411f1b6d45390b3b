package metrics

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"

	"github.com/vispyr/vispyr/internal/config"
)

// TestOwnHeadServesTheAPI runs the store's write and query tests with
// metrics.head: vispyr: remote write, OTLP with histograms and exemplars,
// the query API's shapes and its refusals of bad input answer as with the
// TSDB's head, and so does the long-term tier over its blocks.
func TestOwnHeadServesTheAPI(t *testing.T) {
	testHead = config.HeadVispyr
	defer func() { testHead = config.HeadPrometheus }()
	for name, test := range map[string]func(*testing.T){
		"OTLPSpanMetricsGetPrometheusNames": TestOTLPSpanMetricsGetPrometheusNames,
		"RemoteWriteAndAlloyAlias":          TestRemoteWriteAndAlloyAlias,
		"RemoteWriteRejectsBadInput":        TestRemoteWriteRejectsBadInput,
		"QueryAPIShapesForGrafana":          TestQueryAPIShapesForGrafana,
		"LongTermTierAnswersAsTheTSDB":      TestLongTermTierAnswersAsTheTSDB,
		"LongTermRetentionDropsOldDays":     TestLongTermRetentionDropsOldDays,
		"LongTermRetentionBySize":           TestLongTermRetentionBySizeGivesTheDiskBack,
	} {
		t.Run(name, test)
	}
}

// TestOwnHeadHoldsFloatsAndKeepsThemAcrossRestarts writes float samples
// through remote write with metrics.head: vispyr and finds them in the own
// head, not the TSDB's, answered by PromQL, and again after a restart (from
// the own head's WAL).
func TestOwnHeadHoldsFloatsAndKeepsThemAcrossRestarts(t *testing.T) {
	open := ownHeadOpener(t, t.TempDir())
	s := open()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	app := s.AppenderV2(context.Background())
	for i := range 50 {
		ls := labels.FromStrings("__name__", "own_head_test", "i", strconv.Itoa(i))
		var ref = uint64(0)
		for j := range 100 {
			r, err := app.Append(0, ls, 0, base.Add(time.Duration(j)*15*time.Second).UnixMilli(), float64(i*j), nil, nil, storage.AOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ref = uint64(r)
		}
		if ref&uint64(ownRef) == 0 {
			t.Fatalf("series %d got ref %x, not the own head's", i, ref)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if n := s.def.db.Head().NumSeries(); n != 0 {
			t.Errorf("%s: the TSDB's head holds %d series; floats belong in the own head", when, n)
		}
		if n := s.def.own.head.NumSeries(); n != 50 {
			t.Errorf("%s: the own head holds %d series, want 50", when, n)
		}
		if got := countOwnTestSamples(t, s); got != 50*100 {
			t.Errorf("%s: %d samples, want %d", when, got, 50*100)
		}
	}
	check("before the restart")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	check("after the restart")
}

// countOwnTestSamples counts the samples of own_head_test the default
// tenant's queries see.
func countOwnTestSamples(t *testing.T, s *Storage) int {
	return countSamplesOf(t, s.DefaultQueryable(), "own_head_test")
}

// ownHeadOpener opens the store in dir with metrics.head: vispyr.
func ownHeadOpener(t *testing.T, dir string) func() *Storage {
	cfg := config.Default()
	cfg.Metrics.Head = config.HeadVispyr
	return func() *Storage {
		s, err := Open(cfg.Metrics, cfg.Limits, dir, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestOwnHeadIsWrittenIntoBlocks fills the own head with five hours of
// samples and finds its oldest ranges written into the TSDB's blocks, the
// own head left with the newest samples only, and every sample answered,
// before and after a restart.
func TestOwnHeadIsWrittenIntoBlocks(t *testing.T) {
	ownHeadInterval = 50 * time.Millisecond
	defer func(was time.Duration) { ownHeadInterval = was }(ownHeadInterval)
	open := ownHeadOpener(t, t.TempDir())
	s := open()
	const series, samples = 20, 5 * 240 // five hours, a sample every 15 s
	start := time.Now().Add(-5 * time.Hour).UnixMilli()
	for j := 0; j < samples; j += 40 {
		app := s.AppenderV2(context.Background())
		for i := range series {
			ls := labels.FromStrings("__name__", "own_head_test", "i", strconv.Itoa(i))
			for k := j; k < j+40; k++ {
				if _, err := app.Append(0, ls, 0, start+int64(k)*15000, float64(k), nil, nil, storage.AOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(s.def.db.Blocks()) == 0 || s.def.own.head.Compactable() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %d blocks, own head still spans [%d, %d]", len(s.def.db.Blocks()), s.def.own.head.MinTime(), s.def.own.head.MaxTime())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if mint := s.def.own.head.MinTime(); mint <= start+2*3600*1000-15000 {
		t.Errorf("own head still starts at %d, %d ms after the first sample", mint, mint-start)
	}
	if got := countOwnTestSamples(t, s); got != series*samples {
		t.Errorf("with blocks written: %d samples, want %d", got, series*samples)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	if got := countOwnTestSamples(t, s); got != series*samples {
		t.Errorf("after a restart: %d samples, want %d", got, series*samples)
	}
}

// TestOwnHeadLeanCacheSurvivesGC writes a series by remote write (its
// cache entry keeps no labels with the own head), has the own head drop it
// as garbage collection does, and writes it again: the stale ref is retried
// with the labels of the request, and the series is back.
func TestOwnHeadLeanCacheSurvivesGC(t *testing.T) {
	testHead = config.HeadVispyr
	defer func() { testHead = config.HeadPrometheus }()
	s, srv := openTest(t, config.Default().Limits)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	if code, body := postWrite(t, srv.URL+"/api/v1/write", "application/x-protobuf", writeRequest(t, 3, 2, base)); code != 204 {
		t.Fatalf("first write: %d %s", code, body)
	}
	later := base.Add(2 * time.Hour)
	if err := s.def.own.head.Truncate(later.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if n := s.def.own.head.NumSeries(); n != 0 {
		t.Fatalf("the own head holds %d series after truncation, want 0", n)
	}
	if code, body := postWrite(t, srv.URL+"/api/v1/write", "application/x-protobuf", writeRequest(t, 3, 2, later)); code != 204 {
		t.Fatalf("write after GC: %d %s", code, body)
	}
	if n := s.def.own.head.NumSeries(); n != 3 {
		t.Fatalf("the own head holds %d series after the second write, want 3", n)
	}
	r := get(t, srv.URL+"/api/v1/query?time="+strconv.FormatInt(later.Unix()+1, 10)+"&query=count(bench_metric)")
	if !strings.Contains(string(r.Data), `"3"`) {
		t.Fatalf("count(bench_metric) after GC = %s", r.Data)
	}
}

// TestOwnHeadExemplarsGrowToTheirLimit adds more exemplars than the own
// head's first room and finds them all kept up to metrics.max_exemplars,
// the newest when over it.
func TestOwnHeadExemplarsGrowToTheirLimit(t *testing.T) {
	const max = 3 * firstExemplars
	g, err := newGrowingExemplars(max, 0)
	if err != nil {
		t.Fatal(err)
	}
	ls := labels.FromStrings("__name__", "with_exemplars")
	count := func() int {
		q, err := g.ExemplarQuerier(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		res, err := q.Select(0, 1<<62, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "with_exemplars")})
		if err != nil || len(res) != 1 {
			t.Fatalf("select: %v, %d series", err, len(res))
		}
		return len(res[0].Exemplars)
	}
	for i := range 2*firstExemplars + 10 {
		if err := g.AddExemplar(ls, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", strconv.Itoa(i)), Value: 1, Ts: int64(i + 1), HasTs: true}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 2*firstExemplars+10 {
		t.Fatalf("%d exemplars kept of %d added, below the limit of %d", n, 2*firstExemplars+10, max)
	}
	for i := 2*firstExemplars + 10; i < 2*max; i++ {
		if err := g.AddExemplar(ls, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", strconv.Itoa(i)), Value: 1, Ts: int64(i + 1), HasTs: true}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != max {
		t.Fatalf("%d exemplars kept, want the limit %d", n, max)
	}
}

// TestOwnHeadBlocksKeepTheTSDBHeadsSamples: the own head writes its ranges
// into blocks in the TSDB's dir, which the TSDB reads at open as the time
// below which its own WAL's samples are already in blocks. They are not:
// its head's histograms of that range stay in its WAL until the TSDB
// compacts them itself. They must come back after a crash and after a
// graceful restart.
func TestOwnHeadBlocksKeepTheTSDBHeadsSamples(t *testing.T) {
	ownHeadInterval = 50 * time.Millisecond
	defer func(was time.Duration) { ownHeadInterval = was }(ownHeadInterval)
	dir := t.TempDir()
	open := ownHeadOpener(t, dir)
	s := open()
	start := time.Now().Add(-5 * time.Hour).UnixMilli()
	app := s.AppenderV2(context.Background())
	hist := labels.FromStrings("__name__", "own_head_hist")
	const hists = 120 // half an hour of histograms, in the first block's range
	for k := range hists {
		if _, err := app.Append(0, hist, 0, start+int64(k)*15000, 0, tsdbutil.GenerateTestHistogram(int64(k)), nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const floats = 5 * 240 // five hours: the own head writes a block
	for k := range floats {
		if _, err := app.Append(0, labels.FromStrings("__name__", "own_head_test"), 0, start+int64(k)*15000, float64(k), nil, nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.def.own.head.Compactable() || len(s.def.db.Blocks()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the own head wrote no block in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	crashed := crashCopy(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]string{"graceful restart": dir, "kill -9": crashed} {
		s := ownHeadOpener(t, d)()
		if got := countSamplesOf(t, s.DefaultQueryable(), "own_head_hist"); got != hists {
			t.Errorf("after a %s: %d histogram samples, want %d", name, got, hists)
		}
		if got := countOwnTestSamples(t, s); got != floats {
			t.Errorf("after a %s: %d float samples, want %d", name, got, floats)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// openOwnHeadReplayed opens the store in dir with the own head and waits
// until whatever it replays in the background is in its blocks.
func openOwnHeadReplayed(t *testing.T, dir string) *Storage {
	t.Helper()
	s := ownHeadOpener(t, dir)()
	select {
	case <-s.Replayed():
	case <-time.After(time.Minute):
		t.Fatal("background replay still running after a minute")
	}
	return s
}

// TestOwnHeadReplaysInTheBackground runs the background replay's tests
// with the own head: its WAL moves aside with the TSDB's, the store is
// ready with both heads empty, and once the replay has written it into
// blocks every sample answers as after a replay before ready, after a kill
// -9 at any step of it too.
func TestOwnHeadReplaysInTheBackground(t *testing.T) {
	testHead = config.HeadVispyr
	defer func() { testHead = config.HeadPrometheus }()
	t.Run("AnswersAsForeground", TestBackgroundReplayAnswersAsForeground)
	t.Run("SurvivesKill", TestBackgroundReplaySurvivesKill)
}

// TestOwnHeadSwitchedOffKeepsItsSamples: a store that ran with the own
// head and restarts with metrics.head: prometheus replays the own head's
// WAL in the background into blocks instead of leaving it unread.
func TestOwnHeadSwitchedOffKeepsItsSamples(t *testing.T) {
	dir := t.TempDir()
	s := ownHeadOpener(t, dir)()
	start := time.Now().Add(-time.Hour).UnixMilli()
	app := s.AppenderV2(context.Background())
	for k := range 200 {
		if _, err := app.Append(0, labels.FromStrings("__name__", "own_head_test"), 0, start+int64(k)*15000, float64(k), nil, nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openReplayTest(t, dir, 0) // metrics.head: prometheus, nothing replays for size
	defer s.Close()
	select {
	case <-s.Replayed():
	case <-time.After(time.Minute):
		t.Fatal("the own head's WAL did not replay")
	}
	if got := countOwnTestSamples(t, s); got != 200 {
		t.Errorf("after switching the own head off: %d samples, want 200", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "metrics", ownHeadDir)); !os.IsNotExist(err) {
		t.Errorf("the own head's dir is still there: %v", err)
	}
}

// TestOwnHeadCountsItsSeriesAndSamples: the own head's series and samples
// are in the store's metrics (the self-monitoring page adds them to the
// TSDB head's), a sample it refuses is not counted.
func TestOwnHeadCountsItsSeriesAndSamples(t *testing.T) {
	cfg := config.Default()
	cfg.Metrics.Head = config.HeadVispyr
	reg := prometheus.NewRegistry()
	s, err := Open(cfg.Metrics, cfg.Limits, t.TempDir(), slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Now().Add(-time.Minute).UnixMilli()
	app := s.AppenderV2(context.Background())
	for i := range 3 {
		for k := range 4 {
			if _, err := app.Append(0, labels.FromStrings("__name__", "own_head_test", "i", strconv.Itoa(i)), 0, base+int64(k)*1000, 1, nil, nil, storage.AOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, reg, "vispyr_metrics_head_series"); got != 3 {
		t.Errorf("vispyr_metrics_head_series %v, want 3", got)
	}
	if got := gathered(t, reg, "vispyr_metrics_head_samples_appended_total"); got != 12 {
		t.Errorf("vispyr_metrics_head_samples_appended_total %v, want 12", got)
	}
}

// gathered is the value of reg's metric name (a gauge or a counter).
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}

// TestWriteOwnHeadBlocksOfAStoppedStore: the own head a stopped store left
// is written into blocks, one a block range, out-of-order like those of a
// background replay, holding every sample; a running store's dir is
// refused, and a dir without an own head gives no block.
func TestWriteOwnHeadBlocksOfAStoppedStore(t *testing.T) {
	dir := t.TempDir()
	s := ownHeadOpener(t, dir)()
	// Two and a half hours: across a block range's end, and short of what
	// the store writes into blocks itself (one and a half ranges).
	const series, samples = 20, 600
	start := time.Now().Add(-150 * time.Minute).UnixMilli()
	app := s.AppenderV2(context.Background())
	for i := range series {
		ls := labels.FromStrings("__name__", "own_head_test", "i", strconv.Itoa(i))
		for k := range samples {
			if _, err := app.Append(0, ls, 0, start+int64(k)*15000, float64(k), nil, nil, storage.AOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	mdir, dest := filepath.Join(dir, "metrics"), t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	if _, err := WriteOwnHeadBlocks(context.Background(), mdir, dest, logger); err == nil {
		t.Error("the dir of a running store was not refused")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ids, err := WriteOwnHeadBlocks(context.Background(), mdir, dest, logger)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 {
		t.Fatalf("%d blocks, want 2 (the data crosses one block range's end)", len(ids))
	}
	const blockRange = 2 * 3600 * 1000
	total := 0
	for _, id := range ids {
		b, err := tsdb.OpenBlock(logger, filepath.Join(dest, id.String()), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := b.Meta()
		if m.MinTime/blockRange != (m.MaxTime-1)/blockRange || !m.Compaction.FromOutOfOrder() {
			t.Errorf("block %s [%d, %d): not within one block range, or not marked out-of-order", id, m.MinTime, m.MaxTime)
		}
		total += countSamplesOf(t, storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
			return tsdb.NewBlockQuerier(b, mint, maxt)
		}), "own_head_test")
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if total != series*samples {
		t.Errorf("the blocks hold %d samples, want %d", total, series*samples)
	}
	if ids, err := WriteOwnHeadBlocks(context.Background(), t.TempDir(), dest, logger); err != nil || len(ids) != 0 {
		t.Errorf("a dir without an own head: %d blocks, err %v", len(ids), err)
	}
}
