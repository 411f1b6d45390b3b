package fastrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"

	"github.com/vispyr/vispyr/internal/metrics/parallel"
	"github.com/vispyr/vispyr/internal/metrics/rangeparts/parttest"
)

// queries are the shapes this package computes (under the operators it
// rewrites beneath) and ones it leaves to the engine: histograms, an
// annotation, `@`, subqueries, labels copied by group_left.
var queries = []struct {
	qs   string
	fast bool // answered without falling back, whatever the range
}{
	{`sum by (job) (rate(http_requests_total[5m]))`, true},
	{`sum(rate(http_requests_total[1m]))`, true},
	{`sum without (instance) (increase(http_requests_total[10m]))`, true},
	{`sum by (job, instance) (rate(http_requests_total[2m] offset 10m))`, true},
	{`sum by (job) (rate(http_requests_total[3m] offset -2m))`, true},
	{`sum by (job) (increase(http_requests_total[45s]))`, true},
	{`sum by (job) (rate(http_requests_total[30s]))`, true},
	{`histogram_quantile(0.99, sum by (le) (rate(latency_bucket[5m])))`, true},
	{`histogram_quantile(0.5, sum by (le, instance) (rate(latency_bucket[1m])))`, true},
	{`topk(5, sum by (instance) (rate(http_requests_total[5m])))`, true},
	{`bottomk(2, sum by (i) (rate(ties_total[1m])))`, true},
	{`topk(1, sum by (i) (increase(ties_total[2m])))`, true},
	{`sum(rate(http_requests_total[5m])) / sum(rate(http_requests_total[1m]))`, true},
	{`sum by (job) (rate(http_requests_total[5m])) > 50`, true},
	{`avg by (job) (sum by (job, instance) (rate(http_requests_total[5m])))`, true},
	{`count(sum by (instance) (rate(http_requests_total[30s])))`, true},
	{`sum by (job) (rate(odd_total[5m]))`, true}, // NaN, ±Inf, negative values
	{`sum(rate({__name__=~"http_requests_total|odd_total"}[2m]))`, true},
	{`sum by (job) (rate(temperature[5m]))`, false},       // an info annotation
	{`sum(rate(rpc_duration_seconds[5m]))`, false},        // native histograms
	{`sum by (job) (rate(mixed_total[5m]))`, false},       // floats and histograms
	{`sum(rate(http_requests_total[5m] @ end()))`, false}, // not step-safe
	{`max_over_time(sum(rate(http_requests_total[1m]))[10m:30s])`, false},
	{`sum(rate(http_requests_total[5m])) + on() group_left(job) sum by (job) (rate(http_requests_total[5m]))`, false},
	{`rate(http_requests_total[5m])`, false},
	{`sum by (__name__) (rate(http_requests_total[5m]))`, false},
	{otherSamples, true},
	{`count({__name__=~"http_requests_total|temperature|odd_total"})`, true},
	{`count by (job) (http_requests_total)`, true},
	{`count without (instance) (http_requests_total offset 5m)`, true},
	{`sum by (job) (odd_total)`, true}, // NaN, ±Inf, negative values
	{`sum without (sensor) (temperature offset -3m)`, true},
	{`sum(http_requests_total) / count(http_requests_total)`, true},
	{`topk(3, count by (i) (ties_total))`, true},
	{`count by (__name__) ({__name__=~"http_requests_total|odd_total"})`, false},
	{`count({__name__=~".+"})`, false},    // native histograms
	{`sum by (job) (mixed_total)`, false}, // floats and histograms
	{`count(http_requests_total @ end())`, false},
}

// Fixture modes: samples in blocks and the head only, plus out-of-order
// ones, plus out-of-order ones at timestamps already held.
const (
	inOrder = iota
	outOfOrder
	duplicates
)

// otherSamples is a rate sum evaluated while the engine holds the many
// samples of another operand: its sample limit counts both.
const otherSamples = `max_over_time(temperature[10m]) * on() group_left() sum(rate(http_requests_total[5m]))`

