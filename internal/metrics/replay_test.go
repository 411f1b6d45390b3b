package metrics

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// replayTenants are the tenants the replay tests write: each has its own
// TSDB and so its own background replay.
var replayTenants = []string{pipeline.DefaultTenant, "acme"}

// replayData writes span minutes of samples ending at end, 15 s apart, for
// 50 series per tenant, a round of all series per commit, then some
// out-of-order samples (within the default out-of-order window).
func replayData(t testing.TB, s *Storage, end int64, span int64, name string) {
	t.Helper()
	replaySeries(t, s, end, span, name, 50)
}

// replaySeries is replayData with n series per tenant.
func replaySeries(t testing.TB, s *Storage, end int64, span int64, name string, n int) {
	t.Helper()
	for _, tenant := range replayTenants {
		ctx := pipeline.WithTenant(context.Background(), tenant)
		series := make([]labels.Labels, n)
		for i := range series {
			series[i] = labels.FromStrings("__name__", name, "i", fmt.Sprint(i), "tenant", tenant)
		}
		commit := func(app storage.AppenderTransaction) {
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		// Through the V2 appender, as remote write and OTLP write: with
		// the own head its floats go there.
		appender := func() storage.LimitedAppenderV1 { return storage.AppenderV2AsLimitedV1(s.AppenderV2(ctx)) }
		for ts := end - span*60_000; ts <= end; ts += 15_000 {
			app := appender()
			for i, ls := range series {
				// A counter, as most real series are: its chunks take a
				// byte or two a sample where the WAL takes a float's eight.
				if _, err := app.Append(0, ls, ts, float64(ts/15_000%100_000+int64(i))); err != nil {
					t.Fatal(err)
				}
			}
			commit(app)
		}
		app := appender()
		for _, ls := range series {
			for ts := end - 5*60_000 + 7_000; ts < end; ts += 60_000 {
				if _, err := app.Append(0, ls, ts, float64(ts%1000)/7); err != nil {
					t.Fatal(err)
				}
			}
		}
		commit(app)
	}
}

// openReplayTest opens a store on dir replaying in the background any head
// files of at least minBytes.
func openReplayTest(t testing.TB, dir string, minBytes int64) *Storage {
	t.Helper()
	cfg := config.Default()
	cfg.Metrics.BackgroundReplayMinWALBytes = minBytes
	cfg.Metrics.Head = testHead
	s, err := Open(cfg.Metrics, cfg.Limits, dir, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crashCopy copies a running store's data dir, as a kill -9 would leave it.
func crashCopy(t testing.TB, dir string) string {
	t.Helper()
	dst := t.TempDir()
	for _, d := range []string{"metrics", tenantsDir} {
		if _, err := os.Stat(filepath.Join(dir, d)); os.IsNotExist(err) {
			continue // no other tenant wrote
		}
		if out, err := exec.Command("cp", "-a", filepath.Join(dir, d), dst).CombinedOutput(); err != nil {
			t.Fatalf("copy the running store: %v %s", err, out)
		}
	}
	return dst
}

type sample struct {
	t    int64
	bits uint64
}

// allSamples is every sample of every tenant, by tenant and series.
func allSamples(t testing.TB, s *Storage) map[string][]sample {
	t.Helper()
	out := map[string][]sample{}
	for _, tenant := range replayTenants {
		ctx := pipeline.WithTenant(context.Background(), tenant)
		q, err := s.Querier(math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		set := q.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		for set.Next() {
			key := tenant + set.At().Labels().String()
			it := set.At().Iterator(nil)
			for it.Next() != 0 {
				ts, v := it.At()
				out[key] = append(out[key], sample{ts, math.Float64bits(v)})
			}
		}
		if err := set.Err(); err != nil {
			t.Fatal(err)
		}
		q.Close()
	}
	return out
}

// rangeQuery runs a PromQL range query over the data's span on the
// default tenant.
func rangeQuery(t testing.TB, s *Storage, expr string, end int64) (promql.Matrix, []string) {
	t.Helper()
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e8, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q, err := eng.NewRangeQuery(context.Background(), s, nil, expr, time.UnixMilli(end-160*60_000), time.UnixMilli(end+10*60_000), 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	m, err := res.Matrix()
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := res.Warnings.AsStrings(expr, 0, 0)
	// Close hands the points back to the engine's pools: keep a copy.
	out := make(promql.Matrix, len(m))
	for i, s := range m {
		out[i] = promql.Series{Metric: s.Metric, Floats: slices.Clone(s.Floats), Histograms: slices.Clone(s.Histograms)}
	}
	return out, ws
}

// pauseReplay stops every background replay at stage until the returned
// func is called.
func pauseReplay(t *testing.T, stage string) (release func()) {
	gate := make(chan struct{})
	saved := replayHook
	replayHook = func(s string) {
		if s == stage {
			<-gate
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(func() { release(); replayHook = saved })
	return release
}

// A store whose WAL is over the threshold opens with an empty head that
// takes writes at once, while the WAL replays beside it; queries warn
// until it has, and then every sample, old and new, answers exactly as
// after a replay before ready.
func TestBackgroundReplayAnswersAsForeground(t *testing.T) {
	end := time.Now().Add(-time.Minute).UnixMilli()
	dir := t.TempDir()
	w := openReplayTest(t, dir, 0)
	replayData(t, w, end, 150, "replay_test")
	fore, back := crashCopy(t, dir), crashCopy(t, dir)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	f := openReplayTest(t, fore, 0)
	defer f.Close()
	select {
	case <-f.Replayed():
	default:
		t.Fatal("a foreground replay left a background one")
	}
	release := pauseReplay(t, "opened")
	b := openReplayTest(t, back, 1)
	defer b.Close()
	if n := b.DB().Head().NumSeries(); n != 0 {
		t.Fatalf("the fresh head holds %d series at open, want 0", n)
	}
	if b.def.own != nil && b.def.own.head.NumSeries() != 0 {
		t.Fatalf("the fresh own head holds %d series at open, want 0", b.def.own.head.NumSeries())
	}
	if b.ReplayPendingBytes() <= 0 {
		t.Fatal("no bytes pending replay")
	}
	select {
	case <-b.Replayed():
		t.Fatal("replayed before the replay ran")
	default:
	}
	_, ws := rangeQuery(t, b, "count(replay_test)", end)
	if len(ws) != 1 || !strings.Contains(ws[0], "of WAL still replaying") {
		t.Errorf("warnings during the replay: %q", ws)
	}
	// Writes land at once, in both stores alike.
	for _, s := range []*Storage{f, b} {
		replayData(t, s, end, 30, "replay_new")
	}
	release()
	select {
	case <-b.Replayed():
	case <-time.After(time.Minute):
		t.Fatal("the background replay did not end")
	}
	if b.ReplayPendingBytes() != 0 {
		t.Errorf("%d bytes pending after the replay", b.ReplayPendingBytes())
	}
	if _, err := os.Stat(filepath.Join(back, "metrics", replayDirName, "1")); !os.IsNotExist(err) {
		t.Errorf("the replay dir is still there: %v", err)
	}
	want, got := allSamples(t, f), allSamples(t, b)
	if len(want) != 4*50 {
		t.Fatalf("foreground: %d series, want %d", len(want), 4*50)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("background replay: %d series differ from the foreground replay's %d", len(got), len(want))
	}
	for _, expr := range []string{"sum by (i) (rate(replay_test[5m]))", "replay_test", "max_over_time(replay_new[10m])"} {
		fm, _ := rangeQuery(t, f, expr, end)
		bm, ws := rangeQuery(t, b, expr, end)
		if len(fm) == 0 || !reflect.DeepEqual(fm, bm) {
			t.Errorf("%s: background replay answers %d series, foreground %d, or they differ", expr, len(bm), len(fm))
		}
		if len(ws) != 0 {
			t.Errorf("%s: warnings after the replay: %q", expr, ws)
		}
	}
}

// replayChildEnv makes the test binary a store that stops its background
// replay at a stage and waits there to be killed.
const replayChildEnv = "VISPYR_REPLAY_CHILD"

// replayHeadEnv is the child's metrics.head.
const replayHeadEnv = "VISPYR_REPLAY_HEAD"

func TestMain(m *testing.M) {
	if v := os.Getenv(replayChildEnv); v != "" {
		dir, stage, _ := strings.Cut(v, ",")
		replayChild(dir, stage)
		return
	}
	os.Exit(m.Run())
}

// replayChild opens the store, writes newer samples once it is open, says
// so and waits at stage of the replay for the kill.
func replayChild(dir, stage string) {
	reached := make(chan struct{})
	var once sync.Once
	replayHook = func(s string) {
		if s == stage {
			once.Do(func() { close(reached) })
			select {}
		}
	}
	cfg := config.Default()
	cfg.Metrics.BackgroundReplayMinWALBytes = 1
	cfg.Metrics.Head = os.Getenv(replayHeadEnv)
	s, err := Open(cfg.Metrics, cfg.Limits, dir, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	end, _ := time.Parse(time.RFC3339Nano, os.Getenv("VISPYR_REPLAY_END"))
	replayData(fakeTB{}, s, end.UnixMilli()+60_000, 30, "replay_new")
	<-reached
	fmt.Println("READY")
	select {}
}

// fakeTB lets the child reuse replayData: any failure exits.
type fakeTB struct{ testing.TB }

func (fakeTB) Helper()                   {}
func (fakeTB) Fatal(args ...any)         { fmt.Println(args...); os.Exit(1) }
func (fakeTB) Fatalf(f string, a ...any) { fmt.Printf(f+"\n", a...); os.Exit(1) }

// kill -9 at any step of a background replay loses nothing: the next start
// replays the moved WAL again (with the WAL written since), and every
// sample acknowledged before and during the replay answers.
func TestBackgroundReplaySurvivesKill(t *testing.T) {
	end := time.Now().Add(-time.Minute)
	src := t.TempDir()
	w := openReplayTest(t, src, 0)
	replayData(t, w, end.UnixMilli(), 150, "replay_test")
	ref := crashCopy(t, src)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The reference: the same data, replayed before ready, plus the child's writes.
	r := openReplayTest(t, ref, 0)
	replayData(t, r, end.UnixMilli()+60_000, 30, "replay_new")
	want := allSamples(t, r)
	r.Close()

	stages := []string{"opened", "block", "loaded"}
	if testHead == config.HeadVispyr {
		stages = append(stages, "opened own head")
	}
	for _, stage := range stages {
		t.Run(stage, func(t *testing.T) {
			dir := crashCopy(t, src)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), replayChildEnv+"="+dir+","+stage, "VISPYR_REPLAY_END="+end.Format(time.RFC3339Nano),
				replayHeadEnv+"="+testHead)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// A child that never reaches the stage is killed too.
			timeout := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
			line, _ := bufio.NewReader(out).ReadString('\n')
			timeout.Stop()
			_ = cmd.Process.Kill() // SIGKILL
			_ = cmd.Wait()
			if line != "READY\n" {
				t.Fatalf("child: %q", line)
			}
			s := openReplayTest(t, dir, 0)
			defer s.Close()
			select {
			case <-s.Replayed():
			case <-time.After(time.Minute):
				t.Fatal("the replay after the kill did not end")
			}
			if got := allSamples(t, s); !reflect.DeepEqual(got, want) {
				t.Errorf("after kill -9 at %q: %d series, want %d, or samples differ", stage, len(got), len(want))
			}
			// And once more, as a graceful restart would find it.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openReplayTest(t, dir, 0)
			if got := allSamples(t, s); !reflect.DeepEqual(got, want) {
				t.Errorf("restart after the replay: %d series, want %d, or samples differ", len(got), len(want))
			}
		})
	}
}

// A block the compactor made by merging replayed blocks with in-order ones
// ends above samples the fresh head took into its WAL; opened as usual,
// the TSDB would drop those samples as older than its newest block. The
// WAL's floor sends such a WAL to the background replay, where no block is
// in the way, and every sample is kept.
func TestWALFloorKeepsSamplesBelowMergedBlocks(t *testing.T) {
	end := time.Now().Add(-time.Minute).UnixMilli()
	dir := t.TempDir()
	w := openReplayTest(t, dir, 0)
	replayData(t, w, end, 30, "floor_test")
	guarded, unguarded := crashCopy(t, dir), crashCopy(t, dir)
	want := allSamples(t, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	merged := []storage.Series{storage.NewListSeries(labels.FromStrings("__name__", "merged"), chunks.GenerateSamples(int(end+60*60_000), 10))}
	for _, d := range []string{guarded, unguarded} {
		if _, err := tsdb.CreateBlock(merged, filepath.Join(d, "metrics"), 2*60*60_000, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(guarded, "metrics", replayDirName), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeWALFloor(filepath.Join(guarded, "metrics"), end-30*60_000-1); err != nil {
		t.Fatal(err)
	}

	u := openReplayTest(t, unguarded, 0)
	key := "single-tenant{__name__=\"floor_test\", i=\"0\", tenant=\"single-tenant\"}"
	kept := len(allSamples(t, u)[key])
	u.Close()
	if len(want[key]) == 0 || kept >= len(want[key]) {
		t.Fatalf("without a floor the TSDB kept %d of %d samples below the block: the test would prove nothing", kept, len(want[key]))
	}
	g := openReplayTest(t, guarded, 0)
	defer g.Close()
	select {
	case <-g.Replayed():
	case <-time.After(time.Minute):
		t.Fatal("the background replay did not end")
	}
	got := allSamples(t, g)
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s: %d samples, want %d", k, len(got[k]), len(v))
		}
	}
}

// Looking for WAL to move aside takes the TSDB's lock but leaves no lock
// file behind, which the TSDB would take for an unclean shutdown: a fresh
// dir and a cleanly closed one both start clean.
func TestStagingLeavesACleanStart(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		cfg := config.Default()
		reg := prometheus.NewRegistry()
		s, err := Open(cfg.Metrics, cfg.Limits, dir, slog.New(slog.DiscardHandler), reg)
		if err != nil {
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		clean := -1.0
		for _, mf := range mfs {
			if mf.GetName() == "prometheus_tsdb_clean_start" {
				clean = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if clean != 1 {
			t.Fatalf("open %d: prometheus_tsdb_clean_start = %v, want 1", i+1, clean)
		}
	}
}

// The series API answers in label order, as Prometheus's does, whether the
// series are in the head (which keeps them in the order they came) or in
// the blocks a background replay wrote them to after a restart: the same
// request gets the same answer across the restart.
func TestSeriesAPIInLabelOrderAcrossReplay(t *testing.T) {
	end := time.Now().Add(-time.Minute).UnixMilli()
	dir := t.TempDir()
	ctx := pipeline.WithTenant(context.Background(), pipeline.DefaultTenant)
	scrambled := []int{2, 6, 0, 4, 8, 1, 5, 9, 3, 7}
	write := func(s *Storage, instance string) (want []labels.Labels) {
		for _, d := range scrambled {
			want = append(want, labels.FromStrings("__name__", "order_test", "device", fmt.Sprintf("dev%d", d), "instance", instance))
		}
		for ts := end - 30*60_000; ts <= end; ts += 15_000 {
			app := s.Appender(ctx)
			for _, ls := range want {
				if _, err := app.Append(0, ls, ts, float64(ts)); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		return want
	}
	check := func(s *Storage, when string, want []labels.Labels) {
		t.Helper()
		want = slices.Clone(want)
		slices.SortFunc(want, labels.Compare)
		got := seriesAPI(t, s, `order_test`, end)
		if !slices.EqualFunc(got, want, labels.Equal) {
			t.Errorf("%s: the series API answers\n%v\nwant, in label order,\n%v", when, got, want)
		}
	}

	w := openReplayTest(t, dir, 0)
	want := write(w, "a")
	check(w, "series in the head", want)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s := openReplayTest(t, dir, 1)
	defer s.Close()
	select {
	case <-s.Replayed():
	case <-time.After(time.Minute):
		t.Fatal("the background replay did not end")
	}
	check(s, "series in the replayed blocks", want)
	want = append(want, write(s, "b")...)
	check(s, "series in the replayed blocks and the fresh head", want)
}

// seriesAPI is the series the series API answers for match over the hour
// before end, in its order.
func seriesAPI(t *testing.T, s *Storage, match string, end int64) []labels.Labels {
	t.Helper()
	cfg := config.Default()
	srv := httptest.NewServer(s.NewAPI(APIOptions{Metrics: cfg.Metrics}, slog.New(slog.DiscardHandler), prometheus.NewRegistry()))
	defer srv.Close()
	v := url.Values{"match[]": {match}, "start": {strconv.FormatInt(end/1000-3600, 10)}, "end": {strconv.FormatInt(end/1000+1, 10)}}
	var resp struct{ Data []map[string]string }
	if err := json.Unmarshal([]byte(httpGet(t, srv.URL+"/api/v1/series?"+v.Encode())), &resp); err != nil {
		t.Fatal(err)
	}
	out := make([]labels.Labels, len(resp.Data))
	for i, m := range resp.Data {
		out[i] = labels.FromMap(m)
	}
	return out
}

// After a graceful stop the head reads its snapshot and only the WAL written
// after it, so a WAL over the threshold that the snapshot covers replays
// before ready (every sample answers at once); after a crash the same WAL
// is read whole and replays in the background.
func TestGracefulRestartReplaysSnapshotBeforeReady(t *testing.T) {
	end := time.Now().Add(-time.Minute).UnixMilli()
	dir := t.TempDir()
	w := openReplayTest(t, dir, 0)
	// Enough WAL that its bytes clearly outweigh the snapshot's, the head
	// chunks' and the out-of-order WAL's, whose files grow by whole pages.
	const series = 200
	replaySeries(t, w, end, 150, "replay_test", series)
	crashed, reference := crashCopy(t, dir), crashCopy(t, dir)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tsdbDirs := func(data string) []string {
		return []string{filepath.Join(data, "metrics"), filepath.Join(data, tenantsDir, tenantDirName("acme"))}
	}
	// The threshold: what the smallest TSDB reads after the crash.
	threshold := int64(math.MaxInt64)
	for _, d := range tsdbDirs(crashed) {
		n, err := headBytes(d)
		if err != nil {
			t.Fatal(err)
		}
		threshold = min(threshold, n)
	}
	for _, d := range tsdbDirs(dir) {
		if snaps, _ := filepath.Glob(filepath.Join(d, "chunk_snapshot.*")); len(snaps) == 0 {
			t.Fatalf("%s: no head snapshot after a graceful stop", d)
		}
		n, _ := headBytes(d)
		t.Logf("%s: %d bytes to read after a graceful stop, %d after a crash", filepath.Base(d), n, threshold)
		if n >= threshold {
			t.Fatalf("%s: %d bytes to read after a graceful stop, not below the %d after a crash", d, n, threshold)
		}
	}

	g := openReplayTest(t, dir, threshold)
	defer g.Close()
	select {
	case <-g.Replayed():
	default:
		t.Fatal("after a graceful stop the WAL the snapshot covers replays in the background")
	}
	c := openReplayTest(t, crashed, threshold)
	defer c.Close()
	if c.ReplayPendingBytes() <= 0 {
		t.Fatal("after a crash the whole WAL replays before ready, want in the background")
	}
	r := openReplayTest(t, reference, 0)
	defer r.Close()
	want := allSamples(t, r)
	if len(want) != len(replayTenants)*series {
		t.Fatalf("reference: %d series, want %d", len(want), len(replayTenants)*series)
	}
	if got := allSamples(t, g); !reflect.DeepEqual(got, want) {
		t.Errorf("after the graceful restart: %d series, or samples differ from the full replay's %d", len(got), len(want))
	}
}
