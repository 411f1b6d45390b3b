package longterm

import (
	"context"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
)

const hour = int64(3600_000)

// testDB is a TSDB holding 8 h of samples of a few kinds of series,
// compacted into 2 h blocks.
func testDB(t *testing.T, withHistograms bool) *tsdb.DB {
	t.Helper()
	db := emptyTSDB(t)
	ctx := context.Background()
	stale := math.Float64frombits(value.StaleNaN)
	for ts := int64(0); ts < 8*hour; ts += 15_000 {
		app := db.Appender(ctx)
		for i := 0; i < 20; i++ {
			ls := labels.FromStrings("__name__", "requests_total", "job", "api", "instance", strconv.Itoa(i))
			if _, err := app.Append(0, ls, ts+int64(i%3), float64(ts/15_000*int64(i+1))); err != nil {
				t.Fatal(err)
			}
		}
		gauge := []float64{0.25, -3.5, math.NaN(), math.Inf(1), stale, 1e300, -1 << 60}[ts/15_000%7]
		if _, err := app.Append(0, labels.FromStrings("__name__", "odd_gauge", "job", "batch"), ts, gauge); err != nil {
			t.Fatal(err)
		}
		if withHistograms && ts > 5*hour {
			h := tsdbutil.GenerateTestHistogram(ts / 15_000)
			if _, err := app.AppendHistogram(0, labels.FromStrings("__name__", "latency"), ts, h, nil); err != nil {
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
	if len(db.Blocks()) < 3 {
		t.Fatalf("want at least 3 blocks, got %d", len(db.Blocks()))
	}
	return db
}

type sample struct {
	t int64
	v uint64
}

func readAll(t *testing.T, q storage.Querier, ms ...*labels.Matcher) map[string][]sample {
	t.Helper()
	out := map[string][]sample{}
	ss := q.Select(context.Background(), true, nil, ms...)
	var it chunkenc.Iterator
	prev := ""
	for ss.Next() {
		s := ss.At()
		key := s.Labels().String()
		if key <= prev {
			t.Fatalf("series out of order: %s after %s", key, prev)
		}
		prev = key
		it = s.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[key] = append(out[key], sample{ts, math.Float64bits(v)})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRewrittenBlocksAnswerAsTheTSDB(t *testing.T) {
	db := testDB(t, false)
	blocks := db.Blocks()
	mint, maxt := blocks[0].Meta().MinTime, blocks[len(blocks)-1].Meta().MaxTime-1
	dir := t.TempDir()
	s := openStore(t, dir)
	m, err := s.Rewrite(context.Background(), blocks)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sources) != len(blocks) || !s.Replaces(blocks[1].Meta().ULID) {
		t.Fatalf("meta sources %v do not name the %d TSDB blocks", m.Sources, len(blocks))
	}
	var tsdbSamples uint64
	for _, b := range blocks {
		tsdbSamples += b.Meta().Stats.NumSamples
	}
	if m.NumSamples != tsdbSamples || m.NumSeries != 21 {
		t.Fatalf("long-term block has %d series, %d samples; TSDB blocks %d samples", m.NumSeries, m.NumSamples, tsdbSamples)
	}

	// Reopened from disk, as after a restart.
	s2 := openStore(t, dir)
	cases := [][]*labels.Matcher{
		{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")},
		{labels.MustNewMatcher(labels.MatchEqual, "__name__", "odd_gauge")},
		{labels.MustNewMatcher(labels.MatchRegexp, "instance", "1.*"), labels.MustNewMatcher(labels.MatchNotEqual, "job", "x")},
	}
	for _, window := range [][2]int64{{mint, maxt}, {hour + 7, 3*hour - 1}} {
		want, err := db.Querier(window[0], window[1])
		if err != nil {
			t.Fatal(err)
		}
		got := s2.Querier(window[0], window[1])
		for _, ms := range cases {
			w, g := readAll(t, want, ms...), readAll(t, got, ms...)
			if len(w) == 0 || !maps.EqualFunc(w, g, slices.Equal[[]sample]) {
				t.Errorf("window %v, %v: long-term answers %d series, TSDB %d, or samples differ", window, ms, len(g), len(w))
			}
		}
		ctx := context.Background()
		wv, _, _ := want.LabelValues(ctx, "instance", nil)
		gv, _, _ := got.LabelValues(ctx, "instance", nil)
		wn, _, _ := want.LabelNames(ctx, nil, cases[1]...)
		gn, _, _ := got.LabelNames(ctx, nil, cases[1]...)
		wf, _, _ := want.LabelValues(ctx, "job", nil, cases[2]...)
		gf, _, _ := got.LabelValues(ctx, "job", nil, cases[2]...)
		if !slices.Equal(wv, gv) || !slices.Equal(wn, gn) || !slices.Equal(wf, gf) {
			t.Errorf("labels differ: values %v vs %v, names %v vs %v, filtered %v vs %v", gv, wv, gn, wn, gf, wf)
		}
		_ = want.Close()
		_ = got.Close()
	}
	if q := s2.Querier(maxt+1, maxt+hour); q != nil {
		t.Error("a querier past the blocks' time must be nil")
	}
}

func TestBlocksWithNativeHistogramsStayInTheTSDB(t *testing.T) {
	db := testDB(t, true)
	dir := t.TempDir()
	s := openStore(t, dir)
	_, err := s.Rewrite(context.Background(), db.Blocks())
	if !errors.Is(err, ErrHistograms) {
		t.Fatalf("rewrite of blocks with histograms: %v, want ErrHistograms", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 || len(s.Metas()) != 0 {
		t.Fatalf("a refused rewrite left %d entries", len(entries))
	}
}

func TestCorruptColumnIsAnErrorNotAPanic(t *testing.T) {
	db := testDB(t, false)
	dir := t.TempDir()
	m, err := openStore(t, dir).Rewrite(context.Background(), db.Blocks()[:1])
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, m.ULID.String(), dataFile)
	data, _ := os.ReadFile(path)
	for i := len(dataMagic) + 8; i < len(data); i += 64 {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	q := openStore(t, dir).Querier(math.MinInt64, math.MaxInt64)
	defer q.Close()
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	failed := false
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
		}
		failed = failed || it.Err() != nil
	}
	if !failed {
		t.Fatal("no series reported the corruption")
	}
}

func TestUnfinishedBlockIsRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "01J00000000000000000000000"+tmpSuffix)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	openStore(t, dir)
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("unfinished block still there: %v", err)
	}
}

func TestDeleteOldestWaitsForReaders(t *testing.T) {
	db := testDB(t, false)
	dir := t.TempDir()
	s := openStore(t, dir)
	for _, b := range db.Blocks() {
		if _, err := s.Rewrite(context.Background(), []*tsdb.Block{b}); err != nil {
			t.Fatal(err)
		}
	}
	metas := s.Metas()
	q := s.Querier(math.MinInt64, math.MaxInt64)
	before := readAll(t, q, labels.MustNewMatcher(labels.MatchEqual, "__name__", "odd_gauge"))
	s.DeleteOldest(func(m Meta, _ int64) bool { return m.MinTime >= metas[1].MinTime })
	if len(s.Metas()) != len(metas)-1 {
		t.Fatalf("%d blocks left, want %d", len(s.Metas()), len(metas)-1)
	}
	// The open querier still reads the deleted block.
	after := readAll(t, q, labels.MustNewMatcher(labels.MatchEqual, "__name__", "odd_gauge"))
	if !maps.EqualFunc(before, after, slices.Equal[[]sample]) {
		t.Fatal("a querier lost data deleted under it")
	}
	_ = q.Close()
	_ = s.Close() // waits for the removal the querier held up
	if _, err := os.Stat(filepath.Join(dir, metas[0].ULID.String())); !os.IsNotExist(err) {
		t.Fatalf("deleted block still on disk: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(metas)-1 {
		t.Fatalf("%d entries on disk, want %d", len(entries), len(metas)-1)
	}
}

// emptyTSDB is an empty TSDB with the default options, closed when the
// test ends.
func emptyTSDB(t *testing.T) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
