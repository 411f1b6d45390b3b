package resultscache

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/vispyr/vispyr/internal/metrics/rangeparts/parttest"
)

// dashboardQueries are the shapes the shipped dashboards and the UI run,
// plus the step-safe modifiers the cache has to get right.
var dashboardQueries = []string{
	`sum by (job) (rate(http_requests_total[5m]))`,
	`histogram_quantile(0.99, sum by (le) (rate(latency_bucket[5m])))`,
	`topk(3, rate(http_requests_total[1m]))`,
	`count(http_requests_total)`,
	`count({__name__=~".+"})`,
	`rate(http_requests_total[5m] offset 10m)`,
	`sum(rate(http_requests_total[2m] offset -3m))`,
	`max_over_time(rate(http_requests_total[1m])[10m:30s])`,
	`avg_over_time(sum(http_requests_total)[7m:])`,
	`timestamp(http_requests_total)`,
	`http_requests_total`,
	`vector(time())`,
	`absent(nothing)`,
	`rate(temperature[5m])`, // an info annotation: never cached
	`sum(http_requests_total @ end())`,
}

type fixture struct {
	t        *testing.T
	db       *tsdb.DB
	plain    promql.QueryEngine
	cached   *Engine
	now      time.Time
	reg      *prometheus.Registry
	minTime  int64
	lastT    map[string]int64
	series   []labels.Labels
	rng      *rand.Rand
	interval time.Duration
}

func newFixture(t *testing.T, freshness time.Duration) *fixture {
	db := parttest.OpenDB(t)
	eng := parttest.Engine(50_000_000)
	f := &fixture{t: t, db: db, plain: eng, reg: prometheus.NewRegistry(), lastT: map[string]int64{},
		rng: rand.New(rand.NewPCG(1, 2)), interval: 15 * time.Second, minTime: math.MinInt64}
	f.now = time.UnixMilli(1_700_000_000_000).Truncate(time.Hour)
	f.cached = New(eng, Options{MaxBytes: 64 << 20, Freshness: freshness, LookbackDelta: 5 * time.Minute,
		Tenant: func(context.Context) string { return "" }, Now: func() time.Time { return f.now },
		MinTime: func(string) int64 { return f.minTime }}, f.reg)
	for i := 0; i < 12; i++ {
		f.series = append(f.series, labels.FromStrings("__name__", "http_requests_total",
			"job", fmt.Sprintf("job-%d", i%3), "instance", strconv.Itoa(i)))
	}
	for _, le := range []string{"0.1", "0.5", "1", "5", "+Inf"} {
		for i := 0; i < 2; i++ {
			f.series = append(f.series, labels.FromStrings("__name__", "latency_bucket", "le", le, "instance", strconv.Itoa(i)))
		}
	}
	f.series = append(f.series, labels.FromStrings("__name__", "temperature", "room", "a"))
	return f
}

// advance writes every series' samples up to the clock moved forward by d;
// some series skip rounds, and one in 50 rounds a series goes stale.
func (f *fixture) advance(d time.Duration) {
	f.t.Helper()
	end := f.now.Add(d)
	app := f.db.Appender(context.Background())
	for i, ls := range f.series {
		k := ls.String()
		last, ok := f.lastT[k]
		if !ok {
			last = f.now.Add(-3 * time.Hour).UnixMilli()
		}
		var v float64
		for ts := last + f.interval.Milliseconds(); ts <= end.UnixMilli(); ts += f.interval.Milliseconds() {
			switch r := f.rng.IntN(50); {
			case r == 0 && i%4 == 1:
				v = math.Float64frombits(value.StaleNaN)
			case r < 3:
				continue // a missed scrape
			default:
				v = float64((ts/1000)%100000) * float64(i+1)
				if ls.Get("__name__") == "temperature" {
					v = f.rng.Float64() * 30
				}
			}
			if _, err := app.Append(0, ls, ts, v); err != nil {
				f.t.Fatal(err)
			}
			f.lastT[k] = ts
		}
		if _, ok := f.lastT[k]; !ok {
			f.lastT[k] = end.UnixMilli()
		}
	}
	if err := app.Commit(); err != nil {
		f.t.Fatal(err)
	}
	f.now = end
}

