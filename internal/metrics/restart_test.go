package metrics

import (
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// A graceful stop leaves a snapshot of the head, so the next start-up need
// not decode the whole WAL; every sample is back either way: after a clean
// stop (from the snapshot) and after a crash (from the WAL).
func TestRestartKeepsHeadThroughSnapshot(t *testing.T) {
	cfg := config.Default()
	dir := t.TempDir()
	open := func(dir string) *Storage {
		s, err := Open(cfg.Metrics, cfg.Limits, dir, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(dir)
	app := s.DB().Appender(context.Background())
	for i := range 100 {
		ls := labels.FromStrings("__name__", "restart_test", "i", string(rune('a'+i%26)), "n", string(rune('A'+i/26)))
		for ts := int64(0); ts < 300; ts++ {
			if _, err := app.Append(0, ls, 1_000_000+ts*15_000, float64(i*1000)+float64(ts)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "metrics", "chunk_snapshot.*"))
	if len(snaps) == 0 {
		t.Fatal("a graceful stop wrote no head snapshot")
	}
	s = open(dir)
	if n := s.DB().Head().NumSeries(); n != 100 {
		t.Errorf("after a graceful stop: %d series, want 100", n)
	}
	if got := countSamples(t, s); got != 100*300 {
		t.Errorf("after a graceful stop: %d samples, want %d", got, 100*300)
	}
	// A crash: the files as they are while the store runs, one more sample
	// per series committed since the snapshot.
	app = s.DB().Appender(context.Background())
	for i := range 100 {
		ls := labels.FromStrings("__name__", "restart_test", "i", string(rune('a'+i%26)), "n", string(rune('A'+i/26)))
		if _, err := app.Append(0, ls, 1_000_000+300*15_000, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	crashed := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join(dir, "metrics"), crashed).CombinedOutput(); err != nil {
		t.Fatalf("copy the running store: %v %s", err, out)
	}
	s.Close()
	s = open(crashed)
	defer s.Close()
	if got := countSamples(t, s); got != 100*301 {
		t.Errorf("after a crash: %d samples, want %d", got, 100*301)
	}
}

func countSamples(t *testing.T, s *Storage) int {
	return countSamplesOf(t, s.DB(), "restart_test")
}

// countSamplesOf counts the samples of the series named name that q holds.
func countSamplesOf(t *testing.T, q storage.Queryable, name string) int {
	t.Helper()
	qr, err := q.Querier(0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	defer qr.Close()
	n := 0
	set := qr.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
	for set.Next() {
		for it := set.At().Iterator(nil); it.Next() != 0; {
			n++
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// Every tenant's TSDB is back after a restart, with its own series only:
// the tenants' TSDBs open at once, beside the default tenant's.
func TestRestartOpensEveryTenant(t *testing.T) {
	cfg := config.Default()
	dir := t.TempDir()
	open := func() *Storage {
		s, err := Open(cfg.Metrics, cfg.Limits, dir, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tenants := []string{"team-a", "team-b", "team-c", "team-d", "team-e"}
	s := open()
	for i, id := range append([]string{pipeline.DefaultTenant}, tenants...) {
		td, err := s.tenant(id)
		if err != nil {
			t.Fatal(err)
		}
		app := td.db.Appender(context.Background())
		for n := 0; n <= i; n++ { // tenant i has i+1 series
			if _, err := app.Append(0, labels.FromStrings("__name__", "tenant_test", "n", strconv.Itoa(n)), 1_000_000, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	if got := len(s.allTenants()); got != len(tenants)+1 {
		t.Fatalf("%d tenants after the restart, want %d", got, len(tenants)+1)
	}
	for i, id := range append([]string{pipeline.DefaultTenant}, tenants...) {
		td := s.lookup(id)
		if td == nil {
			t.Fatalf("tenant %q not opened at start-up", id)
		}
		if got := td.db.Head().NumSeries(); got != uint64(i+1) {
			t.Errorf("tenant %q: %d series after the restart, want %d", id, got, i+1)
		}
	}
}
