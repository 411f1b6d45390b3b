package parallel

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"

	"github.com/vispyr/vispyr/internal/metrics/rangeparts/parttest"
)

// queries are the dashboards' shapes and the functions whose answers depend
// on the order series reach them (sums of floats, topk ties), on
// counter resets, staleness and histograms.
var queries = []string{
	`sum by (job) (rate(http_requests_total[5m]))`,
	`sum(rate(http_requests_total[1m]))`,
	`histogram_quantile(0.99, sum by (le) (rate(latency_bucket[5m])))`,
	`topk(3, rate(http_requests_total[1m]))`,
	`topk(5, sum by (instance) (rate(http_requests_total[5m])))`,
	`bottomk(2, temperature)`,
	`topk(2, ties)`, `bottomk(1, ties)`, // equal values: the first series in input order wins
	`count({__name__=~".+"})`,
	`count(http_requests_total)`,
	`sum(temperature)`, `avg by (room) (temperature)`, `stddev(temperature)`, `quantile(0.3, temperature)`,
	`count_values("v", round(temperature))`,
	`increase(http_requests_total[10m])`, `resets(http_requests_total[15m])`, `changes(temperature[5m])`,
	`deriv(temperature[5m])`, `predict_linear(temperature[10m], 600)`,
	`rate(http_requests_total[5m] offset 10m)`,
	`sum(rate(http_requests_total[2m] offset -3m))`,
	`max_over_time(rate(http_requests_total[1m])[10m:30s])`,
	`avg_over_time(sum(http_requests_total)[7m:])`,
	`timestamp(http_requests_total)`,
	`http_requests_total`,
	`{__name__=~".+"}`,
	`sum(rpc_duration_seconds)`,
	`histogram_quantile(0.9, sum(rate(rpc_duration_seconds[5m])))`,
	`histogram_count(rate(rpc_duration_seconds[5m]))`,
	`sum by (instance) (increase(rpc_duration_seconds[5m]))`,
	`vector(time())`,
	`absent(nothing)`,
	`rate(temperature[5m])`,                             // an info annotation: the whole query's
	`http_requests_total + on() group_left temperature`, // an error: the whole query's
	`sum(http_requests_total @ end())`,                  // not step-safe: never split
}

type fixture struct {
	db    *tsdb.DB
	plain promql.QueryEngine
	rng   *rand.Rand
	end   time.Time
}

// newFixture writes 8 hours of samples, compacts the oldest into blocks,
// then writes out-of-order samples into them and a series back-dated into
// the head: queries read blocks, the head and the out-of-order head merged.
func newFixture(t *testing.T) *fixture {
	db := parttest.OpenDB(t)
	f := &fixture{db: db, rng: rand.New(rand.NewPCG(7, 11)), plain: parttest.Engine(50_000_000)}
	f.end = time.UnixMilli(1_700_000_000_000).Truncate(time.Hour)
	start := f.end.Add(-8 * time.Hour)
	series := f.series()
	// Created in random order, so head references are not in label order.
	f.rng.Shuffle(len(series), func(i, j int) { series[i], series[j] = series[j], series[i] })
	app := db.Appender(context.Background())
	for i, ls := range series {
		f.write(t, app, ls, i, start, f.end)
	}
	parttest.Commit(t, app)
	parttest.Compact(t, db)
	app = db.Appender(context.Background())
	for i, ls := range series[:10] {
		// Off the 15 s grid: two different values at one timestamp, one in
		// a block and one in the out-of-order head, are merged differently
		// depending on the range a query selects, by the engine alone too.
		from := start.Add(time.Duration(f.rng.IntN(6*240)) * 15 * time.Second).Add(7 * time.Second)
		f.write(t, app, ls, i, from, from.Add(20*time.Minute))
	}
	late := labels.FromStrings("__name__", "http_requests_total", "job", "job-late", "instance", "late")
	f.write(t, app, late, 1, f.end.Add(-5*time.Hour), f.end.Add(-4*time.Hour))
	parttest.Commit(t, app)
	return f
}

