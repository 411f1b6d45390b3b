package profiles

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

var timeZero = time.Unix(1700000000, 0)

const testType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testBatch builds a batch of one CPU profile of service svc at t with stacks given
// as "a;b;c" -> value.
func testBatch(svc string, t time.Time, stacks map[string]int64, span uint64) *Batch {
	b := &Batch{Tenant: "single-tenant"}
	names := map[string]uint32{}
	p := Profile{TimeNanos: t.UnixNano(), Labels: labels.FromStrings(LabelServiceName, svc, LabelProfileType, testType, LabelMetricName, "process_cpu")}
	for st, v := range stacks {
		var frames []uint32
		for _, f := range splitStack(st) {
			id, ok := names[f]
			if !ok {
				id = uint32(len(b.Names))
				b.Names = append(b.Names, f)
				names[f] = id
			}
			frames = append(frames, id)
		}
		b.Stacks = append(b.Stacks, frames)
		p.Samples = append(p.Samples, Sample{Stack: uint32(len(b.Stacks) - 1), Value: v, SpanID: span})
	}
	b.Profiles = []Profile{p}
	return b
}

func splitStack(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ';' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func mustOpen(t *testing.T, cfg Config, dir string) *Store {
	t.Helper()
	s, err := Open(cfg, dir, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func allTime(svc string) Selector {
	ms, _ := ParseSelector(`{service_name="` + svc + `"}`)
	return Selector{Tenant: "single-tenant", Start: 0, End: 1<<63 - 1, TypeID: testType, Matchers: ms}
}

func total(t *testing.T, s *Store, svc string) int64 {
	t.Helper()
	tree, err := s.MergeTree(context.Background(), allTime(svc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree.Total()
}

// TestDurableWithoutClose acknowledges data, never closes the store (as after
// kill -9) and expects a new store on the same directory to hold it.
func TestDurableWithoutClose(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Config{}, dir)
	now := time.Now()
	for i := range 10 {
		if err := s.Append(context.Background(), testBatch("api", now.Add(time.Duration(i)*time.Second), map[string]int64{"main;work": 10}, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// No Close: the WAL file handle is simply abandoned.
	s2 := mustOpen(t, Config{}, dir)
	defer s2.Close()
	if got := total(t, s2, "api"); got != 100 {
		t.Fatalf("after reopen total = %d, want 100", got)
	}
}

// TestCutHeadAndReopen flushes the head to a block, keeps appending, and checks
// queries span block and head, before and after a restart, without duplicates.
func TestCutHeadAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Config{}, dir)
	now := time.Now()
	add := func(s *Store, v int64) {
		if err := s.Append(context.Background(), testBatch("api", now, map[string]int64{"main;a": v, "main;b": v}, 0)); err != nil {
			t.Fatal(err)
		}
	}
	add(s, 1)
	if err := s.CutHead(); err != nil {
		t.Fatal(err)
	}
	add(s, 2)
	if got := total(t, s, "api"); got != 6 {
		t.Fatalf("block+head total = %d, want 6", got)
	}
	if n := len(s.blocks); n != 1 {
		t.Fatalf("blocks = %d, want 1", n)
	}
	s.Close()
	s2 := mustOpen(t, Config{}, dir)
	defer s2.Close()
	if got := total(t, s2, "api"); got != 6 {
		t.Fatalf("after reopen total = %d, want 6 (no duplicates from the WAL)", got)
	}
	if got := s2.LabelValues(allTime("api"), LabelServiceName); len(got) != 1 || got[0] != "api" {
		t.Fatalf("label values from block meta = %v", got)
	}
}

// TestRetentionFreesDisk checks both time and size retention delete block files.
func TestRetentionFreesDisk(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Config{Retention: time.Hour}, dir)
	defer s.Close()
	old := time.Now().Add(-2 * time.Hour)
	if err := s.Append(context.Background(), testBatch("old", old, map[string]int64{"x": 1}, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.CutHead(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Append(context.Background(), testBatch("new", time.Now(), map[string]int64{"y;z": int64(i + 1)}, 0)); err != nil {
			t.Fatal(err)
		}
		if err := s.CutHead(); err != nil {
			t.Fatal(err)
		}
	}
	s.applyRetention()
	if got := total(t, s, "old"); got != 0 {
		t.Fatalf("expired data still queryable: total %d", got)
	}
	if n := countBlocks(t, dir); n != 3 {
		t.Fatalf("blocks on disk after time retention = %d, want 3", n)
	}
	// Size retention: one byte less than what is used must cost the oldest block.
	s.cfg.MaxDiskBytes = s.DiskBytes() - 1
	s.applyRetention()
	if n := countBlocks(t, dir); n != 2 {
		t.Fatalf("blocks on disk after size retention = %d, want 2", n)
	}
	if got := total(t, s, "new"); got != 5 {
		t.Fatalf("newest blocks should survive: total %d, want 2+3", got)
	}
}

func countBlocks(t *testing.T, dir string) int {
	ents, err := os.ReadDir(filepath.Join(dir, "profiles", "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestTornWALTail simulates a crash in the middle of a WAL write: the partial
// record is dropped, everything before it is kept.
func TestTornWALTail(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Config{}, dir)
	if err := s.Append(context.Background(), testBatch("api", time.Now(), map[string]int64{"a": 5}, 0)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "profiles", "wal", "0*"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3}) // header promising 200 bytes, then a crash
	f.Close()
	s2 := mustOpen(t, Config{}, dir)
	defer s2.Close()
	if got := total(t, s2, "api"); got != 5 {
		t.Fatalf("total after torn tail = %d, want 5", got)
	}
}

func TestTenantsAreSeparate(t *testing.T) {
	s := mustOpen(t, Config{}, t.TempDir())
	defer s.Close()
	b := testBatch("api", time.Now(), map[string]int64{"a": 5}, 0)
	b.Tenant = "other"
	if err := s.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := total(t, s, "api"); got != 0 {
		t.Fatalf("default tenant sees another tenant's data: %d", got)
	}
	sel := allTime("api")
	sel.Tenant = "other"
	if got := s.LabelNames(sel); len(got) == 0 || slices.Contains(got, labelTenant) {
		t.Fatalf("label names = %v: want data, without the hidden tenant label", got)
	}
}

func TestConfigValidate(t *testing.T) {
	var c Config
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	c.Retention = time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "retention:") {
		t.Fatalf("want error naming retention, got %v", err)
	}
}

// TestRunCutsHead runs the background loop with a short block duration and waits
// for the head to become a block, still answering queries.
func TestRunCutsHead(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Config{BlockDuration: time.Second}, dir)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	if err := s.Append(context.Background(), testBatch("api", time.Now(), map[string]int64{"a": 7}, 0)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for countBlocks(t, dir) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if countBlocks(t, dir) != 1 {
		t.Fatal("head was not cut into a block within 10s")
	}
	if got := total(t, s, "api"); got != 7 {
		t.Fatalf("total after cut = %d, want 7", got)
	}
}

// TestFailedFlushKeepsWAL makes the block write fail (blocks dir not writable), cuts
// again after more data, and checks nothing is lost across a restart.
func TestFailedFlushKeepsWAL(t *testing.T) {
	// Root ignores directory permissions, so put a file where blocks/ should be.
	dir := t.TempDir()
	s := mustOpen(t, Config{}, dir)
	add := func(v int64) {
		if err := s.Append(context.Background(), testBatch("api", time.Now(), map[string]int64{"a": v}, 0)); err != nil {
			t.Fatal(err)
		}
	}
	add(1)
	blocks := filepath.Join(dir, "profiles", "blocks")
	os.RemoveAll(blocks)
	os.WriteFile(blocks, []byte("in the way"), 0o644) // writeBlock cannot create dirs under a file
	if err := s.CutHead(); err == nil {
		t.Fatal("cut should fail while blocks/ is a file")
	}
	add(2)
	if err := s.CutHead(); err == nil {
		t.Fatal("second cut should fail too")
	}
	if got := total(t, s, "api"); got != 3 {
		t.Fatalf("unflushed heads must stay queryable: %d, want 3", got)
	}
	os.Remove(blocks)
	os.MkdirAll(blocks, 0o755)
	add(4)
	if err := s.CutHead(); err != nil {
		t.Fatal(err)
	}
	if n := countBlocks(t, dir); n != 3 {
		t.Fatalf("blocks after recovery = %d, want 3 (two retried heads and the new one)", n)
	}
	s.Close()
	s2 := mustOpen(t, Config{}, dir)
	defer s2.Close()
	if got := total(t, s2, "api"); got != 7 {
		t.Fatalf("after restart total = %d, want 7", got)
	}
}

func TestMetricsExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := Open(Config{}, t.TempDir(), discard(), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(context.Background(), testBatch("api", time.Now(), map[string]int64{"a": 1, "b": 1}, 0)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	if got["vispyr_profiles_ingested_samples_total"] != 2 || got["vispyr_profiles_head_samples"] != 2 {
		t.Errorf("metrics = %v", got)
	}
}
