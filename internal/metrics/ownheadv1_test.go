package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// TestOwnHeadTakesV1Appends writes through the V1 appender (the
// span-metrics generator's) with metrics.head: vispyr: floats and their
// exemplars go to the own head, not the TSDB's, in every tenant,
// histograms to the TSDB's head, the write watch sees each commit, and all
// of it is answered before and after a restart.
func TestOwnHeadTakesV1Appends(t *testing.T) {
	open := ownHeadOpener(t, t.TempDir())
	s := open()
	var oldest atomic.Int64
	s.WatchWrites(func(_ string, ts int64) { oldest.Store(ts) })
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	const series, samples = 20, 40
	app := s.Appender(context.Background())
	for i := range series {
		ls := labels.FromStrings("__name__", "own_head_test", "i", strconv.Itoa(i))
		ref := storage.SeriesRef(0)
		for j := range samples {
			r, err := app.Append(ref, ls, base+int64(j)*15000, float64(i*j))
			if err != nil {
				t.Fatal(err)
			}
			ref = r
		}
		if ref&ownRef == 0 {
			t.Fatalf("series %d got ref %x, not the own head's", i, ref)
		}
		ex := exemplar.Exemplar{Labels: labels.FromStrings("trace_id", fmt.Sprintf("%032x", i)), Value: float64(i), Ts: base, HasTs: true}
		if _, err := app.AppendExemplar(ref, ls, ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := oldest.Load(); got != base {
		t.Errorf("the write watch saw a commit from %d, want %d", got, base)
	}
	if n := s.def.db.Head().NumSeries(); n != 0 {
		t.Fatalf("the TSDB's head holds %d series after V1 float appends; they belong in the own head", n)
	}

	app = s.Appender(context.Background())
	hist := labels.FromStrings("__name__", "own_head_hist")
	for k := range 10 {
		if _, err := app.AppendHistogram(0, hist, base+int64(k)*15000, tsdbutil.GenerateTestHistogram(int64(k)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	team := pipeline.WithTenant(context.Background(), "team-a")
	app = s.Appender(team)
	if _, err := app.Append(0, labels.FromStrings("__name__", "own_head_test", "team", "a"), base, 1); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	check := func(when string) {
		t.Helper()
		if n := s.def.db.Head().NumSeries(); n != 1 {
			t.Errorf("%s: the TSDB's head holds %d series, want the histogram's only", when, n)
		}
		if n := s.def.own.head.NumSeries(); n != series {
			t.Errorf("%s: the own head holds %d series, want %d", when, n, series)
		}
		if got := countOwnTestSamples(t, s); got != series*samples {
			t.Errorf("%s: %d float samples, want %d", when, got, series*samples)
		}
		if got := countSamplesOf(t, s.DefaultQueryable(), "own_head_hist"); got != 10 {
			t.Errorf("%s: %d histogram samples, want 10", when, got)
		}
		tenant := s.lookup("team-a")
		if tenant == nil || tenant.own == nil {
			t.Fatalf("%s: tenant team-a has no own head", when)
		}
		if n, own := tenant.db.Head().NumSeries(), tenant.own.head.NumSeries(); n != 0 || own != 1 {
			t.Errorf("%s: tenant team-a's heads hold %d series (TSDB) and %d (own), want 0 and 1", when, n, own)
		}
	}
	check("before the restart")
	if n := countExemplars(t, s.def.own.exemplars, "own_head_test"); n != series {
		t.Errorf("the own head keeps %d exemplars, want %d", n, series)
	}
	q, err := s.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := countExemplars(t, exemplarQueryable{q}, "own_head_test"); n != series {
		t.Errorf("the exemplar querier answers %d exemplars, want %d", n, series)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	check("after the restart")
}

type exemplarQueryable struct{ q storage.ExemplarQuerier }

func (e exemplarQueryable) ExemplarQuerier(context.Context) (storage.ExemplarQuerier, error) {
	return e.q, nil
}

// countExemplars counts the exemplars of the series named name.
func countExemplars(t *testing.T, eq storage.ExemplarQueryable, name string) int {
	t.Helper()
	q, err := eq.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := q.Select(0, 1<<62, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", name)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range res {
		n += len(r.Exemplars)
	}
	return n
}

// TestOwnHeadAppendsAnswerAsTheTSDBs runs the same V1 and V2 calls against
// a store with the TSDB's head and one with the own head: each call is
// answered alike (start-timestamp zeros, out-of-order samples and
// exemplars taken within the window or refused when asked, duplicates
// dropped quietly), and the stores end up holding the same samples and
// exemplars.
func TestOwnHeadAppendsAnswerAsTheTSDBs(t *testing.T) {
	cfg := config.Default()
	stores := map[string]*Storage{}
	answers := map[string][]string{}
	// One time for both stores: each taking its own, a second boundary
	// crossed between them made their samples differ.
	t1 := time.Now().Add(-5 * time.Minute).Truncate(time.Second).UnixMilli()
	for _, h := range []string{config.HeadPrometheus, config.HeadVispyr} {
		cfg.Metrics.Head = h
		s, err := Open(cfg.Metrics, cfg.Limits, t.TempDir(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[h] = s
		answers[h] = append(v1Script(t, s, t1), v2Script(t, s, t1)...)
	}
	if own, tsdb := answers[config.HeadVispyr], answers[config.HeadPrometheus]; !slices.Equal(own, tsdb) {
		t.Errorf("the V1 calls' answers differ:\nown head:   %q\nTSDB head:  %q", own, tsdb)
	}
	own, tsdb := stores[config.HeadVispyr], stores[config.HeadPrometheus]
	if got, want := dumpSeries(t, own), dumpSeries(t, tsdb); got != want {
		t.Errorf("the stores hold different samples:\nown head:\n%s\nTSDB head:\n%s", got, want)
	}
	if got, want := dumpExemplars(t, own), dumpExemplars(t, tsdb); got != want {
		t.Errorf("the stores hold different exemplars:\nown head:  %s\nTSDB head: %s", got, want)
	}
	if n := own.def.db.Head().NumSeries(); n != 3 { // two histograms and v1_test "a", whose out-of-order float went there
		t.Errorf("the own head's store has %d series in the TSDB's head, want 3", n)
	}
}

// v1Script makes V1 calls covering each method, about t1, and returns
// each call's answer, by the error it matches.
func v1Script(t *testing.T, s *Storage, t1 int64) []string {
	t.Helper()
	ctx := context.Background()
	t0, t2 := t1-60_000, t1+15_000
	a := labels.FromStrings("__name__", "v1_test", "s", "a")
	b := labels.FromStrings("__name__", "v1_test", "s", "b")
	h := labels.FromStrings("__name__", "v1_hist", "s", "h")
	h2 := labels.FromStrings("__name__", "v1_hist", "s", "h2")
	ex := func(trace string, ts int64) exemplar.Exemplar {
		return exemplar.Exemplar{Labels: labels.FromStrings("trace_id", trace), Value: 1, Ts: ts, HasTs: true}
	}
	var got []string
	note := func(_ storage.SeriesRef, err error) { got = append(got, errClass(err)) }
	commit := func(app storage.Appender) {
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}

	app := s.Appender(ctx)
	refA, err := app.Append(0, a, t1, 1)
	note(refA, err)
	note(app.AppendSTZeroSample(0, b, t1, t0))
	note(app.Append(0, b, t1, 5))
	note(app.AppendExemplar(refA, a, ex("1", t1)))
	note(app.AppendHistogram(0, h, t1, tsdbutil.GenerateTestHistogram(1), nil))
	note(app.AppendHistogramSTZeroSample(0, h2, t1, t0, tsdbutil.GenerateTestHistogram(2), nil))
	note(app.AppendHistogram(0, h2, t1, tsdbutil.GenerateTestHistogram(2), nil))
	note(app.AppendSTZeroSample(0, labels.FromStrings("__name__", "v1_test", "s", "c"), t1, t1))
	note(app.AppendExemplar(0, labels.FromStrings("__name__", "v1_none"), ex("9", t1)))
	note(app.UpdateMetadata(refA, a, metadata.Metadata{Type: "counter", Help: "a counter"}))
	commit(app)

	app = s.Appender(ctx)
	note(app.AppendSTZeroSample(0, a, t2, t0))
	note(app.AppendHistogramSTZeroSample(0, h, t2, t0, tsdbutil.GenerateTestHistogram(3), nil))
	note(app.Append(0, a, t1-30_000, 2)) // out of order, in the window
	app.SetOptions(&storage.AppendOptions{DiscardOutOfOrder: true})
	note(app.Append(0, b, t1-30_000, 3))
	app.SetOptions(nil)
	ref, err := app.Append(0, b, t2, 6)
	note(ref, err)
	note(app.AppendExemplar(ref, b, ex("2", t2)))
	note(app.AppendExemplar(0, a, ex("1", t1)))                               // a duplicate, by labels
	note(app.AppendExemplar(0, a, ex("3", t0)))                               // out of order, in the window
	note(app.AppendExemplar(0, a, ex("4", t1-11*time.Minute.Milliseconds()))) // out of order, before the window
	commit(app)
	return got
}

// v2Script is v1Script for the V2 calls the own head answered otherwise
// at first: RejectOutOfOrder, and exemplars out of order.
func v2Script(t *testing.T, s *Storage, t1 int64) []string {
	t.Helper()
	a := labels.FromStrings("__name__", "v2_test", "s", "a")
	ex := func(trace string, ts int64) []exemplar.Exemplar {
		return []exemplar.Exemplar{{Labels: labels.FromStrings("trace_id", trace), Value: 1, Ts: ts, HasTs: true}}
	}
	var got []string
	note := func(_ storage.SeriesRef, err error) { got = append(got, errClass(err)) }
	app := s.AppenderV2(context.Background())
	note(app.Append(0, a, 0, t1, 1, nil, nil, storage.AOptions{Exemplars: ex("1", t1)}))
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = s.AppenderV2(context.Background())
	note(app.Append(0, a, 0, t1-30_000, 2, nil, nil, storage.AOptions{RejectOutOfOrder: true}))
	ref, err := app.Append(0, a, 0, t1+15_000, 3, nil, nil, storage.AOptions{Exemplars: ex("2", t1-11*time.Minute.Milliseconds())})
	note(ref, err)
	ea, ok := app.(storage.ExemplarAppenderV2)
	if !ok {
		t.Fatalf("%T takes no exemplars", app)
	}
	note(ea.AppendExemplars(ref, a, ex("3", t1-60_000)))
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return got
}

// errClass names the storage error err is, "nil" or "error" otherwise.
func errClass(err error) string {
	if err == nil {
		return "nil"
	}
	var partial *storage.AppendPartialError
	if errors.As(err, &partial) && len(partial.ExemplarErrors) > 0 {
		return "partial: " + errClass(partial.ExemplarErrors[0].Err)
	}
	for _, e := range []error{storage.ErrOutOfOrderSample, storage.ErrOutOfBounds, storage.ErrTooOldSample,
		storage.ErrOutOfOrderST, storage.ErrSTNewerThanSample, storage.ErrOutOfOrderExemplar,
		storage.ErrDuplicateExemplar, storage.ErrDuplicateSampleForTimestamp} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "error"
}

// dumpSeries writes out every series of the default tenant and its samples.
func dumpSeries(t *testing.T, s *Storage) string {
	t.Helper()
	q, err := s.DefaultQueryable().Querier(0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var b strings.Builder
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for set.Next() {
		fmt.Fprintf(&b, "%s:", set.At().Labels())
		it := set.At().Iterator(nil)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			switch vt {
			case chunkenc.ValFloat:
				ts, v := it.At()
				fmt.Fprintf(&b, " %d=%g", ts, v)
			case chunkenc.ValHistogram:
				ts, h := it.AtHistogram(nil)
				fmt.Fprintf(&b, " %d=%s", ts, h)
			case chunkenc.ValFloatHistogram:
				ts, fh := it.AtFloatHistogram(nil)
				fmt.Fprintf(&b, " %d=%s", ts, fh)
			}
		}
		b.WriteByte('\n')
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// dumpExemplars writes out the default tenant's exemplars, by series.
func dumpExemplars(t *testing.T, s *Storage) string {
	t.Helper()
	q, err := s.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := q.Select(0, 1<<62, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range res {
		for _, e := range r.Exemplars {
			out = append(out, fmt.Sprintf("%s %s %g@%d", r.SeriesLabels, e.Labels, e.Value, e.Ts))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// TestOwnHeadOutOfOrderByRefGoesToTheTSDB appends an out-of-order float by
// the ref the first sample got and no labels, as the remote-write path
// appends a series it knows: the own head refuses it, and the TSDB's head,
// which finds series by labels, takes it with the labels the own head
// holds, without an error for the caller to try again on.
func TestOwnHeadOutOfOrderByRefGoesToTheTSDB(t *testing.T) {
	cfg := config.Default()
	cfg.Metrics.Head = config.HeadVispyr
	s, err := Open(cfg.Metrics, cfg.Limits, t.TempDir(), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t1 := time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli()
	a := labels.FromStrings("__name__", "by_ref", "s", "a")
	app := s.AppenderV2(ctx)
	ref, err := app.Append(0, a, 0, t1, 1, nil, nil, storage.AOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = s.AppenderV2(ctx)
	if _, err := app.Append(ref, labels.EmptyLabels(), 0, t1-30_000, 2, nil, nil, storage.AOptions{}); err != nil {
		t.Fatalf("out-of-order sample by ref: %v", err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	got := dumpSeries(t, s)
	if want := fmt.Sprintf(`{__name__="by_ref", s="a"}: %d=2 %d=1`+"\n", t1-30_000, t1); got != want {
		t.Fatalf("store holds\n%s\nwant %s", got, want)
	}
}
