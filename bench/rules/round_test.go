package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	runtimemetrics "runtime/metrics"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/metrics"
	"github.com/vispyr/vispyr/internal/prommgr"
)

// BenchmarkRound is the bench's rules and series in this process: Vispyr's
// metrics store and rules manager as `vispyr serve` wires them (garbage
// collector tuning included), without HTTP and without a peer, so that the
// CPU and allocations of one evaluation round of all 63 groups can be
// measured steadily before and after a change:
//
//	go test ./bench/rules -run XXX -bench Round -benchtime 10x [-round.cpuprofile f] [-round.memprofile f]
//
// Each iteration evaluates every group once, one after the other, 15 s after
// the last round, at timestamps fixed in the samples' time (not the clock's),
// so that every run reads the same windows of the same chunks. It reports
// CPU-seconds (the process's, the collector's included, and the collector's
// alone as the runtime estimates it), bytes and objects allocated, and
// collections, per round. Nothing is written but the rules'
// results, as in the bench.
func BenchmarkRound(b *testing.B) {
	s := roundSetup(b)
	if s.err != nil {
		b.Fatal(s.err)
	}
	if s.next+b.N > maxRounds {
		b.Fatalf("%d rounds asked, the samples last for %d", s.next+b.N, maxRounds)
	}
	s.round() // a warm-up round
	// As in `vispyr serve` by the time its rules run: limits.TuneGC (which
	// judges the collector's CPU by steps of 30 s) has seen the writes of the
	// series, and the head has m-mapped its full chunks (every minute), which
	// reads then copy from disk.
	if !*roundNoWait {
		time.Sleep(35 * time.Second)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	gcCPU := []runtimemetrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	runtimemetrics.Read(gcCPU)
	gc0 := gcCPU[0].Value.Float64()
	cpu0 := proc.CPUTime(os.Getpid())
	stop := startProfiles(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.round()
	}
	b.StopTimer()
	stop()
	cpu := proc.CPUTime(os.Getpid()) - cpu0
	runtime.ReadMemStats(&ms1)
	runtimemetrics.Read(gcCPU)
	n := float64(b.N)
	b.ReportMetric(cpu.Seconds()/n, "cpu-s/round")
	b.ReportMetric((gcCPU[0].Value.Float64()-gc0)/n, "gc-cpu-s/round")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n, "B/round")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/round")
	b.ReportMetric(float64(ms1.NumGC-ms0.NumGC)/n, "gc/round")
	b.ReportMetric(float64(ms1.HeapAlloc), "heap-B")
	if failed := s.failures(); failed > 0 {
		b.Fatalf("%.0f rule evaluations failed", failed)
	}
}

var (
	roundCPUProfile = flag.String("round.cpuprofile", "", "write a CPU profile of BenchmarkRound's measured rounds to this file")
	roundNoWait     = flag.Bool("round.nowait", false, "measure right after the warm-up round, before the collector's tuning has taken its first step")
	roundMemProfile = flag.String("round.memprofile", "", "write allocation profiles before (file.base) and after BenchmarkRound's measured rounds: go tool pprof -sample_index alloc_space -base file.base file")
)

// startProfiles starts the profiles asked for and returns what stops them.
func startProfiles(b *testing.B) (stop func()) {
	writeAllocs(b, *roundMemProfile, ".base")
	if *roundCPUProfile == "" {
		return func() { writeAllocs(b, *roundMemProfile, "") }
	}
	f, err := os.Create(*roundCPUProfile)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		writeAllocs(b, *roundMemProfile, "")
	}
}

