package head

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"

	"github.com/vispyr/vispyr/internal/wal"
)

// replayedExemplars collects what a head's replay hands to OnExemplar.
type replayedExemplars []replayedExemplar

type replayedExemplar struct {
	series labels.Labels
	e      exemplar.Exemplar
}

func (r *replayedExemplars) add(l labels.Labels, e exemplar.Exemplar) {
	*r = append(*r, replayedExemplar{l, e})
}

// lines are the exemplars as exemplarLines.
func (r replayedExemplars) lines() []string {
	var out []string
	for _, e := range r {
		out = append(out, exemplarLine(e.series, e.e))
	}
	return out
}

func exemplarLine(l labels.Labels, e exemplar.Exemplar) string {
	return fmt.Sprintf("%s|%s@%d=%v", l, e.Labels.Get("trace_id"), e.Ts, e.Value)
}

// openReplaying opens the head in dir with a WAL, collecting the exemplars
// its replay hands over.
func openReplaying(t *testing.T, dir string, segmentSize int64) (*Head, *replayedExemplars) {
	t.Helper()
	got := &replayedExemplars{}
	h, err := New(Options{ChunkDir: filepath.Join(dir, "chunks_head"), WALDir: filepath.Join(dir, "wal"),
		WALSegmentSize: segmentSize, ChunkRange: 3600 * 1000, OnWriteError: func(err error) { t.Error(err) },
		OnExemplar: got.add})
	if err != nil {
		t.Fatal(err)
	}
	return h, got
}

func traceExemplar(trace string, ts int64, v float64) exemplar.Exemplar {
	return exemplar.Exemplar{Labels: labels.FromStrings("trace_id", trace), Value: v, Ts: ts, HasTs: true}
}

