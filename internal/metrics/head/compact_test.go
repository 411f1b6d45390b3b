package head

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

func newOwnRange(t testing.TB, chunkRange int64) (*Head, string) {
	t.Helper()
	dir := t.TempDir()
	h, err := New(Options{ChunkDir: dir, ChunkRange: chunkRange, OnWriteError: func(err error) { t.Error(err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, dir
}

// alive says whether series s is scraped at ts: some stop at 1.5 h, some
// start at 1 h, some live from 2 h to 2.5 h only.
func alive(s int, ts int64) bool {
	switch {
	case s%7 == 3:
		return ts < 3*hour/2
	case s%11 == 5:
		return ts >= hour
	case s%13 == 2:
		return ts >= 2*hour && ts < 5*hour/2
	}
	return true
}

// churnLoad appends five hours of scrapes of churning series to both
// heads, as load does, fails if they take or refuse a sample differently,
// and calls between after each scrape's commit.
func churnLoad(t *testing.T, own *Head, prom *tsdb.Head, between func(ts int64)) {
	scrapes(t, own, prom, rand.New(rand.NewPCG(3, 7)), alive, false, between)
}

// TestCompactOldestAnswersAsPrometheusHead compacts the head as Prometheus's
// DB does, after every scrape, and wants PromQL over the blocks and the head
// to answer as over a Prometheus head that kept every sample, with the
// series that stopped gone from the head and the head chunk files they
// were in deleted.
func TestCompactOldestAnswersAsPrometheusHead(t *testing.T) {
	own, chunkDir := newOwnRange(t, hour)
	prom := newPrometheusHead(t, nil, hour)
	c, err := tsdb.NewLeveledCompactor(context.Background(), nil, nil, []int64{hour}, chunkenc.NewPool(), nil)
	if err != nil {
		t.Fatal(err)
	}
	blockDir := t.TempDir()
	var blocks []*tsdb.Block
	churnLoad(t, own, prom, func(int64) {
		blocks = append(blocks, compactAll(t, own, c, blockDir)...)
	})
	for i, b := range blocks {
		if m := b.Meta(); m.MaxTime != int64(i+1)*hour || m.MinTime < int64(i)*hour-hour/2 {
			t.Errorf("block %d spans [%d, %d), want the hour before %d", i, m.MinTime, m.MaxTime, m.MaxTime)
		}
	}
	if len(blocks) != 4 || own.MinTime() < 4*hour || own.MinTime() > 4*hour+15000 {
		t.Fatalf("%d blocks, head from %d; want 4 blocks and the head from 4h", len(blocks), own.MinTime())
	}
	live := 0
	for s := range 400 {
		live += btoi(alive(s, 5*hour-15000))
	}
	if own.NumSeries() != live {
		t.Errorf("%d series in the head, %d still scraped", own.NumSeries(), live)
	}
	sameAnswers(t, withBlocks(own, func() []*tsdb.Block { return blocks }), blockQueryable(func(mint, maxt int64) tsdb.BlockReader {
		return tsdb.NewRangeHead(prom, mint, maxt)
	}))
	if _, err := os.Stat(filepath.Join(chunkDir, "000001")); !os.IsNotExist(err) {
		t.Errorf("the first head chunk file is still there (%v)", err)
	}
}

// compactAll compacts the head until it is not compactable and opens the
// blocks written.
func compactAll(t *testing.T, h *Head, c *tsdb.LeveledCompactor, dir string) (blocks []*tsdb.Block) {
	t.Helper()
	compactAllLoaded(t, h, c, dir, func(b *tsdb.Block) { blocks = append(blocks, b) })
	if t.Failed() {
		t.FailNow()
	}
	return blocks
}

// withBlocks queries the head and the blocks merged, as Prometheus's DB
// queries its head and blocks. The head's querier is taken first: what is
// before its MinTime then was in blocks already.
func withBlocks(h *Head, blocks func() []*tsdb.Block) storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		hq, err := h.Querier(mint, maxt)
		if err != nil {
			return nil, err
		}
		qs := []storage.Querier{hq}
		for _, b := range blocks() {
			bq, err := tsdb.NewBlockQuerier(b, mint, maxt)
			if err != nil {
				return nil, errors.Join(err, storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge).Close())
			}
			qs = append(qs, bq)
		}
		return storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge), nil
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
