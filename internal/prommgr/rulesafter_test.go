package prommgr

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

// recorded counts the samples of the rule's series in db.
func recorded(t *testing.T, db *tsdb.DB) int {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "gate:test"))
	n := 0
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			n++
		}
	}
	return n
}

// startGated runs a manager with a 1 s recording rule held back by gate.
func startGated(t *testing.T, gate chan struct{}) (*Manager, *tsdb.DB, context.CancelFunc, chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, []byte("groups:\n- name: g\n  interval: 1s\n  rules:\n  - record: gate:test\n    expr: vector(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte("rule_files: ["+rules+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := tsdb.Open(filepath.Join(dir, "tsdb"), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m, err := New(Options{Config: Config{ConfigFile: cfgFile}, DataDir: dir, RulesAfter: gate, QueryTimeout: time.Minute},
		db, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	return m, db, cancel, done
}

// Rules do not evaluate while the metrics store replays its WAL in the
// background; a reload meanwhile waits, and they start once it ends.
func TestRulesWaitForRulesAfter(t *testing.T) {
	gate := make(chan struct{})
	m, db, cancel, done := startGated(t, gate)
	reloaded := make(chan error, 1)
	go func() { reloaded <- m.Reload() }()
	time.Sleep(3 * time.Second) // three evaluation intervals
	if n := recorded(t, db); n != 0 {
		t.Fatalf("the rule recorded %d samples before the gate opened", n)
	}
	select {
	case err := <-reloaded:
		t.Fatalf("a reload went through before rules started: %v", err)
	default:
	}
	close(gate)
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for recorded(t, db) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the rule never evaluated after the gate opened")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
}

// A stop before the gate opens does not hang on the groups never started.
func TestRulesStopBeforeRulesAfter(t *testing.T) {
	_, db, cancel, done := startGated(t, make(chan struct{}))
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	if n := recorded(t, db); n != 0 {
		t.Fatalf("the rule recorded %d samples", n)
	}
}
