package longterm

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

func TestDownsampleWindowsAndCounterPoints(t *testing.T) {
	stale := math.Float64frombits(value.StaleNaN)
	// Windows of 10 are (0,10], (10,20], (20,30]: 10 belongs to the first.
	ts := []int64{1, 5, 10, 11, 14, 15, 19, 25, 30}
	vs := []float64{3, 7, 9, 2, stale, 4, 6, 1, 5}
	a := downsample(ts, vs, 10)
	want := aggregates{
		ts:    []int64{10, 19, 30},
		count: []float64{3, 3, 2},
		sum:   []float64{19, 12, 6},
		min:   []float64{3, 2, 1},
		max:   []float64{9, 6, 5},
		// Counter points would be 6 of 9 samples: a gauge keeps none.
	}
	if fmt.Sprint(a) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", a, want)
	}
	// A counter, reset once: the first and last of each window, and both
	// sides of the drop.
	ts, vs = regular(40, 1, 1), make([]float64, 40)
	for i := range vs {
		vs[i] = float64(100 + i)
		if i >= 24 {
			vs[i] = float64(i - 24)
		}
	}
	a = downsample(ts, vs, 10)
	wantT := []int64{1, 10, 11, 20, 21, 24, 25, 30, 31, 40}
	wantV := []float64{100, 109, 110, 119, 120, 123, 0, 5, 6, 15}
	if fmt.Sprint(a.counterT, a.counterV) != fmt.Sprint(wantT, wantV) {
		t.Fatalf("counter points %v %v, want %v %v", a.counterT, a.counterV, wantT, wantV)
	}
	for _, c := range []struct{ t, w int64 }{{-10, -2}, {-9, -1}, {0, -1}, {1, 0}, {10, 0}, {11, 1}} {
		if got := window(c.t, 10); got != c.w {
			t.Errorf("window(%d) = %d, want %d", c.t, got, c.w)
		}
	}
}

// downsampledStore is a long-term store of two days of counters (with
// resets) and gauges, scraped every 20 s, downsampled at 5m and 1h, and
// the TSDB they came from.
func downsampledStore(t *testing.T) (*tsdb.DB, *Store, int64) {
	t.Helper()
	db := emptyTSDB(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewSource(4))
	const start = int64(1_700_006_400_000) // a UTC midnight
	vals := make([]float64, 8)
	for ts := start; ts < start+48*hour; ts += 20_000 {
		app := db.Appender(ctx)
		for i := range vals {
			switch {
			case i < 4 && rnd.Intn(500) == 0:
				vals[i] = float64(rnd.Intn(10)) // a restart
			case i < 4:
				vals[i] += float64(rnd.Intn(1500)) / 100
			default:
				vals[i] = float64(rnd.Intn(100000)) / 100
			}
			name := map[bool]string{true: "work_seconds_total", false: "temperature"}[i < 4]
			if _, err := app.Append(0, labels.FromStrings("__name__", name, "i", strconv.Itoa(i)), ts, vals[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.TempDir(), nil, 5*time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Rewrite(ctx, db.Blocks()); err != nil {
		t.Fatal(err)
	}
	return db, s, start
}

func queryable(s *Store) storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		if q := s.Querier(mint, maxt); q != nil {
			return q, nil
		}
		return storage.NoopQuerier(), nil
	})
}

// rawQueryable reads s's raw samples only: it hides the selections'
// functions, so no aggregate answers for them.
func rawQueryable(s *Store) storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		q, err := queryable(s).Querier(mint, maxt)
		return rawQuerier{q}, err
	})
}

type rawQuerier struct{ storage.Querier }

func (q rawQuerier) Select(ctx context.Context, sort bool, h *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	if h != nil {
		raw := *h
		raw.Func = ""
		h = &raw
	}
	return q.Querier.Select(ctx, sort, h, ms...)
}

