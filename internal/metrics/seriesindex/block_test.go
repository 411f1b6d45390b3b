package seriesindex

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/tombstones"
)

// sampleBlock is a tsdb.BlockReader over an Index whose series each hold
// one sample, at sampleT with the series' ref as its value, built as a head
// will build one on Reader: Reader plus Series and a chunk reader.
type sampleBlock struct{ ix *Index }

const sampleT = 1000

type sampleReader struct{ headReader }

func (r sampleReader) Series(ref storage.SeriesRef, b *labels.ScratchBuilder, chks *[]chunks.Meta) error {
	if err := r.headReader.Series(ref, b, chks); err != nil || chks == nil {
		return err
	}
	*chks = append(*chks, chunks.Meta{Ref: chunks.ChunkRef(ref), MinTime: sampleT, MaxTime: sampleT})
	return nil
}

type sampleChunks struct{}

func (sampleChunks) ChunkOrIterable(m chunks.Meta) (chunkenc.Chunk, chunkenc.Iterable, error) {
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		return nil, nil, err
	}
	app.Append(0, sampleT, float64(m.Ref))
	return c, nil, nil
}

func (sampleChunks) Close() error { return nil }

func (b sampleBlock) Index() (tsdb.IndexReader, error) {
	return sampleReader{headReader{b.ix.Reader()}}, nil
}
func (sampleBlock) Chunks() (tsdb.ChunkReader, error) { return sampleChunks{}, nil }
func (sampleBlock) Tombstones() (tombstones.Reader, error) {
	return tombstones.NewMemTombstones(), nil
}
func (sampleBlock) Meta() tsdb.BlockMeta {
	return tsdb.BlockMeta{MinTime: sampleT, MaxTime: sampleT + 1}
}
func (sampleBlock) Size() int64 { return 0 }

// TestQuerierAndCompactorOverReader runs Prometheus's block querier and
// leveled compactor over a Reader whose index had series removed, and
// checks that they select, sort and write the series a head holding the
// same ones selects, each with its own sample.
func TestQuerierAndCompactorOverReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	c := newChurn(t, rng)
	pool := randomSeries(rng, 1500)
	c.add(pool, 0.7)
	c.remove(0.3)
	c.add(pool, 0.3)
	h := openHead(t, c.survivors())
	head := tsdb.NewRangeHead(h, math.MinInt64, math.MaxInt64)

	compactor, err := tsdb.NewLeveledCompactor(context.Background(), nil, nil, []int64{1}, nil, nil)
	if err != nil {
		t.Fatalf("compactor: %v", err)
	}
	dir := t.TempDir()
	ids, err := compactor.Write(dir, sampleBlock{c.ix}, sampleT, sampleT+1, nil)
	if err != nil || len(ids) != 1 {
		t.Fatalf("write block: %v, %v", ids, err)
	}
	written, err := tsdb.OpenBlock(nil, filepath.Join(dir, ids[0].String()), nil, nil)
	if err != nil {
		t.Fatalf("open block: %v", err)
	}
	defer written.Close()
	wir, err := written.Index()
	if err != nil {
		t.Fatalf("block index: %v", err)
	}
	defer wir.Close()
	got, want := iterStrings(t, wir.Symbols()), iterStrings(t, c.ix.Reader().Symbols())
	if !slices.Equal(got, want) {
		t.Fatalf("block symbols: %s", firstDiff(got, want))
	}
	for _, b := range []tsdb.BlockReader{sampleBlock{c.ix}, written} {
		for range 30 {
			checkSelect(t, c, b, head, randomMatchers(rng))
		}
		checkSelect(t, c, b, head, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".*")})
	}
}

// checkSelect compares a sorted Select on b with one on the head: the same
// label sets in the same order, each with its ref's sample.
func checkSelect(t *testing.T, c *churn, b, head tsdb.BlockReader, ms []*labels.Matcher) {
	t.Helper()
	got, want := selectSorted(t, b, ms, c), selectSorted(t, head, ms, nil)
	if !slices.Equal(got, want) {
		t.Fatalf("Select(%v): %d series, head %d: %s", ms, len(got), len(want), firstDiff(got, want))
	}
}

func selectSorted(t *testing.T, b tsdb.BlockReader, ms []*labels.Matcher, c *churn) []string {
	t.Helper()
	q, err := tsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatalf("querier: %v", err)
	}
	defer q.Close()
	var out []string
	ss := q.Select(context.Background(), true, nil, ms...)
	for ss.Next() {
		s := ss.At()
		out = append(out, s.Labels().String())
		it := s.Iterator(nil)
		if it.Next() != chunkenc.ValFloat {
			t.Fatalf("%s: no sample", s.Labels())
		}
		if _, v := it.At(); c != nil && uint32(v) != c.live[s.Labels().String()] {
			t.Fatalf("%s: sample of series %v, want %d", s.Labels(), v, c.live[s.Labels().String()])
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatalf("select %v: %v", ms, err)
	}
	return out
}
