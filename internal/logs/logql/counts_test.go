package logql

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// entriesOnly hides the store's SampleQuerier, so the engine reads entries.
type entriesOnly struct{ logs.Querier }

// TestCountPathMatchesEntries runs count-only range aggregations over a real
// store both through SelectSamples and through entries, and wants the same
// answers: windows ending exactly on an entry, ranges shorter and longer than
// the step, offsets, unaligned starts, structured metadata, flushed chunks
// that overlap in time and unflushed head entries.
func TestCountPathMatchesEntries(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	s, err := logs.Open(t.TempDir(), logs.Config{}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	push := func(from, to, every int) {
		req := &logpush.Request{}
		for i, lvl := range []string{"info", "error"} {
			st := logs.Stream{Labels: labels.FromStrings("app", "api", "level", lvl)}
			for sec := from + i; sec < to; sec += every {
				e := logs.Entry{Timestamp: base.Add(time.Duration(sec) * time.Second).UnixNano(), Line: fmt.Sprintf("level=%s n=%d %s", lvl, sec, make([]byte, sec%7))}
				if sec%5 == 0 {
					e.Metadata = labels.FromStrings("trace_id", fmt.Sprint(sec%3))
				}
				st.Entries = append(st.Entries, e)
			}
			req.Streams = append(req.Streams, st)
		}
		if err := s.ConsumeLogs(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	push(0, 600, 2)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	push(1, 900, 6) // overlaps the flushed chunk
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	push(900, 1200, 1) // stays in the head

	fast := NewEngine(s, Options{})
	slow := NewEngine(entriesOnly{s}, Options{})
	queries := []string{
		`count_over_time({app="api"}[1m])`,
		`rate({app="api"}[10s])`,
		`bytes_over_time({app="api"}[90s])`,
		`bytes_rate({app="api"}[1m] offset 30s)`,
		`sum by (level) (rate({app="api"}[1m]))`,
		`sum by (trace_id) (count_over_time({app="api", level=~"e.*"}[2m]))`,
		`sum(rate({app="api"}[5m]))`,
		`count_over_time({app="api"} |= "level" != "n=1" |~ "n=[0-9]*[02468] "[1m])`,
		`sum by (level) (bytes_rate({app="api"} |= "error"[30s]))`,
	}
	ranges := []struct {
		start, end time.Duration
		step       time.Duration
	}{
		{0, 20 * time.Minute, time.Minute},
		{13 * time.Second, 21 * time.Minute, 7 * time.Second},
		{-time.Minute, 5 * time.Minute, 10 * time.Second},
		{10 * time.Minute, 10 * time.Minute, 0}, // instant
		{14*time.Minute + 500*time.Millisecond, 14*time.Minute + 500*time.Millisecond, 0},
	}
	for _, q := range queries {
		for _, r := range ranges {
			p := Params{Tenant: pipeline.DefaultTenant, Query: q, Start: base.Add(r.start), End: base.Add(r.end), Step: r.step}
			want, err := slow.Exec(context.Background(), p)
			if err != nil {
				t.Fatalf("%s entries: %v", q, err)
			}
			got, err := fast.Exec(context.Background(), p)
			if err != nil {
				t.Fatalf("%s samples: %v", q, err)
			}
			if len(want.Matrix)+len(want.Vector) == 0 {
				t.Fatalf("%s %+v: empty answer, the test checks nothing", q, r)
			}
			if !reflect.DeepEqual(got.Matrix, want.Matrix) || !reflect.DeepEqual(got.Vector, want.Vector) {
				t.Errorf("%s %+v:\nsamples %v %v\nentries %v %v", q, r, got.Matrix, got.Vector, want.Matrix, want.Vector)
			}
			if got.Stats.LinesProcessed != want.Stats.LinesProcessed || got.Stats.BytesProcessed != want.Stats.BytesProcessed {
				t.Errorf("%s %+v: stats %+v, want %+v", q, r, got.Stats, want.Stats)
			}
		}
	}
}