type fixture struct {
	db    *tsdb.DB
	store disjointDB // db, as DisjointChunkQueryable
	plain promql.QueryEngine
	rng   *rand.Rand
	end   time.Time
	dup   bool // rewriting timestamps: errors expected
}

// newFixture writes 8 hours of samples, series starting and ending at
// random times, and compacts the oldest into blocks. Unless mode is
// inOrder it then writes out-of-order samples into them and a series
// back-dated into the head: queries read blocks, the head and the
// out-of-order head merged. With duplicates, some out-of-order samples
// have the timestamps of samples in blocks, with other values.
func newFixture(t *testing.T, mode int) *fixture {
	db := parttest.OpenDB(t)
	f := &fixture{db: db, store: disjointDB{db}, rng: rand.New(rand.NewPCG(3, 5)), plain: parttest.Engine(50_000_000)}
	f.end = time.UnixMilli(1_700_000_000_000).Truncate(time.Hour)
	start := f.end.Add(-8 * time.Hour)
	series := f.series()
	// Created in random order, so head references are not in label order.
	f.rng.Shuffle(len(series), func(i, j int) { series[i], series[j] = series[j], series[i] })
	app := db.Appender(context.Background())
	for i, ls := range series {
		from, to := start, f.end
		if i%4 == 1 && ls.Get("__name__") != "latency_bucket" { // series appear and disappear
			from = start.Add(time.Duration(f.rng.IntN(8*60)) * time.Minute)
			to = from.Add(time.Duration(f.rng.IntN(4*60)) * time.Minute)
		}
		f.write(t, app, ls, i, from, to)
	}
	parttest.Commit(t, app)
	parttest.Compact(t, db)
	if mode == inOrder {
		return f
	}
	app = db.Appender(context.Background())
	for i, ls := range series[:12] {
		// Off the 15 s grid: two values at one timestamp, one in a block
		// and one in the out-of-order head.
		from := start.Add(time.Duration(f.rng.IntN(6*240)) * 15 * time.Second).Add(7 * time.Second)
		f.write(t, app, ls, i, from, from.Add(20*time.Minute))
		if mode != duplicates {
			continue
		}
		// On the grid: a second value at timestamps a block holds, which
		// merged iterators may pick differently after a Seek than after a
		// Next.
		from = start.Add(time.Duration(f.rng.IntN(6*240)) * 15 * time.Second)
		f.dup = true
		f.write(t, app, ls, i, from, from.Add(30*time.Minute))
		f.dup = false
	}
	late := labels.FromStrings("__name__", "http_requests_total", "job", "job-late", "instance", "late")
	f.write(t, app, late, 1, f.end.Add(-5*time.Hour), f.end.Add(-4*time.Hour))
	parttest.Commit(t, app)
	return f
}

func (f *fixture) series() []labels.Labels {
	var out []labels.Labels
	for i := 0; i < 30; i++ {
		out = append(out, labels.FromStrings("__name__", "http_requests_total",
			"job", fmt.Sprintf("job-%d", i%3), "instance", strconv.Itoa(i%10), "path", strconv.Itoa(i/10)))
	}
	for i := 0; i < 6; i++ {
		out = append(out, labels.FromStrings("__name__", "temperature", "job", strconv.Itoa(i%2), "sensor", strconv.Itoa(i)))
		out = append(out, labels.FromStrings("__name__", "odd_total", "job", strconv.Itoa(i%2), "sensor", strconv.Itoa(i)))
		out = append(out, labels.FromStrings("__name__", "ties_total", "i", strconv.Itoa(i)))
	}
	for _, le := range []string{"0.1", "0.5", "1", "5", "+Inf"} {
		for i := 0; i < 3; i++ {
			out = append(out, labels.FromStrings("__name__", "latency_bucket", "le", le, "instance", strconv.Itoa(i)))
		}
	}
	for i := 0; i < 4; i++ {
		out = append(out, labels.FromStrings("__name__", "rpc_duration_seconds", "instance", strconv.Itoa(i)))
		out = append(out, labels.FromStrings("__name__", "mixed_total", "job", "a", "instance", strconv.Itoa(i)))
	}
	return out
}

