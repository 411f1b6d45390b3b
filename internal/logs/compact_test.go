package logs_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/logs/logql"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

func blockFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "blocks", "*.block"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// answers runs log and metric queries over the store, as the Loki API would.
func answers(t *testing.T, st *logs.Store, now time.Time) []any {
	t.Helper()
	eng := logql.NewEngine(st, logql.Options{})
	var out []any
	for _, q := range []struct {
		query string
		step  time.Duration
	}{
		{`{app="a"}`, time.Minute},
		{`{app=~"a|b"} |= "needle"`, time.Minute},
		{`{app="c"} |~ "id=1[0-9] "`, time.Minute},
		{`sum by (level) (count_over_time({app=~".+"} | logfmt [5m]))`, time.Minute},
		{`sum by (app) (bytes_over_time({app=~".+"} != "needle" [10m]))`, time.Minute},
	} {
		res, err := eng.Exec(context.Background(), logql.Params{Tenant: "t", Query: q.query,
			Start: now.Add(-40 * time.Minute), End: now.Add(time.Minute), Step: q.step, Limit: 5000, Direction: logs.Forward})
		if err != nil {
			t.Fatalf("%s: %v", q.query, err)
		}
		if len(res.Entries)+len(res.Matrix) == 0 {
			t.Fatalf("%s: empty answer", q.query)
		}
		out = append(out, res.Entries, res.Matrix)
	}
	return out
}

// TestCompactionAnswersTheSame writes five blocks in one hour, compacts them
// into one and checks that log and metric queries answer exactly as before,
// after a reopen too, and after a compaction interrupted once the merged
// block was in place but before its sources were deleted.
func TestCompactionAnswersTheSame(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := logs.Open(dir, logs.Config{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	// Five blocks within the last full hour: one compaction window, all past.
	now := time.Now().Truncate(time.Hour).Add(-25 * time.Minute)
	ctx := pipeline.WithTenant(context.Background(), "t")
	for flush := range 5 {
		var streams []logpush.Stream
		for _, app := range []string{"a", "b", "c"} {
			s := logpush.Stream{Labels: labels.FromStrings("app", app)}
			for i := range 40 {
				ts := now.Add(-time.Duration(30-flush*5) * time.Minute).Add(time.Duration(i) * time.Second)
				line := fmt.Sprintf("level=%s id=%d flush=%d", []string{"info", "warn", "error"}[i%3], i, flush)
				if i%7 == 0 {
					line += " needle"
				}
				s.Entries = append(s.Entries, logpush.Entry{Timestamp: ts.UnixNano(), Line: line})
			}
			streams = append(streams, s)
		}
		if err := st.ConsumeLogs(ctx, &logpush.Request{Streams: streams}); err != nil {
			t.Fatal(err)
		}
		if err := st.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	sources := blockFiles(t, dir)
	if len(sources) != 5 {
		t.Fatalf("%d blocks before compaction, want 5", len(sources))
	}
	saved := map[string][]byte{}
	for _, p := range sources {
		saved[p], _ = os.ReadFile(p)
	}
	before := answers(t, st, now)

	if err := st.Compact(); err != nil {
		t.Fatal(err)
	}
	merged := blockFiles(t, dir)
	if len(merged) != 1 {
		t.Fatalf("blocks after compaction: %v, want one", merged)
	}
	if after := answers(t, st, now); !reflect.DeepEqual(before, after) {
		t.Fatalf("queries answer differently after compaction:\nbefore %v\nafter  %v", before, after)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash after the merged block was renamed into place, before the
	// sources were deleted: the sources are back, and the marker names them.
	var names []string
	for p, b := range saved {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(p))
	}
	marker := strings.TrimSuffix(merged[0], ".block") + ".compacting"
	if err := os.WriteFile(marker, []byte(strings.Join(names, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = logs.Open(dir, logs.Config{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := blockFiles(t, dir); !reflect.DeepEqual(got, merged) {
		t.Errorf("blocks after reopening an interrupted compaction: %v, want only %v", got, merged)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("compaction marker left behind: %v", err)
	}
	if after := answers(t, st, now); !reflect.DeepEqual(before, after) {
		t.Fatalf("queries answer differently after reopening:\nbefore %v\nafter  %v", before, after)
	}
}
