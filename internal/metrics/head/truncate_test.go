package head

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestTruncateAsPrometheusHead truncates both heads alike and wants the
// same time range after each truncation and the same verdict on samples
// before, at and after the truncation times.
func TestTruncateAsPrometheusHead(t *testing.T) {
	own, _ := newOwnRange(t, hour)
	prom := newPrometheusHead(t, nil, hour)
	ctx := context.Background()
	series := []labels.Labels{labels.FromStrings("s", "a"), labels.FromStrings("s", "b")}
	for _, db := range []storage.Appendable{own, prom} {
		app := db.Appender(ctx)
		for ts := int64(0); ts < 3*hour; ts += 15000 {
			for i, lset := range series {
				if i == 1 && ts >= hour { // b stops at 1h
					continue
				}
				if _, err := app.Append(0, lset, ts, float64(ts)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, mint := range []int64{hour / 2, 2*hour + 7, 2 * hour, 4 * hour} {
		if err := errors.Join(own.Truncate(mint), prom.Truncate(mint)); err != nil {
			t.Fatal(err)
		}
		if own.MinTime() != prom.MinTime() || own.MaxTime() != prom.MaxTime() {
			t.Fatalf("after Truncate(%d): own head spans [%d, %d], Prometheus's [%d, %d]", mint, own.MinTime(), own.MaxTime(), prom.MinTime(), prom.MaxTime())
		}
		for _, ts := range []int64{mint - 1, mint, mint + 20000, 5 * hour} {
			oa, pa := own.Appender(ctx), prom.Appender(ctx)
			_, oerr := oa.Append(0, labels.FromStrings("s", "new"), ts, 1)
			_, perr := pa.Append(0, labels.FromStrings("s", "new"), ts, 1)
			if kind(oerr) != kind(perr) {
				t.Errorf("after Truncate(%d), a sample at %d: ours says %v, Prometheus's %v", mint, ts, oerr, perr)
			}
			if err := errors.Join(oa.Rollback(), pa.Rollback()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCommitAfterTruncationRefusesDroppedTimes appends a sample, truncates
// past it, then commits: the sample is refused (storage.ErrOutOfBounds)
// rather than added where the truncation dropped samples, while the
// appender's other samples are taken.
func TestCommitAfterTruncationRefusesDroppedTimes(t *testing.T) {
	h, _ := newOwnRange(t, hour)
	ctx := context.Background()
	a, c := labels.FromStrings("s", "a"), labels.FromStrings("s", "c")
	app := h.Appender(ctx)
	for ts := int64(0); ts <= 3*hour; ts += 15000 {
		if _, err := app.Append(0, a, ts, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = h.Appender(ctx)
	if _, err := app.Append(0, a, 3*hour+15000, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Append(0, c, 3*hour-hour/4, 2); err != nil { // in the appendable window
		t.Fatal(err)
	}
	if err := h.Truncate(3 * hour); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); !errors.Is(err, storage.ErrOutOfBounds) {
		t.Fatalf("Commit after the truncation: %v, want ErrOutOfBounds", err)
	}
	got := selectAll(t, h)
	if len(got["c"]) != 0 || len(got["a"]) != 2 || got["a"][1] != 3*hour+15000 {
		t.Fatalf("after the commit the head holds %v; want c empty, a at 3h and the new sample", got)
	}
	if err := h.Truncate(3*hour + 1); err != nil {
		t.Fatal(err)
	}
	if h.NumSeries() != 1 {
		t.Fatalf("%d series after a truncation; c, created without a sample, should be gone", h.NumSeries())
	}
}

// TestRemovedSeriesDoNotSwallowSamples removes a series by truncation
// while an appender holds its ref, and after: a sample appended with the
// labels goes to the live series of those labels, one by ref alone is
// refused, never added where no query finds it; by ref alone after the
// removal, as Prometheus's head refuses it.
func TestRemovedSeriesDoNotSwallowSamples(t *testing.T) {
	own, _ := newOwnRange(t, hour)
	prom := newPrometheusHead(t, nil, hour)
	ctx := context.Background()
	x, y := labels.FromStrings("s", "x"), labels.FromStrings("s", "y")
	var xref [2]storage.SeriesRef
	for i, db := range []storage.Appendable{own, prom} {
		app := db.Appender(ctx)
		for ts := int64(0); ts <= 3*hour; ts += 15000 {
			if ts < hour {
				xref[i], _ = app.Append(0, x, ts, 1)
			}
			if _, err := app.Append(0, y, ts, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	byLabels, byRef := own.Appender(ctx), own.Appender(ctx)
	for _, app := range []storage.Appender{byLabels, byRef} {
		if _, err := app.Append(0, y, 3*hour+15000, 2); err != nil { // fixes the appendable window
			t.Fatal(err)
		}
	}
	if _, err := byLabels.Append(0, x, 3*hour-hour/4, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := byRef.Append(xref[0], labels.EmptyLabels(), 3*hour-hour/4+1, 3); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(own.Truncate(2*hour), prom.Truncate(2*hour)); err != nil {
		t.Fatal(err)
	}
	if own.NumSeries() != 1 || prom.NumSeries() != 1 {
		t.Fatalf("%d series left (Prometheus's head %d), want y alone", own.NumSeries(), prom.NumSeries())
	}
	if err := byLabels.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := byRef.Commit(); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("commit of a sample by a removed ref alone: %v, want ErrNotFound", err)
	}
	if got := selectAll(t, own)["x"]; len(got) != 1 || got[0] != 3*hour-hour/4 {
		t.Fatalf("x holds %v after the commit, want the sample appended by labels", got)
	}
	var errs [2]error
	for i, db := range []storage.Appendable{own, prom} {
		app := db.Appender(ctx)
		_, errs[i] = app.Append(xref[i], labels.EmptyLabels(), 3*hour, 4)
		app.Rollback()
	}
	if kind(errs[0]) != kind(errs[1]) || errs[0] == nil {
		t.Fatalf("a sample by a removed ref alone: ours says %v, Prometheus's %v", errs[0], errs[1])
	}
}

// selectAll returns the timestamps of each series' samples in the head by
// its label s.
func selectAll(t *testing.T, h *Head) map[string][]int64 {
	t.Helper()
	q, err := h.Querier(-1<<62, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	got := map[string][]int64{}
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, "s", ".+"))
	for ss.Next() {
		s := ss.At()
		it := s.Iterator(nil)
		for it.Next() != 0 {
			ts, _ := it.At()
			got[s.Labels().Get("s")] = append(got[s.Labels().Get("s")], ts)
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	if ss.Err() != nil {
		t.Fatal(ss.Err())
	}
	return got
}

// TestTruncateWaitsForOpenReaders truncates while a querier reads the
// range dropped: truncation waits for it to close, and it reads every
// sample; a reader opened once the truncation started is not waited for,
// and reads from the truncation's time on.
func TestTruncateWaitsForOpenReaders(t *testing.T) {
	h, _ := newOwnRange(t, hour)
	app := h.Appender(context.Background())
	for ts := int64(0); ts <= 3*hour; ts += 15000 {
		for _, s := range []string{"a", "b"} {
			if _, err := app.Append(0, labels.FromStrings("s", s), ts, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	q, err := h.Querier(0, 3*hour)
	if err != nil {
		t.Fatal(err)
	}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "s", ".+"))
	done := make(chan error)
	go func() { done <- h.Truncate(2 * hour) }()
	for h.MinTime() != 2*hour {
		time.Sleep(time.Millisecond)
	}
	late, err := tsdb.NewBlockQuerier(h.Range(0, 3*hour), 0, 3*hour) // not waited for
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	lateSS := late.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "s", ".+"))
	if !lateSS.Next() { // lists the first series' chunks while the truncation waits
		t.Fatal("the late reader finds no series")
	}
	n := 0
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			n++
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Truncate returned (%v) while a querier read what it drops", err)
	default:
	}
	if n != 2*(3*hour/15000+1) {
		t.Fatalf("the querier read %d samples, want all %d", n, 2*(3*hour/15000+1))
	}
	q.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Truncate still waits after the querier closed")
	}
	for more := true; more; more = lateSS.Next() { // read after the truncation: from its time on
		it := lateSS.At().Iterator(nil)
		if it.Next() == chunkenc.ValNone {
			t.Fatal("the late reader reads nothing")
		}
		if ts, _ := it.At(); ts < 2*hour {
			t.Fatalf("the late reader reads from %d, before the truncation at %d", ts, 2*hour)
		}
		for it.Next() != chunkenc.ValNone {
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	if lateSS.Err() != nil {
		t.Fatal(lateSS.Err())
	}
}

// TestCommitsRunWhileRemovedSeriesAreTakenOut: once a truncation has
// marked the series it removes, commits run again while the index takes
// them out of its tables (seconds at a million series); a commit holding
// a removed series' ref then goes to the series of its labels, created
// again.
func TestCommitsRunWhileRemovedSeriesAreTakenOut(t *testing.T) {
	own, _ := newOwnRange(t, hour)
	ctx := context.Background()
	x, y := labels.FromStrings("s", "x"), labels.FromStrings("s", "y")
	app := own.Appender(ctx)
	for ts := int64(0); ts <= 3*hour; ts += 15000 {
		if ts < hour {
			if _, err := app.Append(0, x, ts, 1); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := app.Append(0, y, ts, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	pending := own.Appender(ctx)
	if _, err := pending.Append(0, x, 3*hour-hour/4, 2); err != nil { // x's ref, removed by the truncation
		t.Fatal(err)
	}
	ran := false
	truncateHook = func() {
		ran = true
		done := make(chan error, 1)
		go func() { done <- pending.Commit() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("commit during the truncation: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a commit waited for the rest of the truncation")
		}
	}
	defer func() { truncateHook = func() {} }()
	if err := own.Truncate(2 * hour); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("the truncation removed no series; the test sets up nothing")
	}
	if got := selectAll(t, own)["x"]; len(got) != 1 || got[0] != 3*hour-hour/4 {
		t.Fatalf("x holds %v, want the sample committed during the truncation", got)
	}
}
