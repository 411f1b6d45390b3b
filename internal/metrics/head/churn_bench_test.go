package head

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/metrics/nodeshape"
)

// BenchmarkChurn measures what series churn leaves in a head: -series
// series of nodeshape's load (-rounds samples each), then as many new ones
// (the next -series indexes: new instances, as after a redeploy) an hour
// later, then a truncation at the new series' first sample, which drops
// the old ones' samples and removes them (truncate-ms: how long), and
// for our head the Compact after it (compact-ms, appends and reads
// waiting). It reports the live heap per
// live series (see measure), beside a head that only ever held the new
// series (fresh): the difference is what the removed series still cost.
// For this head and, in the same run, Prometheus's (isolation off). Run it
// with -benchtime 1x; ns/sample counts the samples of one set.
func BenchmarkChurn(b *testing.B) {
	n := *benchSeries
	t1 := time.Now().Add(-time.Hour).UnixMilli()
	t0 := t1 - 3600*1000
	b.Run("own-fresh", func(b *testing.B) {
		measure(b, func() any { h := newOwn(b); fillAt(b, h, n, t1); h.Compact(); return h })
	})
	b.Run("own-churned", func(b *testing.B) {
		measure(b, func() any {
			h := newOwn(b)
			churn(b, h, h.Truncate, t0, t1)
			start := time.Now()
			h.Compact() // every stripe held: what appends and reads wait for
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "compact-ms")
			b.ReportMetric(float64(h.NumSeries()), "series-left")
			return h
		})
	})
	b.Run("own-churned-appending", func(b *testing.B) {
		h := newOwn(b)
		churnAppending(b, h, h.Truncate, func() { h.Compact() }, t0, t1)
	})
	b.Run("prometheus-fresh", func(b *testing.B) {
		measure(b, func() any { h := newPrometheus(b); fillAt(b, h, n, t1); return h })
	})
	b.Run("prometheus-churned", func(b *testing.B) {
		measure(b, func() any {
			h := newPrometheus(b)
			churn(b, h, h.Truncate, t0, t1)
			b.ReportMetric(float64(h.NumSeries()), "series-left")
			return h
		})
	})
	b.Run("prometheus-churned-appending", func(b *testing.B) {
		h := newPrometheus(b)
		churnAppending(b, h, h.Truncate, nil, t0, t1)
	})
}

// churn fills db with the first -series series at t0 and the next ones at
// t1, then truncates at t1 and reports how long that took.
func churn(b *testing.B, db storage.Appendable, truncate func(int64) error, t0, t1 int64) {
	fillAt(b, db, 0, t0)
	fillAt(b, db, *benchSeries, t1)
	start := time.Now()
	if err := truncate(t1); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "truncate-ms")
}

// churnAppending is churn with two writers of new series running while the
// truncation does: one appends samples and commits them only at the end,
// the other commits each sample. It reports the longest an Append
// (append-wait-ms) and a Commit (commit-wait-ms) begun during the
// truncation took, how many samples the first appended (appended) and how
// many the second committed (committed) meanwhile; then, if compact is
// given, the same waits while it runs after the truncation, as our head's
// store runs Compact after its compactions (compact-append-wait-ms,
// compact-commit-wait-ms), and how long it took (compact-ms).
func churnAppending(b *testing.B, db storage.Appendable, truncate func(int64) error, compact func(), t0, t1 int64) {
	fillAt(b, db, 0, t0)
	fillAt(b, db, *benchSeries, t1)
	t := t1 + 3600*1000
	stop := make(chan struct{})
	var phase atomic.Int32 // 1 once the truncation is over; a wait counts for the phase it began in
	var appendWait, commitWait [2]time.Duration
	appended, committed := 0, 0
	errs := make(chan error, 2)
	go func() { // appends
		var sb labels.ScratchBuilder
		app := db.Appender(context.Background())
		for s := 2 * *benchSeries; !stopped(stop); s++ {
			p, start := phase.Load(), time.Now()
			if _, err := app.Append(0, nodeshape.Labels(&sb, s), t, 1); err != nil {
				errs <- err
				return
			}
			appendWait[p] = max(appendWait[p], time.Since(start))
			if p == 0 {
				appended++
			}
		}
		errs <- app.Commit()
	}()
	go func() { // commits
		var sb labels.ScratchBuilder
		for s := 3 * *benchSeries; !stopped(stop); s++ {
			app := db.Appender(context.Background())
			if _, err := app.Append(0, nodeshape.Labels(&sb, s), t, 1); err != nil {
				errs <- err
				return
			}
			p, start := phase.Load(), time.Now()
			if err := app.Commit(); err != nil {
				errs <- err
				return
			}
			commitWait[p] = max(commitWait[p], time.Since(start))
			if p == 0 {
				committed++
			}
		}
		errs <- nil
	}()
	start := time.Now()
	err := truncate(t1)
	took := time.Since(start)
	phase.Store(1)
	var compactTook time.Duration
	if compact != nil && err == nil {
		start = time.Now()
		compact()
		compactTook = time.Since(start)
	}
	close(stop)
	for _, werr := range []error{<-errs, <-errs, err} {
		if werr != nil {
			b.Fatal(werr)
		}
	}
	b.ReportMetric(float64(took.Milliseconds()), "truncate-ms")
	b.ReportMetric(float64(appendWait[0].Milliseconds()), "append-wait-ms")
	b.ReportMetric(float64(commitWait[0].Milliseconds()), "commit-wait-ms")
	b.ReportMetric(float64(appended), "appended")
	b.ReportMetric(float64(committed), "committed")
	if compact != nil {
		b.ReportMetric(float64(compactTook.Microseconds())/1000, "compact-ms")
		b.ReportMetric(float64(appendWait[1].Microseconds())/1000, "compact-append-wait-ms")
		b.ReportMetric(float64(commitWait[1].Microseconds())/1000, "compact-commit-wait-ms")
	}
}

func stopped(stop chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// fillAt appends -rounds samples, 15 s apart from start, to -series
// series from index first on, as fill does.
func fillAt(b *testing.B, db storage.Appendable, first int, start int64) {
	n := *benchSeries
	rng := rand.New(rand.NewPCG(uint64(first), 2))
	values := make([]float64, n)
	refs := make([]storage.SeriesRef, n)
	var sb labels.ScratchBuilder
	for r := range *benchRounds {
		app := db.Appender(context.Background())
		for s := range n {
			var lset labels.Labels
			if refs[s] == 0 {
				lset = nodeshape.Labels(&sb, first+s)
			}
			values[s] = nodeshape.Next(s, values[s], rng)
			ref, err := app.Append(refs[s], lset, start+int64(r)*15000, values[s])
			if err != nil {
				b.Fatal(err)
			}
			refs[s] = ref
			if s%5000 == 4999 || s == n-1 {
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
				app = db.Appender(context.Background())
			}
		}
	}
}
