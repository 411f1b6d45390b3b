package head

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

const hour = 3600 * 1000

func newOwn(t testing.TB) *Head {
	t.Helper()
	h, err := New(Options{ChunkDir: t.TempDir(), OnWriteError: func(err error) { t.Error(err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newPrometheus(t testing.TB) *tsdb.Head { return newPrometheusHead(t, nil, 0) }

// newPrometheusHead is Prometheus's head as a DB without blocks opens it,
// its metrics registered with reg (nil: none), with chunkRange (0: the
// default).
func newPrometheusHead(t testing.TB, reg prometheus.Registerer, chunkRange int64) *tsdb.Head {
	t.Helper()
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkDirRoot = t.TempDir()
	if chunkRange > 0 {
		opts.ChunkRange = chunkRange
	}
	opts.IsolationDisabled = true
	h, err := tsdb.NewHead(reg, nil, nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Init(math.MinInt64); err != nil {
		t.Fatal(err)
	}
	return h
}

// load appends the same scrapes to both heads, in commits of a few hundred
// samples, and fails if they take or refuse a sample differently. Series
// come and go, some samples repeat, arrive late or out of order.
func load(t *testing.T, own *Head, prom *tsdb.Head, seed uint64) {
	churn := func(s int, ts int64) bool { return (s%7 == 3 && ts > 2*hour) || (s%11 == 5 && ts < hour) }
	scrapes(t, own, prom, rand.New(rand.NewPCG(seed, 7)), func(s int, ts int64) bool { return !churn(s, ts) }, true, nil)
}

// scrapes appends five hours of scrapes of 400 series, those alive at each
// scrape, to both heads, a commit a scrape, and fails if the heads take or
// refuse a sample differently: samples are jittered, one in 200 late (out
// of order); values are counters, or with gauges a fifth two-decimal
// gauges. between, if set, runs after each scrape's commit.
func scrapes(t *testing.T, own *Head, prom *tsdb.Head, rng *rand.Rand, alive func(s int, ts int64) bool, gauges bool, between func(ts int64)) {
	ctx := context.Background()
	var sb labels.ScratchBuilder
	for ts := int64(0); ts < 5*hour; ts += 15000 {
		oa, pa := own.Appender(ctx), prom.Appender(ctx)
		for s := range 400 {
			if !alive(s, ts) {
				continue
			}
			st := ts + int64(rng.IntN(3000)) - 1500
			if rng.IntN(200) == 0 {
				st -= 40000 // late: out of order
			}
			v := float64(ts/1000)*float64(s%13) + float64(rng.IntN(3))
			if gauges && s%5 == 0 {
				v = math.Round(rng.NormFloat64()*100) / 100
			}
			lset := seriesLabels(&sb, s)
			_, perr := pa.Append(0, lset, st, v)
			_, oerr := oa.Append(0, lset, st, v)
			if kind(perr) != kind(oerr) {
				t.Fatalf("series %d at %d: Prometheus's head says %v, ours %v", s, st, perr, oerr)
			}
		}
		if err := errors.Join(pa.Commit(), oa.Commit()); err != nil {
			t.Fatal(err)
		}
		if between != nil {
			between(ts)
		}
	}
}

func kind(err error) error {
	for _, k := range []error{storage.ErrOutOfOrderSample, storage.ErrDuplicateSampleForTimestamp, storage.ErrOutOfBounds, tsdb.ErrInvalidSample} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

func seriesLabels(sb *labels.ScratchBuilder, s int) labels.Labels {
	sb.Reset()
	sb.Add("__name__", "m_"+strconv.Itoa(s%9))
	sb.Add("instance", "host-"+strconv.Itoa(s%17)+":9100")
	sb.Add("job", [...]string{"node", "api", "db"}[s%3])
	if s%4 == 0 {
		sb.Add("le", strconv.Itoa(s%6))
	}
	sb.Add("series", strconv.Itoa(s))
	sb.Sort()
	return sb.Labels()
}

var queries = []string{
	`m_1`,
	`sum by (job) (rate(m_2[5m]))`,
	`histogram_quantile(0.9, sum by (le) (rate({__name__=~"m_[04]", le!=""}[5m])))`,
	`count({__name__=~".+"})`,
	`topk(5, sum by (instance) (rate({job=~"api|db"}[10m])))`,
	`count by (__name__) ({instance=~"host-1.*", job!="node", series!~"1.*"})`,
	`max_over_time(m_5[30m]) - min_over_time(m_5[30m])`,
	`absent(m_3{job="nope"})`,
	`increase(m_6{series="6"}[1h])`,
}

// TestQueriesAnswerAsPrometheusHead runs dashboard-style range queries
// through PromQL over both heads, as blocks (tsdb.NewBlockQuerier), and
// over a block the compactor writes from each, and wants the same answers.
func TestQueriesAnswerAsPrometheusHead(t *testing.T) {
	own, prom := newOwn(t), newPrometheus(t)
	load(t, own, prom, 1)
	if own.MinTime() != prom.MinTime() || own.MaxTime() != prom.MaxTime() {
		t.Fatalf("own head spans [%d, %d], Prometheus's [%d, %d]", own.MinTime(), own.MaxTime(), prom.MinTime(), prom.MaxTime())
	}
	ownQ := blockQueryable(func(mint, maxt int64) tsdb.BlockReader { return own.Range(mint, maxt) })
	promQ := blockQueryable(func(mint, maxt int64) tsdb.BlockReader { return tsdb.NewRangeHead(prom, mint, maxt) })
	sameAnswers(t, ownQ, promQ)

	ownBlock := compact(t, own.Range(0, 4*hour-1))
	promBlock := compact(t, tsdb.NewRangeHead(prom, 0, 4*hour-1))
	sameAnswers(t, blockQueryable(func(int64, int64) tsdb.BlockReader { return ownBlock }),
		blockQueryable(func(int64, int64) tsdb.BlockReader { return promBlock }))
}

func blockQueryable(block func(mint, maxt int64) tsdb.BlockReader) storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		return tsdb.NewBlockQuerier(block(mint, maxt), mint, maxt)
	})
}

func sameAnswers(t *testing.T, own, prom storage.Queryable) {
	t.Helper()
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e8, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	start, end := time.UnixMilli(0), time.UnixMilli(5*hour)
	for _, q := range queries {
		var got [2]string
		for i, db := range []storage.Queryable{own, prom} {
			qry, err := eng.NewRangeQuery(context.Background(), db, nil, q, start, end, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			res := qry.Exec(context.Background())
			if res.Err != nil {
				t.Fatalf("%s: %v", q, res.Err)
			}
			got[i] = res.Value.String()
			qry.Close()
		}
		if got[0] != got[1] {
			t.Errorf("%s:\nown head:\n%.2000s\nPrometheus's head:\n%.2000s", q, got[0], got[1])
		}
		if len(got[1]) < 10 {
			t.Errorf("%s: an empty answer (%q) tells nothing", q, got[1])
		}
	}
	sameLabels(t, own, prom)
}

// sameLabels compares the label names and values the two give, with and
// without matchers, as the label APIs ask them.
func sameLabels(t *testing.T, own, prom storage.Queryable) {
	t.Helper()
	ctx := context.Background()
	m := labels.MustNewMatcher(labels.MatchRegexp, "job", "api|db")
	for _, ms := range [][]*labels.Matcher{nil, {m}} {
		var names [2][]string
		var values [2][]string
		for i, db := range []storage.Queryable{own, prom} {
			q, err := db.Querier(0, 5*hour)
			if err != nil {
				t.Fatal(err)
			}
			names[i], _, err = q.LabelNames(ctx, nil, ms...)
			if err != nil {
				t.Fatal(err)
			}
			values[i], _, err = q.LabelValues(ctx, "instance", nil, ms...)
			if err != nil {
				t.Fatal(err)
			}
			q.Close()
		}
		if !slices.Equal(names[0], names[1]) || !slices.Equal(values[0], values[1]) || len(values[1]) == 0 {
			t.Errorf("matchers %v: own head's names %v values %v; Prometheus's %v %v", ms, names[0], values[0], names[1], values[1])
		}
	}
}

// compact writes the block range r makes, as Prometheus's head compaction
// does, and opens it.
func compact(t *testing.T, r interface {
	tsdb.BlockReader
	MinTime() int64
	BlockMaxTime() int64
}) *tsdb.Block {
	t.Helper()
	dir := t.TempDir()
	c, err := tsdb.NewLeveledCompactor(context.Background(), nil, nil, []int64{2 * hour}, chunkenc.NewPool(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.Write(dir, r, r.MinTime(), r.BlockMaxTime(), nil)
	if err != nil || len(ids) != 1 {
		t.Fatalf("compact %v: blocks %v, %v", r, ids, err)
	}
	b, err := tsdb.OpenBlock(nil, filepath.Join(dir, ids[0].String()), chunkenc.NewPool(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