// write appends ls's samples every 15 s over from..to: counters that
// sometimes reset, values of every magnitude (float sums depend on their
// order), native histograms; scrapes go missing, outages last minutes and
// series go stale now and then.
func (f *fixture) write(t *testing.T, app storage.Appender, ls labels.Labels, i int, from, to time.Time) {
	name := ls.Get("__name__")
	var v float64
	for ts := from.UnixMilli(); ts <= to.UnixMilli(); ts += 15000 {
		r := f.rng.IntN(1000)
		regular := name == "ties_total" || name == "latency_bucket"
		if r < 30 && !regular {
			continue // a missed scrape
		}
		if r < 32 && !regular {
			ts += int64(f.rng.IntN(40)) * 15000 // an outage
			continue
		}
		var err error
		switch {
		case r < 40 && i%3 == 0 && !regular:
			_, err = app.Append(0, ls, ts, math.Float64frombits(value.StaleNaN))
		case name == "rpc_duration_seconds", name == "mixed_total" && ls.Get("instance") < "2":
			_, err = app.AppendHistogram(0, ls, ts, tsdbutil.GenerateTestHistogram(ts/15000%500), nil)
		case name == "ties_total":
			_, err = app.Append(0, ls, ts, float64(ts/60000%7)*10)
		case name == "temperature":
			_, err = app.Append(0, ls, ts, f.rng.NormFloat64()*math.Pow(10, float64(f.rng.IntN(30)-10)))
		case name == "odd_total":
			odd := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -v, 0}
			if r < 100 {
				v = odd[r%len(odd)]
			} else if math.IsNaN(v) || math.IsInf(v, 0) {
				v = 0
			}
			v += f.rng.NormFloat64() * math.Pow(10, float64(f.rng.IntN(30)-10))
			_, err = app.Append(0, ls, ts, v)
		case name == "latency_bucket": // cumulative: no annotation from histogram_quantile
			le, _ := strconv.ParseFloat(ls.Get("le"), 64)
			_, err = app.Append(0, ls, ts, float64(ts/15000%100000)*math.Min(le, 10)*3)
		default:
			if r < 45 {
				v = math.Floor(f.rng.Float64() * 100) // a counter reset
			}
			v += math.Floor(f.rng.Float64()*1e4) / 100 * math.Pow(10, float64(i%7))
			_, err = app.Append(0, ls, ts, v)
		}
		if err != nil && name != "rpc_duration_seconds" && name != "mixed_total" && !f.dup {
			t.Fatal(err)
		}
	}
}

// randomRange draws a range query over the data, steps on and off the
// grid (longer and shorter than the windows), sometimes reaching past
// either end; a quarter start on the samples' 15 s grid, so windows and
// lookbacks begin and end exactly at samples.
func (f *fixture) randomRange() (time.Time, time.Time, time.Duration) {
	steps := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 7 * time.Second, 5 * time.Minute, 1234 * time.Millisecond, 10 * time.Minute}
	step := steps[f.rng.IntN(len(steps))]
	length := time.Duration(f.rng.Int64N(int64(9 * time.Hour)))
	if step < 10*time.Second {
		length /= 10
	}
	end := f.end.Add(time.Duration(f.rng.Int64N(int64(9*time.Hour))) - 8*time.Hour).Add(time.Duration(f.rng.IntN(1000)) * time.Millisecond)
	if f.rng.IntN(4) == 0 {
		return end.Add(-length).Truncate(15 * time.Second), end, step
	}
	return end.Add(-length), end, step
}