func (f *fixture) series() []labels.Labels {
	var out []labels.Labels
	for i := 0; i < 24; i++ {
		out = append(out, labels.FromStrings("__name__", "http_requests_total",
			"job", fmt.Sprintf("job-%d", i%3), "instance", strconv.Itoa(i)))
	}
	for i := 0; i < 8; i++ {
		out = append(out, labels.FromStrings("__name__", "temperature", "room", strconv.Itoa(i%3), "sensor", strconv.Itoa(i)))
	}
	for _, le := range []string{"0.1", "0.5", "1", "5", "+Inf"} {
		for i := 0; i < 3; i++ {
			out = append(out, labels.FromStrings("__name__", "latency_bucket", "le", le, "instance", strconv.Itoa(i)))
		}
	}
	for i := 0; i < 6; i++ {
		out = append(out, labels.FromStrings("__name__", "ties", "i", strconv.Itoa(i)))
	}
	for i := 0; i < 4; i++ {
		out = append(out, labels.FromStrings("__name__", "rpc_duration_seconds", "instance", strconv.Itoa(i)))
	}
	return out
}

// write appends ls's samples every 15 s over from..to: counters that
// sometimes reset, gauges of every magnitude (float sums depend on their
// order), native histograms integer and float; scrapes go missing and
// series go stale now and then.
func (f *fixture) write(t *testing.T, app storage.Appender, ls labels.Labels, i int, from, to time.Time) {
	name := ls.Get("__name__")
	var v float64
	for ts := from.UnixMilli(); ts <= to.UnixMilli(); ts += 15000 {
		r := f.rng.IntN(100)
		if r < 3 && name != "ties" {
			continue // a missed scrape
		}
		var err error
		switch {
		case r == 3 && i%3 == 0 && name != "ties":
			_, err = app.Append(0, ls, ts, math.Float64frombits(value.StaleNaN))
		case name == "rpc_duration_seconds" && i%2 == 0:
			_, err = app.AppendHistogram(0, ls, ts, tsdbutil.GenerateTestHistogram(ts/15000%500), nil)
		case name == "rpc_duration_seconds":
			fh := tsdbutil.GenerateTestFloatHistogram(ts / 15000 % 500)
			fh.Sum = f.rng.Float64() * 1e3
			_, err = app.AppendHistogram(0, ls, ts, nil, fh)
		case name == "ties":
			_, err = app.Append(0, ls, ts, float64(ts/60000%7))
		case name == "temperature":
			_, err = app.Append(0, ls, ts, f.rng.NormFloat64()*math.Pow(10, float64(f.rng.IntN(30)-10)))
		default:
			if r == 4 {
				v = 0 // a counter reset
			}
			v += math.Floor(f.rng.Float64()*1e4) / 100
			_, err = app.Append(0, ls, ts, v)
		}
		if err != nil && name != "rpc_duration_seconds" {
			t.Fatal(err)
		}
	}
}

// randomRange draws a range query over the data, steps on and off the
// grid, sometimes reaching past either end.
func (f *fixture) randomRange() (time.Time, time.Time, time.Duration) {
	steps := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 7 * time.Second, 5 * time.Minute, 1234 * time.Millisecond}
	step := steps[f.rng.IntN(len(steps))]
	length := time.Duration(f.rng.Int64N(int64(9 * time.Hour)))
	if step < 10*time.Second {
		length /= 10
	}
	end := f.end.Add(time.Duration(f.rng.Int64N(int64(9*time.Hour))) - 8*time.Hour)
	return end.Add(-length), end, step
}

// Every query over random ranges answers bit for bit as the engine alone,
// in 2, 3 and 7 parts.
func TestPartsAnswerAsTheEngine(t *testing.T) {
	f := newFixture(t)
	split := 0
	for i := 0; i < 400; i++ {
		qs := queries[i%len(queries)]
		start, end, step := f.randomRange()
		e := New(f.plain, Options{Parts: []int{2, 3, 7}[i%3], MinSteps: 1})
		q, err := e.NewRangeQuery(context.Background(), f.db, nil, qs, start, end, step)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := q.(*query); ok {
			split++
		}
		got := parttest.Render(qs, q.Exec(context.Background()))
		q.Close()
		want := parttest.Range(t, f.plain, f.db, qs, start, end, step)
		if d := parttest.Diff(got, want); d != "" {
			t.Fatalf("%s over %v..%v step %v in %d parts: %s", qs, start.Sub(f.end), end.Sub(f.end), step, e.opts.Parts, d)
		}
	}
	if split < 300 {
		t.Fatalf("only %d of 400 queries were split", split)
	}
}