// compare runs qs over start..end with both engines and fails on any
// difference in series, timestamps, values or annotations.
func (f *fixture) compare(qs string, start, end time.Time, step time.Duration) {
	f.t.Helper()
	want := parttest.Range(f.t, f.plain, f.db, qs, start, end, step)
	got := parttest.Range(f.t, f.cached, f.db, qs, start, end, step)
	if d := parttest.Diff(got, want); d != "" {
		f.t.Fatalf("%s over %v..%v step %v (now %v), cached vs uncached: %s", qs,
			start.Sub(f.now), end.Sub(f.now), step, f.now.Format(time.TimeOnly), d)
	}
}

// randomRange draws a request as a dashboard would make one: mostly ending
// near now, sometimes anywhere in the data, steps on and off the grid.
func (f *fixture) randomRange() (time.Time, time.Time, time.Duration) {
	steps := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 7 * time.Second, 5 * time.Minute}
	step := steps[f.rng.IntN(len(steps))]
	length := time.Duration(f.rng.Int64N(int64(3 * time.Hour)))
	end := f.now.Add(-time.Duration(f.rng.Int64N(int64(10 * time.Minute))))
	if f.rng.IntN(3) == 0 {
		end = f.now.Add(-time.Duration(f.rng.Int64N(int64(3 * time.Hour))))
	}
	if f.rng.IntN(10) == 0 {
		end = f.now.Add(10 * time.Minute) // ahead of the data
	}
	start := end.Add(-length)
	if f.rng.IntN(2) == 0 {
		start = start.Truncate(step)
	} else {
		start = start.Add(time.Duration(f.rng.IntN(1000)) * time.Millisecond)
	}
	return start, end, step
}

func TestCachedEqualsUncachedOverRandomRanges(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.advance(0)
	for i := 0; i < 800; i++ {
		if i%20 == 0 {
			f.advance(time.Duration(f.rng.IntN(90)) * time.Second)
		}
		qs := dashboardQueries[f.rng.IntN(len(dashboardQueries))]
		start, end, step := f.randomRange()
		f.compare(qs, start, end, step)
	}
	hits := testutil.ToFloat64(f.cached.m.requests.WithLabelValues("hit")) +
		testutil.ToFloat64(f.cached.m.requests.WithLabelValues("partial"))
	if hits < 120 {
		t.Fatalf("only %v of 800 requests used the cache: the test proves nothing", hits)
	}
	if n := testutil.ToFloat64(f.cached.m.requests.WithLabelValues("uncacheable")); n == 0 {
		t.Fatal("the @ query was cached")
	}
}

// A dashboard refreshing every 10 s: after the first load, each refresh
// computes only the newest steps.
func TestRefreshComputesOnlyNewSteps(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.advance(0)
	qs := dashboardQueries[0]
	for i := 0; i < 10; i++ {
		f.advance(10 * time.Second)
		start := f.now.Add(-time.Hour).Truncate(15 * time.Second)
		f.compare(qs, start, f.now, 15*time.Second)
	}
	computed := testutil.ToFloat64(f.cached.m.steps.WithLabelValues("miss"))
	served := testutil.ToFloat64(f.cached.m.steps.WithLabelValues("hit"))
	// 241 steps the first time; then about the freshness window (20 steps)
	// plus the new ones per refresh.
	if computed > 241+9*25 || served < 9*200 {
		t.Fatalf("computed %v steps and served %v from the cache over 10 refreshes", computed, served)
	}
}