func writeAllocs(b *testing.B, file, suffix string) {
	if file == "" {
		return
	}
	f, err := os.Create(file + suffix)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// The samples: 35 minutes before the first round and 10 after it, from a
// fixed instant (the head cuts chunks at 2-hour boundaries of the samples'
// time, so a clock-relative start would read different chunks on each run).
const (
	roundHistory  = 35 * time.Minute
	roundInterval = 15 * time.Second
	maxRounds     = int(10 * time.Minute / roundInterval)
)

var roundStart = time.Date(2026, 1, 1, 0, 40, 0, 0, time.UTC)

type roundState struct {
	err      error
	mgr      *prommgr.Manager
	next     int // rounds evaluated so far
	failures func() float64
}

// round evaluates every group once, roundInterval after the last round.
func (s *roundState) round() {
	s.mgr.EvalRuleGroups(context.Background(), roundStart.Add(time.Duration(s.next)*roundInterval))
	s.next++
}

var (
	roundOnce  sync.Once
	roundSetUp = &roundState{}
	roundDir   string // the store's directory, removed when the tests end
)

func TestMain(m *testing.M) {
	code := m.Run()
	if roundDir != "" {
		os.RemoveAll(roundDir)
	}
	os.Exit(code)
}

// roundSetup loads the bench's series into a metrics store and its rules into
// a rules manager, once per process (the benchmark function runs more than
// once).
func roundSetup(b *testing.B) *roundState {
	roundOnce.Do(func() {
		s := roundSetUp
		dir, err := os.MkdirTemp("", "bench-rules-round-")
		if err != nil {
			s.err = err
			return
		}
		roundDir = dir
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		limits.TuneGC(context.Background(), logger)
		cfg := config.Default()
		reg := prometheus.NewRegistry()
		st, err := metrics.Open(cfg.Metrics, cfg.Limits, dir, logger, reg)
		if err != nil {
			s.err = err
			return
		}
		l := newLoad(50, 285, 5, roundStart.Add(-roundHistory), roundStart.Add(time.Duration(maxRounds)*roundInterval), 15*time.Second)
		if s.err = appendLoad(st.DB(), l); s.err != nil {
			return
		}
		promCfg, err := writeRuleConfig(l, dir)
		if err != nil {
			s.err = err
			return
		}
		s.mgr, s.err = prommgr.New(prommgr.Options{Config: prommgr.Config{ConfigFile: promCfg}, DataDir: dir,
			LookbackDelta: cfg.Metrics.LookbackDelta, QueryTimeout: cfg.Metrics.QueryTimeout}, st.DB(), logger, reg)
		s.failures = func() float64 { return gatherSum(reg, "prometheus_rule_evaluation_failures_total") }
	})
	return roundSetUp
}

// writeRuleConfig writes the bench's rule file and a prometheus.yml naming it
// into dir.
func writeRuleConfig(l *load, dir string) (promCfg string, err error) {
	groups, err := ruleSet(l, roundInterval)
	if err != nil {
		return "", err
	}
	y, err := ruleYAML(groups)
	if err != nil {
		return "", err
	}
	ruleFile, promCfg := filepath.Join(dir, "rules.yml"), filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(ruleFile, y, 0o644); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf("global:\n  evaluation_interval: %s\nrule_files: [%q]\n", roundInterval, ruleFile)
	return promCfg, os.WriteFile(promCfg, []byte(cfg), 0o644)
}

// appendLoad writes every point of the load into db.
func appendLoad(db storage.AppendableV2, l *load) error {
	app := db.AppenderV2(context.Background())
	written := 0
	err := l.each(func(lv []string, vals []float64) error {
		lset := labels.FromStrings(lv...)
		var ref storage.SeriesRef
		for p := 0; p < l.points; p++ {
			var err error
			ref, err = app.Append(ref, lset, 0, l.start.Add(time.Duration(p)*l.step).UnixMilli(), vals[p], nil, nil, storage.AOptions{})
			if err != nil {
				return err
			}
		}
		if written++; written%1000 == 0 { // commits of a bounded size
			if err := app.Commit(); err != nil {
				return err
			}
			app = db.AppenderV2(context.Background())
		}
		return nil
	})
	if err != nil {
		return err
	}
	return app.Commit()
}

// gatherSum sums a counter's values over its series.
func gatherSum(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
