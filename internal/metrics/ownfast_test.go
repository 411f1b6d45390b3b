package metrics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"

	"github.com/vispyr/vispyr/internal/metrics/fastrate"
	"github.com/vispyr/vispyr/internal/metrics/rangeparts/parttest"
)

// TestOwnHeadFastRateAnswersAsTheEngine: with the own head, fastrate reads
// rate windows from whole chunks where no two sources overlap (the own
// head, its blocks, the TSDB's blocks), and leaves to the iterators the
// ranges where the TSDB's head holds floats the own head refused; every
// answer is the engine's.
func TestOwnHeadFastRateAnswersAsTheEngine(t *testing.T) {
	ownHeadInterval = 50 * time.Millisecond
	defer func(was time.Duration) { ownHeadInterval = was }(ownHeadInterval)
	s := ownHeadOpener(t, t.TempDir())()
	defer s.Close()
	const hour = int64(3600_000)
	end := time.Now().Add(-time.Minute).UnixMilli()
	start := end - 5*hour
	rng := rand.New(rand.NewPCG(3, 4))
	app := s.AppenderV2(context.Background())
	for i := range 60 {
		ls := labels.FromStrings("__name__", "http_requests_total", "job", fmt.Sprint("job", i%4), "instance", fmt.Sprint(i))
		v := 0.0
		for ts := start; ts <= end; ts += 15_000 {
			v += float64(rng.IntN(100))
			if _, err := app.Append(0, ls, 0, ts, v, nil, nil, storage.AOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	hist := labels.FromStrings("__name__", "rpc_duration_seconds", "job", "job0")
	for k, ts := 0, end-hour; ts <= end; k, ts = k+1, ts+15_000 {
		if _, err := app.Append(0, hist, 0, ts, 0, tsdbutil.GenerateTestHistogram(int64(k)), nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	// Out-of-order floats the own head refuses go to the TSDB's head, in
	// the last ten minutes.
	app = s.AppenderV2(context.Background())
	for i := range 5 {
		ls := labels.FromStrings("__name__", "http_requests_total", "job", fmt.Sprint("job", i%4), "instance", fmt.Sprint(i))
		if _, err := app.Append(0, ls, 0, end-5*60_000+7_000, 1e6, nil, nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.def.own.head.Compactable() || len(s.DB().Blocks()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the own head wrote no block in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx := context.Background()
	if q := s.DisjointChunkQuerier(ctx, start, end-2*hour); q == nil {
		t.Error("no chunk querier over the own head's blocks and head, where nothing overlaps")
	} else {
		q.Close()
	}
	if q := s.DisjointChunkQuerier(ctx, end-20*60_000, end); q != nil {
		q.Close()
		t.Error("a chunk querier over the refused floats in the TSDB's head")
	}

	engine := parttest.Engine(50_000_000)
	fast := fastrate.New(engine, fastrate.Options{MaxSamples: 50_000_000})
	for _, qs := range []string{
		`sum by (job) (rate(http_requests_total[5m]))`,
		`topk(3, sum by (instance) (rate(http_requests_total[2m])))`,
		`sum(increase(http_requests_total[10m]))`,
		`sum(rate(rpc_duration_seconds[5m]))`,
	} {
		for range 15 {
			from := start + rng.Int64N(5*hour)
			to := min(end, from+rng.Int64N(3*hour))
			step := time.Duration(15+rng.IntN(300)) * time.Second
			got := parttest.Range(t, fast, s, qs, time.UnixMilli(from), time.UnixMilli(to), step)
			want := parttest.Range(t, engine, s, qs, time.UnixMilli(from), time.UnixMilli(to), step)
			if d := parttest.Diff(got, want); d != "" {
				t.Fatalf("%s over [%d, %d] step %v: %s", qs, from-end, to-end, step, d)
			}
		}
	}
}