// A sample written behind the freshness window (a late or out-of-order
// write) shows in the next answer, as it does without the cache.
func TestLateWriteInvalidates(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.advance(0)
	start, end, step := f.now.Add(-2*time.Hour), f.now, time.Minute
	for _, qs := range dashboardQueries {
		f.compare(qs, start, end, step)
	}
	// A new series back-dated an hour, and an out-of-order sample.
	late := f.now.Add(-time.Hour).UnixMilli()
	app := f.db.Appender(context.Background())
	ls := labels.FromStrings("__name__", "http_requests_total", "job", "job-late", "instance", "x")
	for ts := late; ts < late+(20*time.Minute).Milliseconds(); ts += 15000 {
		if _, err := app.Append(0, ls, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.Append(0, f.series[0], late-(30*time.Minute).Milliseconds()+7, 1e9); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	f.cached.Invalidate("", late-(30*time.Minute).Milliseconds()+7)
	for _, qs := range dashboardQueries {
		f.compare(qs, start, end, step)
	}
	if testutil.ToFloat64(f.cached.m.requests.WithLabelValues("partial")) == 0 {
		t.Fatal("the invalidation dropped whole results instead of the steps after the write")
	}
}

// Data dropped below the store's oldest time (retention) is gone from
// cached answers too.
func TestRetentionDropsSteps(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.advance(0)
	start, end, step := f.now.Add(-3*time.Hour), f.now, time.Minute
	for _, qs := range dashboardQueries {
		f.compare(qs, start, end, step)
	}
	cut := f.now.Add(-2 * time.Hour).UnixMilli()
	if err := f.db.Delete(context.Background(), math.MinInt64, cut-1,
		labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")); err != nil {
		t.Fatal(err)
	}
	f.minTime = cut
	for _, qs := range dashboardQueries {
		f.compare(qs, start, end, step)
	}
}

// The byte budget holds: old results are evicted, answers stay right.
func TestBudgetEvicts(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.advance(0)
	f.cached.store.max = 40 << 10
	for i := 0; i < 100; i++ {
		qs := dashboardQueries[i%5]
		start, end, step := f.randomRange()
		f.compare(qs, start, end, step)
	}
	if b := testutil.ToFloat64(f.cached.m.bytes); b > 40<<10 || b == 0 {
		t.Fatalf("cache holds %v bytes with a budget of %d", b, 40<<10)
	}
	if testutil.ToFloat64(f.cached.m.evictions) == 0 {
		t.Fatal("nothing was evicted")
	}
}

// Uncached names exactly the steps Exec then computes (the query guard
// charges a request for those alone): none for a request the cache answers.
func TestUncachedNamesTheStepsComputed(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.advance(0)
	cacheable := dashboardQueries[:len(dashboardQueries)-2] // no annotation, no @
	hits := 0
	var (
		qs         string
		start, end time.Time
		step       time.Duration
	)
	for i := 0; i < 300; i++ {
		if i%20 == 0 {
			f.advance(time.Duration(f.rng.IntN(90)) * time.Second)
		}
		if i%3 == 0 { // a new panel; otherwise a refresh of the last one
			qs = cacheable[f.rng.IntN(len(cacheable))]
			start, end, step = f.randomRange()
		}
		var want int64
		for _, r := range f.cached.Uncached(context.Background(), qs, start, end, step) {
			want += (r[1].UnixMilli()-r[0].UnixMilli())/step.Milliseconds() + 1
		}
		before := testutil.ToFloat64(f.cached.m.steps.WithLabelValues("miss"))
		f.compare(qs, start, end, step)
		if f.annotated(qs, start, end, step) {
			continue // the whole query ran again for its annotations
		}
		if got := int64(testutil.ToFloat64(f.cached.m.steps.WithLabelValues("miss")) - before); got != want {
			t.Fatalf("%s over %v..%v step %v: Uncached named %d steps, Exec computed %d", qs,
				start.Sub(f.now), end.Sub(f.now), step, want, got)
		}
		if want == 0 {
			hits++
		}
	}
	if hits < 50 {
		t.Fatalf("only %d of 300 requests were answered from the cache alone", hits)
	}
}

// annotated reports whether qs over start..end gives warnings or infos.
func (f *fixture) annotated(qs string, start, end time.Time, step time.Duration) bool {
	q, err := f.plain.NewRangeQuery(context.Background(), f.db, nil, qs, start, end, step)
	if err != nil {
		f.t.Fatal(err)
	}
	defer q.Close()
	return len(q.Exec(context.Background()).Warnings) > 0
}