// disjointDB is a TSDB that offers its chunks when its sources are
// disjoint, as the metrics storage does.
type disjointDB struct{ *tsdb.DB }

func (d disjointDB) DisjointChunkQuerier(_ context.Context, mint, maxt int64) storage.ChunkQuerier {
	return DisjointChunkQuerier(d.DB, mint, maxt)
}

// Every query over random ranges answers bit for bit as the engine alone,
// with the same warnings and the same count of samples read, with the
// engine's lookback delta or the query's own: over blocks and the head,
// whose rate targets read whole chunks, and with out-of-order data and
// two values at one timestamp, where those over it read the series'
// iterators as the engine does.
func TestAnswersAsTheEngine(t *testing.T) {
	for _, c := range []struct {
		name string
		mode int
	}{{"in order", inOrder}, {"out of order with duplicates", duplicates}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.mode)
			byChunks, byIterators := answersAsTheEngine(t, f)
			t.Logf("rate targets read from chunks %d times, from iterators %d", byChunks, byIterators)
			if byChunks == 0 {
				t.Error("no rate target read whole chunks")
			}
			if c.mode == inOrder && byIterators > 0 {
				t.Errorf("%d rate targets over floats read from iterators without out-of-order data", byIterators)
			}
			if c.mode != inOrder && byIterators == 0 {
				t.Error("no rate target over out-of-order data read from iterators")
			}
		})
	}
}

func answersAsTheEngine(t *testing.T, f *fixture) (byChunks, byIterators int) {
	e := New(f.plain, Options{MaxSamples: 50_000_000})
	fast := 0
	const runs = 800
	for i := 0; i < runs; i++ {
		c := queries[i%len(queries)]
		start, end, step := f.randomRange()
		var opts promql.QueryOpts
		if i%3 == 2 {
			lookbacks := []time.Duration{time.Minute, 90 * time.Second, 10 * time.Minute}
			opts = promql.NewPrometheusQueryOpts(false, lookbacks[f.rng.IntN(len(lookbacks))], nil)
		}
		q, err := e.NewRangeQuery(context.Background(), f.store, opts, c.qs, start, end, step)
		if err != nil {
			t.Fatal(err)
		}
		res := q.Exec(context.Background())
		got := parttest.Render(c.qs, res)
		fq, rewritten := q.(*query)
		if rewritten && !fq.fellBack {
			fast++
		}
		if c.fast && rewritten { // no histograms, whose chunks send rate targets to the iterators
			byChunks += fq.read.chunks
			byIterators += fq.read.iterators
		}
		if c.fast && (!rewritten || fq.fellBack) {
			t.Errorf("%s fell back to the engine", c.qs)
		}
		if m, ok := res.Value.(promql.Matrix); ok && len(m) > 0 && !c.fast && rewritten && !fq.fellBack {
			t.Errorf("%s was computed here", c.qs)
		}
		gotSamples := q.Stats().Samples.TotalSamples
		q.Close()

		want, wantSamples := run(t, f.plain, f.db, opts, c.qs, start, end, step)
		if d := parttest.Diff(got, want); d != "" {
			t.Fatalf("%s over %v..%v step %v (opts %v): %s", c.qs, start.Sub(f.end), end.Sub(f.end), step, opts, d)
		}
		if gotSamples != wantSamples {
			t.Errorf("%s over %v..%v step %v (opts %v): %d samples counted, the engine %d", c.qs, start.Sub(f.end), end.Sub(f.end), step, opts, gotSamples, wantSamples)
		}
	}
	if fast < runs/2 {
		t.Fatalf("only %d of %d queries were computed here", fast, runs)
	}
	return byChunks, byIterators
}