// A range query whose step and range span five windows reads the
// aggregates (one sample per window, not the raw ones) and answers as the
// raw samples do (which answer as the TSDB: TestRewrittenBlocksAnswerAsTheTSDB).
func TestDownsampledQueriesAnswerAsRawSamples(t *testing.T) {
	_, s, start := downsampledStore(t)
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e8, Timeout: time.Minute})
	for _, c := range []struct {
		rng, step time.Duration
		windows   int // samples a series' selection yields per range
	}{
		{time.Hour, time.Hour, 12},        // 5m windows
		{6 * time.Hour, 6 * time.Hour, 6}, // 1h windows
	} {
		q := s.Querier(start, start+48*hour)
		ss := q.Select(context.Background(), false, &storage.SelectHints{Start: start + 1, End: start + c.rng.Milliseconds(),
			Step: c.step.Milliseconds(), Range: c.rng.Milliseconds(), Func: "max_over_time"},
			labels.MustNewMatcher(labels.MatchEqual, "i", "5"))
		if !ss.Next() {
			t.Fatalf("no series: %v", ss.Err())
		}
		if n := countSamples(t, ss.At()); n != c.windows {
			t.Fatalf("range %v step %v: selection yields %d samples, want %d (one per window)", c.rng, c.step, n, c.windows)
		}
		_ = q.Close()

		for _, f := range []string{"rate", "increase", "min_over_time", "max_over_time", "sum_over_time", "avg_over_time"} {
			for _, metric := range []string{"work_seconds_total", "temperature"} {
				expr := fmt.Sprintf("%s(%s[%s])", f, metric, c.rng)
				// The TSDB's head, not rewritten, is left out.
				end := start + (s.Metas()[0].MaxTime-start)/(6*hour)*(6*hour)
				from, to := time.UnixMilli(start).Add(c.rng), time.UnixMilli(end)
				raw := rangeQuery(t, eng, rawQueryable(s), expr, from, to, c.step)
				got := rangeQuery(t, eng, queryable(s), expr, from, to, c.step)
				if len(raw) != 4 || len(got) != len(raw) {
					t.Fatalf("%s: %d series, raw %d", expr, len(got), len(raw))
				}
				for i := range raw {
					if len(got[i].Floats) != len(raw[i].Floats) || len(raw[i].Floats) == 0 {
						t.Fatalf("%s %s: %d points, raw %d", expr, raw[i].Metric, len(got[i].Floats), len(raw[i].Floats))
					}
					for k, p := range raw[i].Floats {
						g := got[i].Floats[k]
						if g.T != p.T || math.Abs(g.F-p.F) > 1e-9*math.Abs(p.F) {
							t.Fatalf("%s %s at %d: %v, raw %v", expr, raw[i].Metric, p.T, g.F, p.F)
						}
					}
				}
			}
		}
	}
}

func countSamples(t *testing.T, s storage.Series) int {
	t.Helper()
	n := 0
	it := s.Iterator(nil)
	for it.Next() != 0 {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func rangeQuery(t *testing.T, eng *promql.Engine, q storage.Queryable, expr string, from, to time.Time, step time.Duration) promql.Matrix {
	t.Helper()
	qry, err := eng.NewRangeQuery(context.Background(), q, nil, expr, from, to, step)
	if err != nil {
		t.Fatal(err)
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("%s: %v", expr, res.Err)
	}
	m, err := res.Matrix()
	if err != nil {
		t.Fatal(err)
	}
	// Close hands the points back to the engine's pools: keep a copy.
	out := make(promql.Matrix, len(m))
	for i, s := range m {
		out[i] = promql.Series{Metric: s.Metric, Floats: slices.Clone(s.Floats)}
	}
	return out
}

func FuzzReadAggregate(f *testing.F) {
	f.Add(appendAggregates(nil, downsample(regular(100, 0, 15_000), make([]float64, 100), 300_000)), 4)
	f.Add(appendAggregates(nil, downsample([]int64{1, 2, 900_000}, []float64{5, 1, math.NaN()}, 300_000)), 0)
	f.Add([]byte{1, 0, 200, 1}, 1)
	// A length past MaxInt64, as CI's fuzzing once found.
	f.Add(binary.AppendUvarint([]byte{1, 0}, math.MaxUint64-1), 1)
	f.Fuzz(func(t *testing.T, b []byte, k int) {
		ts, vs, err := readAggregate(b, k%numAggrs, nil, nil)
		if err == nil && len(ts) != len(vs) {
			t.Fatalf("%d timestamps, %d values", len(ts), len(vs))
		}
	})
}

func TestCorruptDownsampleTableIsAnErrorNotAPanic(t *testing.T) {
	_, s, _ := downsampledStore(t)
	m := s.Metas()[0]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.dir, m.ULID.String(), downsampleFile(300_000))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Tables longer than the file, or reaching into its magic; the last
	// one in a file cut to a multiple of 16 bytes, with one entry a byte.
	cut := len(b) / 16 * 16
	for _, n := range []uint64{1 << 62, 1 << 60, uint64(len(b)-8-len(downsampleMagic))/16 + 1, uint64(cut) / 16} {
		if n == uint64(cut)/16 {
			b = b[:cut]
		}
		binary.BigEndian.PutUint64(b[len(b)-8:], n)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if st, err := Open(s.dir, nil); err == nil {
			_ = st.Close()
			t.Fatalf("a table of %d series in %d bytes opened", n, len(b))
		}
	}
}
