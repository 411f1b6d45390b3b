package logql

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchStore fills a real store with n logfmt lines over an hour, spread
// over 10 services × 4 levels as bench/logs does, and flushes it to chunks.
func benchStore(tb testing.TB, n int, base time.Time) *logs.Store {
	tb.Helper()
	s, err := logs.Open(tb.TempDir(), logs.Config{}, discardLogger())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []string{"info", "debug", "warn", "error"}
	gap := int64(time.Hour) / int64(n)
	const batch = 10000
	for done := 0; done < n; done += batch {
		byStream := map[int]*logs.Stream{}
		req := &logpush.Request{}
		for i := done; i < min(done+batch, n); i++ {
			svc, lvl := rng.IntN(10), rng.IntN(4)
			k := svc*4 + lvl
			st := byStream[k]
			if st == nil {
				st = &logs.Stream{Labels: labels.FromStrings("service_name", fmt.Sprint("svc-", svc), "env", "prod", "level", levels[lvl])}
				byStream[k] = st
			}
			ts := base.UnixNano() + int64(i)*gap
			st.Entries = append(st.Entries, logs.Entry{Timestamp: ts, Line: fmt.Sprintf(
				"ts=%d level=%s method=GET path=/api/items status=200 duration_ms=%d user_id=%d request_id=%016x",
				ts, levels[lvl], rng.IntN(900), rng.IntN(100000), rng.Uint64())})
		}
		for _, st := range byStream {
			req.Streams = append(req.Streams, *st)
		}
		if err := s.ConsumeLogs(context.Background(), req); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkRateByLevel is issue 13's query over 500k lines in an hour.
// Run: go test ./internal/logs/logql -run XXX -bench RateByLevel -benchtime 5x
func BenchmarkRateByLevel(b *testing.B) {
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	s := benchStore(b, 500_000, base)
	e := NewEngine(s, Options{})
	p := Params{Tenant: pipeline.DefaultTenant, Query: `sum by (level) (rate({env="prod"}[1m]))`, Start: base, End: base.Add(time.Hour), Step: time.Minute}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := e.Exec(context.Background(), p)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Matrix) != 4 {
			b.Fatalf("%d series, want 4", len(res.Matrix))
		}
	}
}
