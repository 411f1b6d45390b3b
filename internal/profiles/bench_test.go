package profiles_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/profiles"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope/convert"
)

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

// realBatch converts testdata/go-cpu-10s.pb.gz, a 10-second CPU profile of a Go
// program doing JSON, sorting, regexps, gzip, hashing and maps on 4 goroutines.
func realBatch(tb testing.TB, svc string, at time.Time) *profiles.Batch {
	tb.Helper()
	raw, err := os.ReadFile("testdata/go-cpu-10s.pb.gz")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := convert.ParsePprof(raw)
	if err != nil {
		tb.Fatal(err)
	}
	p.TimeNanos = at.UnixNano()
	b, err := convert.FromPprof(p, convert.Input{Labels: map[string]string{"service_name": svc}, SpyName: "gospy"})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func openBench(tb testing.TB, dir string) *profiles.Store {
	tb.Helper()
	s, err := profiles.Open(profiles.Config{}, dir, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// fillHour appends 360 profiles of one service, 10 s apart. Each copy keeps a random
// 70% of the samples with randomly scaled values, so consecutive profiles differ
// the way real ones do and compression is not flattered by identical copies.
func fillHour(tb testing.TB, s *profiles.Store, svc string, start time.Time) {
	tb.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 360 {
		b := realBatch(tb, svc, start.Add(time.Duration(i)*10*time.Second))
		for j := range b.Profiles {
			p := &b.Profiles[j]
			kept := p.Samples[:0]
			for _, x := range p.Samples {
				if rnd.Float64() < 0.3 {
					continue
				}
				x.Value = x.Value * int64(1+rnd.IntN(4))
				kept = append(kept, x)
			}
			p.Samples = kept
		}
		if err := s.Append(context.Background(), b); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkDiskBytesPerProfile reports the bytes a block needs per 10-second CPU
// profile (both sample types of one upload count as one profile here).
func BenchmarkDiskBytesPerProfile(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		s := openBench(b, dir)
		fillHour(b, s, "svc", time.Now().Add(-time.Hour))
		if err := s.CutHead(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(s.DiskBytes())/360, "disk-bytes/profile")
		s.Close()
	}
	raw, _ := os.Stat("testdata/go-cpu-10s.pb.gz")
	b.ReportMetric(float64(raw.Size()), "pprof-gz-bytes")
}

// BenchmarkSelectMergeStacktraces merges one hour (360 profiles) of one service into
// a flame graph with Pyroscope's default 8192 nodes: from the head (memory), from a
// block already decoded, and from a block read cold from disk.
func BenchmarkSelectMergeStacktraces(b *testing.B) {
	start := time.Now().Add(-time.Hour)
	ms, _ := profiles.ParseSelector(`{service_name="svc"}`)
	sel := profiles.Selector{Tenant: "single-tenant", Start: start.UnixNano(), End: time.Now().UnixNano(), TypeID: cpuType, Matchers: ms}
	run := func(b *testing.B, s *profiles.Store, before func()) {
		for b.Loop() {
			if before != nil {
				b.StopTimer()
				before()
				b.StartTimer()
			}
			tree, err := s.MergeTree(context.Background(), sel, nil)
			if err != nil {
				b.Fatal(err)
			}
			fg := tree.FlameGraph(profiles.DefaultMaxNodes)
			if fg.Total == 0 {
				b.Fatal("empty flame graph")
			}
		}
	}
	s := openBench(b, b.TempDir())
	defer s.Close()
	fillHour(b, s, "svc", start)
	b.Run("head", func(b *testing.B) { run(b, s, nil) })
	if err := s.CutHead(); err != nil {
		b.Fatal(err)
	}
	b.Run("block-cached", func(b *testing.B) { run(b, s, nil) })
	b.Run("block-cold", func(b *testing.B) { run(b, s, s.DropBlockCache) })
}

func BenchmarkConvertPprof(b *testing.B) {
	raw, err := os.ReadFile("testdata/go-cpu-10s.pb.gz")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p, err := convert.ParsePprof(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := convert.FromPprof(p, convert.Input{Labels: map[string]string{"service_name": "x"}}); err != nil {
			b.Fatal(err)
		}
	}
}
