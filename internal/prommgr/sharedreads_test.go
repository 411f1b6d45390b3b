package prommgr

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
)

// The rules a group records must not change when its reads are shared:
// counters, native and classic histograms, several windows (a longer one
// after shorter ones, so the first read reaches back for it), offset, @ and a
// subquery, alerts, rules reading recording rules of the same group
// written earlier (this evaluation's value) or later (the last one's), and
// selectors narrower than others of the same metric, served from the wider
// one's read (more matchers, an equality where the other has a regex, a
// label no series has).
const sharedReadsRules = `
groups:
  - name: shared
    interval: 15s
    rules:
      - record: job:x:rate5m_before
        expr: job:x:rate5m
      - record: job:x:rate5m_before_doubled
        expr: job:x:rate5m * 2
      - record: job:x:rate5m
        expr: sum by (job) (rate(x[5m]))
      - record: job:x:rate5m_after
        expr: job:x:rate5m
      - record: job:x:rate5m_after_doubled
        expr: job:x:rate5m * 2
      - record: instance:x:rate1m
        expr: sum by (instance) (rate(x[1m]))
      - record: x:rate10m
        expr: sum(rate(x[10m]))
      - record: instance:x:max
        expr: max by (instance) (x)
      - record: x:offset1m
        expr: sum(x offset 1m)
      - record: x:at
        expr: sum(x @ 1000)
      - record: x:max_rate_3m
        expr: max_over_time(sum(rate(x[1m]))[3m:30s])
      - record: x:top
        expr: topk(3, rate(x[1m]))
      - record: h:p90
        expr: histogram_quantile(0.9, sum(rate(h[5m])))
      - record: h:p99
        expr: histogram_quantile(0.99, sum(rate(h[5m])))
      - record: h:count
        expr: histogram_count(sum(h))
      - record: b:p50
        expr: histogram_quantile(0.5, sum by (le) (rate(b_bucket[5m])))
      - record: b:p99
        expr: histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m])))
      - alert: XFast
        expr: rate(x[5m]) > 0.5
        for: 30s
      - record: j0:x:rate5m
        expr: sum(rate(x{job="j0"}[5m]))
      - record: j01:x:max
        expr: max(x{job=~"j0|j1"})
      - record: j1:x:count15m
        expr: count_over_time(x{job="j1", instance!="i4"}[15m])
      - record: j1:x:sum
        expr: sum(x{job="j1", nolabel=""})
      - record: j2:x:none
        expr: absent(x{job="j2", instance="i0"})
      - record: alerts:count
        expr: count(ALERTS)
`

func TestSharedReadsRecordWhatPrometheusRecords(t *testing.T) {
	file := writeRules(t, sharedReadsRules)
	start := time.UnixMilli(1_000_000)
	plain, shared := openLoadedTSDB(t, start), openLoadedTSDB(t, start)

	plainReads := evalRules(t, file, plain, start, false, nil)
	sharedReads := evalRules(t, file, shared, start, true, nil)

	want, got := dump(t, plain), dump(t, shared)
	for _, name := range []string{"job:x:rate5m_after", "job:x:rate5m_before", "h:p99", "b:p99", "x:top", "ALERTS", "alerts:count",
		"j0:x:rate5m", "j01:x:max", "j1:x:count15m", "j1:x:sum", "j2:x:none"} {
		if n := countSeries(want, name); n == 0 {
			t.Fatalf("the rules recorded no %s: the test would compare nothing", name)
		}
	}
	compareDumps(t, want, got)
	// A rule reading an earlier recording rule of its group gets this
	// evaluation's value.
	if a, r := samplesOf(want, "job:x:rate5m_after"), samplesOf(want, "job:x:rate5m"); a != r {
		t.Errorf("job:x:rate5m_after is not job:x:rate5m:\n%s\n%s", a, r)
	}
	if sharedReads*3 > plainReads*2 {
		t.Errorf("the group read the store %d times with sharing, %d without: little shared", sharedReads, plainReads)
	}
}

