package logs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// v1Base is when the lines of testdata/v1store start.
var v1Base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// v1Streams is what testdata/v1store holds: written by the store before
// chunks put their columns in their own compressed section (chunk format
// v1: one zstd frame, metadata after the lines).
func v1Streams() []Stream {
	var out []Stream
	for s, app := range []string{"api", "web", "db"} {
		st := Stream{Labels: labels.FromStrings("app", app, "env", "prod")}
		for i := 0; i < 300; i++ {
			e := Entry{Timestamp: v1Base.Add(time.Duration(i*3+s) * time.Second).UnixNano(),
				Line: fmt.Sprintf("level=%s msg=%q i=%d", []string{"info", "warn", "error"}[i%3], []string{"ok", "needle here"}[min(i%50, 1)^1], i)}
			if i%4 == 0 {
				e.Metadata = labels.FromStrings("trace_id", fmt.Sprintf("%032x", i))
			}
			st.Entries = append(st.Entries, e)
		}
		out = append(out, st)
	}
	return out
}

// v1Now is the store's clock for the old data: the lines are a day old.
func v1Now() time.Time { return v1Base.Add(24 * time.Hour) }

// TestOldFormatChunksStillRead opens a data dir written before chunks had
// separate sections: every line, its metadata and the counts read back, and
// old and new chunks answer together after new lines are flushed and the
// blocks compacted.
func TestOldFormatChunksStillRead(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "v1store"))); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir, Config{ChunkBytes: 4096, Retention: 100 * 365 * 24 * time.Hour})
	defer s.Close()
	s.now = v1Now
	all := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "env", "prod")}
	start, end := v1Base.UnixNano(), v1Now().UnixNano()
	check := func(stage string, want []Stream) {
		t.Helper()
		var wantLines []string
		wantBytes := 0
		for _, st := range want {
			for _, e := range st.Entries {
				wantLines = append(wantLines, fmt.Sprintf("%s %d %s trace_id=%s", st.Labels.Get("app"), e.Timestamp, e.Line, e.Metadata.Get("trace_id")))
				wantBytes += len(e.Line)
			}
		}
		slices.Sort(wantLines)
		it, err := s.Select(context.Background(), "t1", SelectParams{Matchers: all, Start: start, End: end, Direction: Forward})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for it.Next() {
			ls, e := it.At()
			if e.Metadata.Get(logpush.MetaDetectedLevel) == "" {
				t.Fatalf("%s: line %q lost its detected_level", stage, e.Line)
			}
			got = append(got, fmt.Sprintf("%s %d %s trace_id=%s", ls.Get("app"), e.Timestamp, e.Line, e.Metadata.Get("trace_id")))
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, wantLines) {
			t.Fatalf("%s: read %d lines, want %d; first %q, want %q", stage, len(got), len(wantLines), got[:min(1, len(got))], wantLines[0])
		}
		n, bytes, traced := 0, 0, 0
		err = s.SelectSamples(context.Background(), "t1", SelectParams{Matchers: all, Start: start, End: end},
			func(_, meta labels.Labels, ts []int64, sizes []int32) {
				n += len(ts)
				for _, sz := range sizes {
					bytes += int(sz)
				}
				if meta.Has("trace_id") {
					traced += len(ts)
				}
			})
		if err != nil {
			t.Fatal(err)
		}
		if n != len(wantLines) || bytes != wantBytes || traced != len(wantLines)/4 {
			t.Fatalf("%s: counted %d lines, %d bytes, %d with trace_id; want %d, %d, %d", stage, n, bytes, traced, len(wantLines), wantBytes, len(wantLines)/4)
		}
		needles := selectAll(t, s, "t1", SelectParams{Matchers: all, Start: start, End: end, LineFilters: []LineFilter{{Op: Contains, Value: "needle"}}})
		if len(needles) != len(want)*6 {
			t.Fatalf("%s: needle found %d lines, want %d", stage, len(needles), len(want)*6)
		}
	}
	old := v1Streams()
	check("old blocks", old)

	// New lines an hour later, in the new format, beside the old ones.
	var req logpush.Request
	fresh := v1Streams()
	for i := range fresh {
		fresh[i].Labels = labels.FromStrings("app", fresh[i].Labels.Get("app")+"-new", "env", "prod")
		for j := range fresh[i].Entries {
			fresh[i].Entries[j].Timestamp += int64(time.Hour)
		}
		req.Streams = append(req.Streams, Stream{Labels: fresh[i].Labels, Entries: slices.Clone(fresh[i].Entries)})
	}
	if err := s.ConsumeLogs(pipeline.WithTenant(context.Background(), "t1"), &req); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	check("old and new blocks, compacted", append(old, fresh...))
}
