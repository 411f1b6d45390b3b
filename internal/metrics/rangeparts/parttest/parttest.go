// Package parttest renders PromQL results for tests that compare an
// engine built from parts with Prometheus's own, bit for bit.
package parttest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// Range runs qs over start..end with e and renders the answer: each series'
// labels and points (float bits, so NaN payloads and -0 count), then the
// warnings and infos, or the error.
func Range(t testing.TB, e promql.QueryEngine, q storage.Queryable, qs string, start, end time.Time, step time.Duration) string {
	t.Helper()
	qry, err := e.NewRangeQuery(context.Background(), q, nil, qs, start, end, step)
	if err != nil {
		return "construction error: " + err.Error()
	}
	defer qry.Close()
	return Render(qs, qry.Exec(context.Background()))
}

// Render is a result as Range renders it.
func Render(qs string, res *promql.Result) string {
	if res.Err != nil {
		return "error: " + res.Err.Error()
	}
	ws, infos := res.Warnings.AsStrings(qs, 0, 0)
	var b strings.Builder
	m, ok := res.Value.(promql.Matrix)
	if !ok {
		return fmt.Sprintf("%T %v %v %v", res.Value, res.Value, ws, infos)
	}
	// A nil matrix and an empty one are the same answer: the API writes
	// both as [].
	fmt.Fprintf(&b, "%d series\n", len(m))
	for _, ser := range m {
		b.WriteString(ser.Metric.String() + ":")
		for _, p := range ser.Floats {
			fmt.Fprintf(&b, " %d=%x", p.T, math.Float64bits(p.F))
		}
		for _, p := range ser.Histograms {
			fmt.Fprintf(&b, " %d=%s", p.T, p.H.String())
		}
		b.WriteByte('\n')
	}
	fmt.Fprint(&b, ws, infos)
	return b.String()
}

// Diff is "" when got equals want, else where they first differ.
func Diff(got, want string) string {
	if got == want {
		return ""
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	from := max(i-200, 0)
	return fmt.Sprintf("first difference at byte %d:\ngot:  …%.400s\nwant: …%.400s", i, got[from:], want[from:])
}

// OpenDB opens an empty TSDB in t's temporary dir that takes out-of-order
// samples a day back, so fixtures can write into blocks already cut.
func OpenDB(t testing.TB) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = (24 * time.Hour).Milliseconds()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Engine is Prometheus's engine as Vispyr configures it (the reference the
// tests compare with), refusing queries past maxSamples.
func Engine(maxSamples int) *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{MaxSamples: maxSamples, Timeout: time.Minute,
		LookbackDelta: 5 * time.Minute, EnableAtModifier: true, EnableNegativeOffset: true, EnableDelayedNameRemoval: true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() }})
}

// Commit commits app, failing t on an error.
func Commit(t testing.TB, app storage.Appender) {
	t.Helper()
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Compact cuts what db's head holds into blocks, failing t when none is cut.
func Compact(t testing.TB, db *tsdb.DB) {
	t.Helper()
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(db.Blocks()) == 0 {
		t.Fatal("no block was cut")
	}
}