// A group's selectors of one metric are served by the widest read that
// selects all of their series, and only if it serves two uses or more.
func TestPlanReadsServesNarrowSelectorsFromWideOnes(t *testing.T) {
	group := `
groups:
  - name: plan
    rules:
      - record: a
        expr: sum(rate(calls{service="s", kind="server"}[5m]))
      - record: b
        expr: sum(rate(calls{service="s", kind="server", status="error"}[30m]))
      - record: c
        expr: sum(rate(calls{service="s", kind="client"}[1m]))
      - record: d
        expr: count(cpu{mode="idle"})
      - record: e
        expr: sum(rate(cpu{mode=~"idle|iowait"}[2m]))
      - record: f
        expr: sum(rate(cpu{mode!~"idle|iowait"}[2m]))
      - record: g
        expr: load1
`
	file := writeRules(t, group)
	m := rules.NewManager(&rules.ManagerOptions{Context: context.Background()})
	groups, errs := m.LoadGroups(15*time.Second, labels.EmptyLabels(), "", nil, false, file)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	plan := planReads(groups[rules.GroupKey(file, "plan")].Rules(), 5*time.Minute)
	calls := `__name__="calls",kind="server",service="s"`
	cpu := `__name__="cpu",mode=~"idle|iowait"`
	want := map[string]string{
		calls: calls,
		`__name__="calls",kind="server",service="s",status="error"`: calls,
		cpu:                          cpu,
		`__name__="cpu",mode="idle"`: cpu,
	}
	if !maps.Equal(plan.root, want) {
		t.Errorf("roots: %v, want %v", plan.root, want)
	}
	if plan.reach[calls] != 30*time.Minute || plan.reach[cpu] != 5*time.Minute {
		t.Errorf("reach: %v, want 30m for calls (its 30m use), 5m for cpu (the lookback of an instant selector)", plan.reach)
	}
}

// compareDumps fails t unless got (shared reads) holds the very series and
// samples of want (each rule reading for itself).
func compareDumps(t *testing.T, want, got map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("shared reads recorded %d series, Prometheus's way %d", len(got), len(want))
	}
	for series, w := range want {
		g, ok := got[series]
		if !ok {
			t.Errorf("%s: not recorded with shared reads", series)
			continue
		}
		if g != w {
			t.Errorf("%s:\n shared reads: %s\n     each own: %s", series, g, w)
		}
	}
}

