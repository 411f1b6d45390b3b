package head

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/metrics/nodeshape"
)

// BenchmarkCommit times commits of 5,000 samples to a head with a WAL, as
// remote-write requests arrive, over 50,000 series of nodeshape's load
// (the first round by labels, later ones by ref): without exemplars, with
// one every tenth sample and with one a sample (trace_id and span_id, as
// OTLP's and the span-metrics generator's carry). It reports the time and
// the WAL's bytes a sample: an exemplar's bytes are the difference from the
// run without, over exemplars/sample. Run it with a fixed -benchtime (400x:
// 40 rounds) so that every run writes as many samples.
func BenchmarkCommit(b *testing.B) {
	for _, every := range []int{0, 10, 1} {
		name := "no-exemplars"
		if every > 0 {
			name = fmt.Sprintf("exemplar-every-%d", every)
		}
		b.Run(name, func(b *testing.B) { benchCommit(b, every) })
	}
}

func benchCommit(b *testing.B, every int) {
	const series, batch = 50_000, 5000
	dir := b.TempDir()
	h, err := New(Options{ChunkDir: filepath.Join(dir, "chunks"), WALDir: filepath.Join(dir, "wal"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	// Made before, as the caller makes them; more than a commit takes, so
	// that no record repeats one (trace ids are random: snappy finds
	// nothing to take out of them).
	traces := make([]labels.Labels, 2*batch)
	for i := range traces {
		traces[i] = labels.FromStrings("span_id", fmt.Sprintf("%016x", rng.Uint64()), "trace_id", fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()))
	}
	refs := make([]storage.SeriesRef, series)
	values := make([]float64, series)
	var sb labels.ScratchBuilder
	start := time.Now().Add(-time.Hour).UnixMilli()
	ctx := context.Background()
	next, exemplars := 0, 0
	for b.Loop() {
		app := h.Appender(ctx)
		for range batch {
			s, r := next%series, next/series
			var lset labels.Labels
			if refs[s] == 0 {
				lset = nodeshape.Labels(&sb, s)
			}
			values[s] = nodeshape.Next(s, values[s], rng)
			ts := start + int64(r)*15000
			ref, err := app.Append(refs[s], lset, ts, values[s])
			if err != nil {
				b.Fatal(err)
			}
			refs[s] = ref
			if every > 0 && next%every == 0 {
				e := exemplar.Exemplar{Labels: traces[next%len(traces)], Value: values[s], Ts: ts, HasTs: true}
				if _, err := app.AppendExemplar(ref, lset, e); err != nil {
					b.Fatal(err)
				}
				exemplars++
			}
			next++
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(next), "ns/sample")
	wal := float64(dirBytes(b, filepath.Join(dir, "wal")))
	b.ReportMetric(wal/float64(next), "WAL-B/sample")
	b.ReportMetric(float64(exemplars)/float64(next), "exemplars/sample")
}
