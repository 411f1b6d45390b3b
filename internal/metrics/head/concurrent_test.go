package head

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestConcurrentAppendQueryCompact appends churning series from several
// writers while PromQL queries the blocks and the head and the head is
// compacted into blocks (a chunk range a minute of sample time, which
// advances a second a commit), and wants every sample a Commit took
// (returned nil for) in a block or the head afterwards, and no query to
// fail.
func TestConcurrentAppendQueryCompact(t *testing.T) {
	const chunkRange = 60000
	h, _ := newOwnRange(t, chunkRange)
	c, err := tsdb.NewLeveledCompactor(context.Background(), nil, nil, []int64{chunkRange}, chunkenc.NewPool(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		clock    atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
		blocksMu sync.Mutex
		blocks   []*tsdb.Block
	)
	blockList := func() []*tsdb.Block {
		blocksMu.Lock()
		defer blocksMu.Unlock()
		return blocks
	}
	committed := make([]map[string][]int64, 3)
	for w := range committed {
		wg.Go(func() { committed[w] = write(t, h, w, &clock, &stop) })
	}
	var queries atomic.Int64
	wg.Go(func() {
		for !stop.Load() {
			query(t, withBlocks(h, blockList), clock.Load())
			queries.Add(1)
		}
	})
	dir := t.TempDir()
	wg.Go(func() {
		for !stop.Load() {
			compactAllLoaded(t, h, c, dir, func(b *tsdb.Block) {
				blocksMu.Lock()
				blocks = append(blocks, b)
				blocksMu.Unlock()
			})
			h.Compact()
			time.Sleep(time.Millisecond)
		}
	})
	time.Sleep(3 * time.Second)
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	checkAllThere(t, withBlocks(h, blockList), committed)
	t.Logf("%d blocks, %d queries, %d series left in the head, sample time %d s", len(blocks), queries.Load(), h.NumSeries(), clock.Load()/1000)
	if len(blocks) < 3 {
		t.Errorf("only %d blocks were written; the test proves little", len(blocks))
	}
}

// write appends, commit after commit, a sample to each of 100 series of
// writer w at the clock's time, a second later each time, and returns the
// samples of the commits that succeeded by series. A fifth of its series
// are replaced by new ones every 20 s. It passes refs with labels, as
// Vispyr's series cache does.
func write(t *testing.T, h *Head, w int, clock *atomic.Int64, stop *atomic.Bool) map[string][]int64 {
	committed := map[string][]int64{}
	refs := map[string]storage.SeriesRef{}
	var sb labels.ScratchBuilder
	for !stop.Load() {
		ts := clock.Add(1000)
		app := h.Appender(context.Background())
		var took []string
		for slot := range 100 {
			gen := int64(0)
			if slot%5 == 0 {
				gen = ts / 20000
			}
			sb.Reset()
			sb.Add("__name__", "m")
			sb.Add("gen", strconv.FormatInt(gen, 10))
			sb.Add("slot", strconv.Itoa(slot))
			sb.Add("w", strconv.Itoa(w))
			lset := sb.Labels()
			key := lset.String()
			ref, err := app.Append(refs[key], lset, ts, float64(ts))
			if err != nil {
				continue // out of bounds if other writers ran far ahead
			}
			refs[key] = ref
			took = append(took, key)
		}
		if err := app.Commit(); err != nil {
			continue
		}
		for _, key := range took {
			committed[key] = append(committed[key], ts)
		}
	}
	return committed
}

// query runs a range query over the last five minutes of sample time.
func query(t *testing.T, db storage.Queryable, now int64) {
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e8, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	for _, q := range []string{`count by (w) (m)`, `sum by (slot) (rate(m[1m]))`} {
		qry, err := eng.NewRangeQuery(context.Background(), db, nil, q, time.UnixMilli(now-300000), time.UnixMilli(now), 10*time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		if res := qry.Exec(context.Background()); res.Err != nil {
			t.Errorf("%s: %v", q, res.Err)
		}
		qry.Close()
	}
}

// compactAllLoaded compacts the head until it is not compactable, handing
// each block written to add before the head drops its samples.
func compactAllLoaded(t *testing.T, h *Head, c *tsdb.LeveledCompactor, dir string, add func(*tsdb.Block)) {
	for {
		_, ok, err := h.CompactOldest(context.Background(), c, dir, func(id ulid.ULID) error {
			b, err := tsdb.OpenBlock(nil, filepath.Join(dir, id.String()), chunkenc.NewPool(), nil)
			if err != nil {
				return err
			}
			t.Cleanup(func() { b.Close() })
			add(b)
			return nil
		})
		if err != nil {
			t.Error(err)
			return
		}
		if !ok {
			return
		}
	}
}

// checkAllThere wants every committed sample in db.
func checkAllThere(t *testing.T, db storage.Queryable, committed []map[string][]int64) {
	q, err := db.Querier(0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	have := map[string]map[int64]bool{}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	for ss.Next() {
		ts := map[int64]bool{}
		it := ss.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			t, v := it.At()
			ts[t] = v == float64(t)
		}
		have[ss.At().Labels().String()] = ts
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, byKey := range committed {
		for key, tss := range byKey {
			for _, ts := range tss {
				if !have[key][ts] {
					t.Fatalf("%s at %d was committed but is in no block nor the head", key, ts)
				}
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no sample was committed")
	}
	t.Logf("%d committed samples, all found", n)
}