// TestExemplarsRoundTripTheWAL commits exemplars with their samples, by
// labels and by ref, alone in a commit for a series committed before, and
// in a commit rolled back, restarts, and gets back exactly the committed
// ones, in commit order, with their series' labels.
func TestExemplarsRoundTripTheWAL(t *testing.T) {
	dir := t.TempDir()
	h, _ := openReplaying(t, dir, 0)
	ctx := context.Background()
	a, b := labels.FromStrings("__name__", "a", "i", "1"), labels.FromStrings("__name__", "b")
	var want []string
	app := h.Appender(ctx)
	refA, err := app.Append(0, a, 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Append(0, b, 1000, 2); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		ref        storage.SeriesRef
		given, has labels.Labels // the labels given, and the series'
		e          exemplar.Exemplar
	}{
		{refA, labels.EmptyLabels(), a, traceExemplar("t1", 1000, 1)}, // by ref
		{0, b, b, traceExemplar("t2", 1000, 2)},                       // by labels
	} {
		if _, err := app.AppendExemplar(e.ref, e.given, e.e); err != nil {
			t.Fatal(err)
		}
		want = append(want, exemplarLine(e.has, e.e))
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	app = h.Appender(ctx) // an exemplar alone, of a series committed before
	if _, err := app.AppendExemplar(refA, a, traceExemplar("t3", 2000, 3)); err != nil {
		t.Fatal(err)
	}
	want = append(want, exemplarLine(a, traceExemplar("t3", 2000, 3)))
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	app = h.Appender(ctx) // rolled back: not in the WAL
	if _, err := app.AppendExemplar(refA, a, traceExemplar("rolled-back", 3000, 4)); err != nil {
		t.Fatal(err)
	}
	if err := app.Rollback(); err != nil {
		t.Fatal(err)
	}
	app = h.Appender(ctx)
	if _, err := app.AppendExemplar(0, labels.FromStrings("__name__", "none"), traceExemplar("t4", 1000, 1)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an exemplar of a series the head does not hold: %v, want ErrNotFound", err)
	}
	app.Rollback()
	h.Close()

	h, got := openReplaying(t, dir, 0)
	defer h.Close()
	if !slices.Equal(got.lines(), want) {
		t.Fatalf("replayed exemplars:\n%q\nwant\n%q", got.lines(), want)
	}
}

// TestExemplarsOfANewSeriesFollowItsRecord commits an exemplar of a series
// created by another appender whose commit has not come yet: the series'
// record goes before the exemplar, so replay finds its labels.
func TestExemplarsOfANewSeriesFollowItsRecord(t *testing.T) {
	dir := t.TempDir()
	h, _ := openReplaying(t, dir, 0)
	ctx := context.Background()
	l := labels.FromStrings("__name__", "new")
	creator := h.Appender(ctx)
	if _, err := creator.Append(0, l, 1000, 1); err != nil {
		t.Fatal(err)
	}
	app := h.Appender(ctx)
	if _, err := app.AppendExemplar(0, l, traceExemplar("t1", 1000, 1)); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	creator.Rollback()
	h.Close()
	h, got := openReplaying(t, dir, 0)
	defer h.Close()
	if want := []string{exemplarLine(l, traceExemplar("t1", 1000, 1))}; !slices.Equal(got.lines(), want) {
		t.Fatalf("replayed %q, want %q", got.lines(), want)
	}
}

// TestReplayedExemplarsFollowRemappedSeries replays a WAL in which a
// series' record came below a later ref (a repeat after a failed write):
// its exemplars follow it to its new ref and carry its labels, and an
// exemplar of a ref no series record names is skipped.
func TestReplayedExemplarsFollowRemappedSeries(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{Name: "test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var enc record.Encoder
	a, b := labels.FromStrings("__name__", "a"), labels.FromStrings("__name__", "b")
	ex := func(ref int, trace string, ts int64) record.RefExemplar {
		return record.RefExemplar{Ref: chunks.HeadSeriesRef(ref), T: ts, V: float64(ts), Labels: labels.FromStrings("trace_id", trace)}
	}
	for _, rec := range [][]byte{
		enc.Series([]record.RefSeries{{Ref: 7, Labels: a}}, nil),
		enc.Samples([]record.RefSample{{Ref: 7, T: 1000, V: 1}}, nil),
		enc.Exemplars([]record.RefExemplar{ex(7, "a1", 1000)}, nil),
		enc.Series([]record.RefSeries{{Ref: 5, Labels: b}}, nil),
		enc.Samples([]record.RefSample{{Ref: 5, T: 1000, V: 2}, {Ref: 7, T: 2000, V: 3}}, nil),
		enc.Exemplars([]record.RefExemplar{ex(5, "b1", 1000), ex(7, "a2", 2000), ex(9, "unknown", 2000)}, nil),
	} {
		if err := w.Append(context.Background(), encodeRecord(rec)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()

	h, got := openReplaying(t, dir, 0)
	defer h.Close()
	if refB, _ := h.index.Lookup(b); refB != 8 {
		t.Fatalf("series b has ref %d, want 8 (moved)", refB)
	}
	want := []string{
		exemplarLine(a, traceExemplar("a1", 1000, 1000)),
		exemplarLine(b, traceExemplar("b1", 1000, 1000)),
		exemplarLine(a, traceExemplar("a2", 2000, 2000)),
	}
	if !slices.Equal(got.lines(), want) {
		t.Fatalf("replayed exemplars:\n%q\nwant\n%q", got.lines(), want)
	}
}

// TestTruncateWALKeepsExemplarsFromMint checkpoints a WAL of many segments
// twice, restarting after each, and gets back the exemplars from the
// checkpoint's mint on of the live series, as Prometheus's checkpoint
// keeps them, and none of a series removed before the checkpoint.
func TestTruncateWALKeepsExemplarsFromMint(t *testing.T) {
	dir := t.TempDir()
	h, _ := openReplaying(t, dir, 4<<10)
	ctx := context.Background()
	const rounds = 2000
	appendRounds(t, h, 0, 200, true, "gone")
	appendRounds(t, h, 0, rounds, true, "a", "b")
	for i, mint := range []int64{700 * 1000, 1400 * 1000} {
		if i == 0 {
			removeSeries(h, "gone")
		}
		if err := h.TruncateWAL(ctx, mint); err != nil {
			t.Fatal(err)
		}
		if cp, _, err := lastCheckpoint(filepath.Join(dir, "wal")); err != nil || cp == "" {
			t.Fatalf("no checkpoint (%v)", err)
		}
		h.Close()
		var got *replayedExemplars
		h, got = openReplaying(t, dir, 4<<10)
		first, n := map[string]int64{}, map[string]int64{}
		for _, r := range *got {
			name := r.series.Get("__name__")
			if _, ok := first[name]; !ok {
				first[name] = r.e.Ts
			}
			if r.e.Ts != first[name]+n[name]*1000 || r.e.Value != float64(r.e.Ts/1000) || r.e.Labels.Get("trace_id") != strconv.FormatInt(r.e.Ts/1000, 10) {
				t.Fatalf("checkpoint %d: series %s: exemplar %s out of sequence", i, name, exemplarLine(r.series, r.e))
			}
			n[name]++
		}
		if n["gone"] > 0 {
			t.Fatalf("checkpoint %d: %d exemplars of the removed series came back", i, n["gone"])
		}
		for _, name := range []string{"a", "b"} {
			// Every exemplar from mint on; those before it only as far
			// as the segments kept (the last third) reach back.
			if first[name] > mint || first[name] == 0 || first[name]+n[name]*1000 != rounds*1000 {
				t.Fatalf("checkpoint %d: series %s keeps %d exemplars from %d; want all from %d on, not the first",
					i, name, n[name], first[name], mint)
			}
		}
	}
	h.Close()
}

// TestExemplarsOfSeriesRemovedBeforeCommit appends exemplars of two series
// that truncation then removes, one of them created again before the
// commit: the exemplar of the series created again is logged under its new
// ref, the other's is left out of the WAL, and the commit succeeds.
func TestExemplarsOfSeriesRemovedBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	h, _ := openReplaying(t, dir, 0)
	ctx := context.Background()
	back, gone := labels.FromStrings("__name__", "back"), labels.FromStrings("__name__", "gone")
	refs := map[string]storage.SeriesRef{}
	app := h.Appender(ctx)
	for _, l := range []labels.Labels{back, gone} {
		ref, err := app.Append(0, l, 1000, 1)
		if err != nil {
			t.Fatal(err)
		}
		refs[l.Get("__name__")] = ref
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = h.Appender(ctx)
	for _, l := range []labels.Labels{back, gone} {
		if _, err := app.AppendExemplar(refs[l.Get("__name__")], l, traceExemplar(l.Get("__name__"), 1000, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Truncate(5000); err != nil {
		t.Fatal(err)
	}
	if h.HasSeries(back) || h.HasSeries(gone) {
		t.Fatal("truncation kept series without samples")
	}
	again := h.Appender(ctx)
	if _, err := again.Append(0, back, 6000, 2); err != nil {
		t.Fatal(err)
	}
	if err := again.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatalf("commit of exemplars of removed series: %v", err)
	}
	h.Close()
	h, got := openReplaying(t, dir, 0)
	defer h.Close()
	if want := []string{exemplarLine(back, traceExemplar("back", 1000, 1))}; !slices.Equal(got.lines(), want) {
		t.Fatalf("replayed %q, want %q", got.lines(), want)
	}
}
