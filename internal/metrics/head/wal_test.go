package head

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/record"

	"github.com/vispyr/vispyr/internal/wal"
)

func openWithWAL(t testing.TB, dir string) *Head {
	t.Helper()
	h, err := New(Options{ChunkDir: filepath.Join(dir, "chunks_head"), WALDir: filepath.Join(dir, "wal"),
		ChunkRange: 60000, OnWriteError: func(err error) { t.Error(err) }})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// crashSeries and crashRounds shape what the child appends: a round is one
// commit of a sample for each series, and chunks are cut every minute so
// that closed chunks are written to files too.
const crashSeries, crashRounds = 50, 4000

func crashValue(s, r int) float64 { return float64(s*100000 + r) }

// TestCrashChild is the process TestKillDuringCommitsLosesNothing kills.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("VISPYR_HEAD_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestKillDuringCommitsLosesNothing")
	}
	h := openWithWAL(t, dir)
	var sb labels.ScratchBuilder
	for r := range crashRounds {
		app := h.Appender(context.Background())
		for s := range crashSeries {
			sb.Reset()
			sb.Add("series", strconv.Itoa(s))
			if _, err := app.Append(0, sb.Labels(), int64(r)*1000, crashValue(s, r)); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("committed %d\n", r)
	}
}

// TestKillDuringCommitsLosesNothing kills (SIGKILL) a process appending to
// a head in the middle of its commits, reopens the head, and finds every
// sample of every commit the process saw return, and nothing else.
func TestKillDuringCommitsLosesNothing(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "VISPYR_HEAD_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	committed := -1
	for lines.Scan() {
		if _, err := fmt.Sscanf(lines.Text(), "committed %d", &committed); err == nil && committed >= crashRounds/3 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if committed < crashRounds/3 || committed == crashRounds-1 {
		t.Fatalf("the child committed %d rounds before the kill; want it killed mid-way", committed+1)
	}

	h := openWithWAL(t, dir)
	defer h.Close()
	q, err := h.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "series", ".+"))
	n := 0
	for ; set.Next(); n++ {
		s, _ := strconv.Atoi(set.At().Labels().Get("series"))
		it := set.At().Iterator(nil)
		r := 0
		for ; it.Next() == chunkenc.ValFloat; r++ {
			if ts, v := it.At(); ts != int64(r)*1000 || v != crashValue(s, r) {
				t.Fatalf("series %d, round %d: (%d, %v)", s, r, ts, v)
			}
		}
		// Rounds after the last one seen may have been durable before the
		// kill, but never a round before it lost.
		if r <= committed {
			t.Fatalf("series %d has %d rounds after the restart; %d were committed", s, r, committed+1)
		}
	}
	if set.Err() != nil || n != crashSeries {
		t.Fatalf("%d series after the restart (%v), want %d", n, set.Err(), crashSeries)
	}
}

// TestReplayKeepsRefs restarts a head and finds its series under the refs
// they had, and a new series after them.
func TestReplayKeepsRefs(t *testing.T) {
	dir := t.TempDir()
	h := openWithWAL(t, dir)
	refs := map[string]storage.SeriesRef{}
	app := h.Appender(context.Background())
	for _, name := range []string{"a", "b", "c"} {
		ref, err := app.Append(0, labels.FromStrings("__name__", name), 1000, 1)
		if err != nil {
			t.Fatal(err)
		}
		refs[name] = ref
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	h.Close()

	h = openWithWAL(t, dir)
	defer h.Close()
	for name, ref := range refs {
		if got, ok := h.index.Lookup(labels.FromStrings("__name__", name)); !ok || storage.SeriesRef(got) != ref {
			t.Fatalf("series %s has ref %d after the restart, had %d", name, got, ref)
		}
	}
	app = h.Appender(context.Background())
	if ref, err := app.Append(0, labels.FromStrings("__name__", "d"), 2000, 1); err != nil || ref != 4 {
		t.Fatalf("a new series got ref %d (%v), want 4", ref, err)
	}
}

// TestReplayMovesASeriesRecordedBelowLaterRefs replays a WAL in which a
// series' record comes after a higher ref's (as when the first write of
// its record failed and a later commit carried it again): the series gets a
// new ref and keeps its samples.
func TestReplayMovesASeriesRecordedBelowLaterRefs(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{Name: "test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var enc record.Encoder
	a, b := labels.FromStrings("__name__", "a"), labels.FromStrings("__name__", "b")
	for _, rec := range [][]byte{
		enc.Series([]record.RefSeries{{Ref: 7, Labels: a}}, nil),
		enc.Samples([]record.RefSample{{Ref: 7, T: 1000, V: 1}}, nil),
		enc.Series([]record.RefSeries{{Ref: 5, Labels: b}}, nil),
		enc.Samples([]record.RefSample{{Ref: 5, T: 1000, V: 2}, {Ref: 7, T: 2000, V: 3}}, nil),
	} {
		if err := w.Append(context.Background(), encodeRecord(rec)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()

	h := openWithWAL(t, dir)
	defer h.Close()
	refA, _ := h.index.Lookup(a)
	refB, _ := h.index.Lookup(b)
	if refA != 7 || refB != 8 {
		t.Fatalf("refs a %d, b %d; want 7 (kept) and 8 (moved)", refA, refB)
	}
	for ref, want := range map[uint32]int{7: 2, 8: 1} {
		if got := len(h.samples.Chunks(ref, math.MinInt64, math.MaxInt64, nil)); got != 1 {
			t.Fatalf("series %d has %d chunks", ref, got)
		}
		chk, err := h.samples.Chunk(h.samples.Chunks(ref, math.MinInt64, math.MaxInt64, nil)[0])
		if err != nil || chk.NumSamples() != want {
			t.Fatalf("series %d: %d samples (%v), want %d", ref, chk.NumSamples(), err, want)
		}
	}
}