// openLoadedTSDB is a TSDB holding 20 minutes of counters, native
// histograms and classic histogram buckets, 5 s apart (two head chunks a
// series), from start.
func openLoadedTSDB(t *testing.T, start time.Time) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rng := rand.New(rand.NewSource(1))
	app := db.AppenderV2(context.Background())
	les := []string{"0.1", "0.5", "1", "5", "+Inf"}
	for i := 0; i < 240; i++ {
		ts := start.Add(time.Duration(i) * 5 * time.Second).UnixMilli()
		for s := 0; s < 20; s++ {
			lset := labels.FromStrings("__name__", "x", "job", "j"+strconv.Itoa(s%3), "instance", "i"+strconv.Itoa(s))
			v := float64(i*(s+1)) + float64(rng.Intn(10))
			if s == 7 && i > 120 {
				v = float64(i - 120) // a counter reset
			}
			if _, err := app.Append(0, lset, 0, ts, v, nil, nil, storage.AOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		h := tsdbutil.GenerateTestHistogram(int64(i))
		if _, err := app.Append(0, labels.FromStrings("__name__", "h", "job", "j0"), 0, ts, 0, h, nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
		for b, le := range les {
			lset := labels.FromStrings("__name__", "b_bucket", "job", "j0", "le", le)
			if _, err := app.Append(0, lset, 0, ts, float64(i*(b+1)), nil, nil, storage.AOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return db
}

// evalRules evaluates the rule file's group every 15 s for 10 minutes from
// 6 minutes after start, as Prometheus's rules manager does, with or without
// shared reads, and says how many times the rules read the store. before,
// if set, runs before each evaluation (the i-th, at ts).
func evalRules(t *testing.T, file string, db *tsdb.DB, start time.Time, share bool, before func(i int, ts time.Time)) int64 {
	t.Helper()
	counted := &countingQueryable{Queryable: db}
	var q storage.Queryable = counted
	iterate := rules.DefaultEvalIterationFunc
	if share {
		q, iterate = sharingQueryable{db: counted}, shareGroupReads(5*time.Minute)
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e7, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		EnableAtModifier: true, EnableNegativeOffset: true})
	m := rules.NewManager(&rules.ManagerOptions{
		AppendableV2: db, Queryable: db, QueryFunc: rules.EngineQueryFunc(engine, q),
		NotifyFunc: func(context.Context, string, ...*rules.Alert) {}, Context: context.Background(),
		ForGracePeriod: 10 * time.Minute, ResendDelay: time.Minute,
	})
	groups, errs := m.LoadGroups(15*time.Second, labels.EmptyLabels(), "", iterate, false, file)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	g := groups[rules.GroupKey(file, "shared")]
	for _, r := range g.Rules() {
		if a, ok := r.(*rules.AlertingRule); ok {
			a.SetRestored(true) // nothing to restore: a first start
		}
	}
	for i, ts := 0, start.Add(6*time.Minute); ts.Before(start.Add(16 * time.Minute)); i, ts = i+1, ts.Add(15*time.Second) {
		if before != nil {
			before(i, ts)
		}
		iterate(context.Background(), g, ts)
	}
	for _, r := range g.Rules() {
		if err := r.LastError(); err != nil {
			t.Fatalf("rule %s: %v", r.Name(), err)
		}
	}
	return counted.selects.Load()
}

// dump is every series of db with its samples, as text.
func dump(t *testing.T, db *tsdb.DB) map[string]string {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	out := map[string]string{}
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var text string
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			switch vt {
			case chunkenc.ValFloat:
				ts, v := it.At()
				text += fmt.Sprintf("%d:%x ", ts, math.Float64bits(v))
			default:
				var fh *histogram.FloatHistogram
				ts, fh := it.AtFloatHistogram(fh)
				text += fmt.Sprintf("%d:%s ", ts, fh)
			}
		}
		out[s.Labels().String()] = text
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func countSeries(d map[string]string, name string) int {
	n := 0
	for series := range d {
		if labelsName(series) == name {
			n++
		}
	}
	return n
}

// samplesOf is the samples of name's series, whatever its other labels, in
// label order.
func samplesOf(d map[string]string, name string) string {
	out := ""
	for _, job := range []string{"j0", "j1", "j2"} {
		out += d[fmt.Sprintf(`{__name__=%q, job=%q}`, name, job)] + "\n"
	}
	return out
}

func labelsName(series string) string {
	var name string
	fmt.Sscanf(series, `{__name__=%q`, &name)
	return name
}

// countingQueryable counts the Selects that reach the store.
type countingQueryable struct {
	storage.Queryable
	selects atomic.Int64
}

func (c *countingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := c.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return countingQuerier{Querier: q, selects: &c.selects}, nil
}

type countingQuerier struct {
	storage.Querier
	selects *atomic.Int64
}

func (c countingQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	c.selects.Add(1)
	return c.Querier.Select(ctx, sortSeries, hints, ms...)
}

// Rules over series written to between evaluations record what Prometheus
// records: samples that arrive late but in order, out-of-order samples inside
// the window, a stale marker, a series that stops and comes back, series that
// come and go, and part of the head compacted into a block in between;
// selectors of a few series among them are served from the read of all.
const churnRules = `
groups:
  - name: shared
    interval: 15s
    rules:
      - record: instance:y:rate1m
        expr: sum by (instance) (rate(y[1m]))
      - record: instance:y:rate5m
        expr: sum by (instance) (rate(y[5m]))
      - record: instance:y:max
        expr: max by (instance) (y)
      - record: y:count
        expr: count(y)
      - record: instance:y:count5m
        expr: count_over_time(y[5m])
      - record: instance:y:changes3m
        expr: changes(y[3m])
      - record: instance:y:last2m
        expr: last_over_time(y[2m])
      - record: y:low:count
        expr: count(y{instance=~"i[0-4]"})
      - record: i7:y:rate5m
        expr: rate(y{instance="i7"}[5m])
      - record: i3:y:changes3m
        expr: changes(y{instance="i3"}[3m])
`

func TestSharedReadsFollowWritesBetweenEvaluations(t *testing.T) {
	file := writeRules(t, churnRules)
	start := time.UnixMilli(1_000_000)
	plain, shared := openChurnTSDB(t, start), openChurnTSDB(t, start)
	var ooo, compacted int
	before := func(db *tsdb.DB) func(int, time.Time) {
		return func(i int, ts time.Time) {
			ooo += writeChurn(t, db, start, i, ts)
			if i == 20 { // the oldest minutes of the head go to a block
				if err := db.CompactHead(tsdb.NewRangeHead(db.Head(), start.UnixMilli(), ts.Add(-4*time.Minute).UnixMilli())); err != nil {
					t.Fatal(err)
				}
				compacted += len(db.Blocks())
			}
		}
	}
	plainReads := evalRules(t, file, plain, start, false, before(plain))
	sharedReads := evalRules(t, file, shared, start, true, before(shared))
	if ooo == 0 || compacted == 0 {
		t.Fatalf("%d out-of-order samples accepted, %d blocks compacted: the test would not cover them", ooo, compacted)
	}
	if sharedReads >= plainReads {
		t.Fatalf("the group read the store %d times with sharing, %d without: nothing shared", sharedReads, plainReads)
	}
	want, got := dump(t, plain), dump(t, shared)
	for _, name := range []string{"instance:y:rate5m", "y:count", "instance:y:changes3m", "y:low:count", "i7:y:rate5m", "i3:y:changes3m"} {
		if countSeries(want, name) == 0 {
			t.Fatalf("the rules recorded no %s: the test would compare nothing", name)
		}
	}
	compareDumps(t, want, got)
}

// openChurnTSDB is a TSDB accepting samples up to 10 minutes out of order (as
// Vispyr's metrics store does), with 6 minutes of y{instance="i0".."i9"}
// before start+6m, 15 s apart.
func openChurnTSDB(t *testing.T, start time.Time) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = (10 * time.Minute).Milliseconds()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	app := db.AppenderV2(context.Background())
	for ts := start; ts.Before(start.Add(6 * time.Minute)); ts = ts.Add(15 * time.Second) {
		for k := 0; k < 10; k++ {
			appendY(t, app, "i"+strconv.Itoa(k), ts.Add(-2*time.Second), float64(ts.Sub(start)/time.Second)*float64(k+1))
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return db
}

// writeChurn writes what arrives before the i-th evaluation, at ts, and says
// how many samples were out of order.
func writeChurn(t *testing.T, db *tsdb.DB, start time.Time, i int, ts time.Time) (ooo int) {
	t.Helper()
	app := db.AppenderV2(context.Background())
	v := float64(ts.Sub(start) / time.Second)
	for k := 0; k < 10; k++ {
		inst := "i" + strconv.Itoa(k)
		switch {
		case k == 1 && i > 0: // late: the last round's sample, in order for its series
			appendY(t, app, inst, ts.Add(-17*time.Second), (v-15)*2)
		case k == 1:
		case k == 3 && i == 8: // goes stale, then comes back at round 14
			appendY(t, app, inst, ts.Add(-5*time.Second), math.Float64frombits(value.StaleNaN))
		case k == 3 && i > 8 && i < 14:
		case k == 5 && i >= 20 && i < 26: // stops without a marker, comes back
		default:
			appendY(t, app, inst, ts.Add(-2*time.Second), v*float64(k+1))
		}
	}
	if i%7 == 3 { // out of order, inside every window
		appendY(t, app, "i7", ts.Add(-2*time.Minute-time.Second), 1e6+v)
		ooo++
	}
	if i%5 == 0 { // a series for three rounds
		appendY(t, app, "n"+strconv.Itoa(i), ts.Add(-2*time.Second), v)
	}
	for j := i - 2; j < i; j++ {
		if j >= 0 && j%5 == 0 {
			appendY(t, app, "n"+strconv.Itoa(j), ts.Add(-2*time.Second), v)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return ooo
}

func appendY(t *testing.T, app storage.AppenderV2, instance string, ts time.Time, v float64) {
	t.Helper()
	if _, err := app.Append(0, labels.FromStrings("__name__", "y", "instance", instance), 0, ts.UnixMilli(), v, nil, nil, storage.AOptions{}); err != nil {
		t.Fatalf("append y{instance=%q} at %d: %v", instance, ts.UnixMilli(), err)
	}
}

// writeRules writes a rule file of text into the test's temp dir.
func writeRules(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
