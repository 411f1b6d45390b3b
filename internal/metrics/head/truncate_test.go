package head

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// TestTruncateAsPrometheusHead truncates both heads alike and wants the
// same time range after each truncation and the same verdict on samples
// before, at and after the truncation times.
func TestTruncateAsPrometheusHead(t *testing.T) {
	own, _ := newOwnRange(t, hour)
	prom := newPrometheusRange(t, hour)
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