// run is the engine's answer, rendered, and its count of samples.
func run(t *testing.T, e promql.QueryEngine, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (string, int64) {
	qry, err := e.NewRangeQuery(context.Background(), q, opts, qs, start, end, step)
	if err != nil {
		t.Fatal(err)
	}
	defer qry.Close()
	out := parttest.Render(qs, qry.Exec(context.Background()))
	return out, qry.Stats().Samples.TotalSamples
}

// A query over the sample limit gets the engine's error, one just under
// it the answer; a cancelled one the engine's cancellation.
func TestLimitsAndCancellation(t *testing.T) {
	f := newFixture(t, inOrder) // rate targets read whole chunks
	start, end := f.end.Add(-6*time.Hour), f.end
	for _, qs := range []string{`sum by (job) (rate(http_requests_total[5m]))`, `count by (job) (http_requests_total)`,
		otherSamples, `sum(rate(http_requests_total[5m])) / sum(rate(http_requests_total[1m]))`} {
		answers := func(limit int) bool {
			res := parttest.Range(t, parttest.Engine(limit), f.db, qs, start, end, 15*time.Second)
			return !strings.HasPrefix(res, "error:")
		}
		least := sort.Search(1_000_000, answers) // the engine's least sufficient limit
		if least == 1_000_000 || least < 1000 {
			t.Fatalf("%s: the engine's least sufficient limit is %d", qs, least)
		}
		for _, limit := range []int{least / 2, least - 1, least, least + 1} {
			limited := parttest.Engine(limit)
			want := parttest.Range(t, limited, f.db, qs, start, end, 15*time.Second)
			if got := parttest.Range(t, New(limited, Options{MaxSamples: limit}), f.store, qs, start, end, 15*time.Second); got != want {
				t.Fatalf("%s with the sample limit at %d (the least %d): %s\n%.300s\n%.300s", qs, limit, least, parttest.Diff(got, want), got, want)
			}
		}
	}

	qs := `sum by (job) (rate(http_requests_total[5m]))`
	q, err := New(f.plain, Options{MaxSamples: 50_000_000}).NewRangeQuery(context.Background(), f.store, nil, qs, start, end, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := q.Exec(ctx)
	var canceled promql.ErrQueryCanceled
	if !errors.As(res.Err, &canceled) {
		t.Fatalf("cancelled query answered %v", res.Err)
	}
}

// Through the parallel engine, as the API wires them (each part's rate
// sums computed here, every part reading the whole query's blocks), the
// answer is still the engine's alone. Without two values at one
// timestamp: a part starts with a Seek where the whole query reads on, so
// it may pick the other one, as the parallel engine alone does.
func TestInPartsAnswersAsTheEngine(t *testing.T) {
	for _, mode := range []int{inOrder, outOfOrder} {
		f := newFixture(t, mode)
		e := parallel.New(New(f.plain, Options{MaxSamples: 50_000_000}), parallel.Options{Parts: 3, MinSteps: 1})
		for i := 0; i < 100; i++ {
			qs := queries[i%len(queries)].qs
			start, end, step := f.randomRange()
			got := parttest.Range(t, e, f.store, qs, start, end, step)
			want := parttest.Range(t, f.plain, f.db, qs, start, end, step)
			if d := parttest.Diff(got, want); d != "" {
				t.Fatalf("%s over %v..%v step %v (mode %d): %s", qs, start.Sub(f.end), end.Sub(f.end), step, mode, d)
			}
		}
	}
}

// Whatever the query, rewriting it never panics, and a rewritten query
// parses.
func FuzzRewrite(f *testing.F) {
	for _, c := range queries {
		f.Add(c.qs)
	}
	f.Add(`sum by (job) (rate(x[5m])) / on (job) group_left sum by (job) (increase(y[1m] offset 5m))`)
	p := parser.NewParser(parser.Options{})
	f.Fuzz(func(t *testing.T, qs string) {
		rewritten, targets := rewrite(p, qs)
		if len(targets) == 0 {
			return
		}
		if _, err := p.ParseExpr(rewritten); err != nil {
			t.Fatalf("%q rewritten as %q: %v", qs, rewritten, err)
		}
	})
}
