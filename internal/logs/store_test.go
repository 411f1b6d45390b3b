package logs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTest(t *testing.T, dir string, cfg Config) *Store {
	t.Helper()
	s, err := Open(dir, cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func push(t *testing.T, s *Store, tenant string, ls labels.Labels, entries ...Entry) error {
	t.Helper()
	ctx := pipeline.WithTenant(context.Background(), tenant)
	return s.ConsumeLogs(ctx, &logpush.Request{Streams: []Stream{{Labels: ls, Entries: entries}}})
}

func selectAll(t *testing.T, s *Store, tenant string, p SelectParams) []string {
	t.Helper()
	if p.End == 0 {
		p.End = time.Now().Add(time.Hour).UnixNano()
	}
	it, err := s.Select(context.Background(), tenant, p)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for it.Next() {
		ls, e := it.At()
		out = append(out, ls.Get("app")+":"+e.Line)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func eq(t *testing.T, app string) []*labels.Matcher {
	return []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", app)}
}

func TestSelectOrderLimitAndFilters(t *testing.T) {
	s := openTest(t, t.TempDir(), Config{ChunkBytes: 1024})
	defer s.Close()
	base := time.Now().Add(-time.Minute).UnixNano()
	for i := 0; i < 200; i++ {
		app := []string{"api", "web"}[i%2]
		line := fmt.Sprintf("request %03d status=%d", i, 200+i%3)
		if err := push(t, s, "t1", labels.FromStrings("app", app), Entry{Timestamp: base + int64(i), Line: line}); err != nil {
			t.Fatal(err)
		}
	}
	// Chunks were cut at 1 KiB, so the merge crosses chunk and head boundaries.
	got := selectAll(t, s, "t1", SelectParams{Matchers: eq(t, "api"), Direction: Forward, Start: base})
	if len(got) != 100 || got[0] != "api:request 000 status=200" || got[99] != "api:request 198 status=200" {
		t.Fatalf("forward api: %d lines, first %q last %q", len(got), got[0], got[len(got)-1])
	}
	rx := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "app", "api|web")}
	got = selectAll(t, s, "t1", SelectParams{Matchers: rx, Direction: Backward, Limit: 3, Start: base})
	if strings.Join(got, ",") != "web:request 199 status=201,api:request 198 status=200,web:request 197 status=202" {
		t.Fatalf("backward limit 3: %v", got)
	}
	got = selectAll(t, s, "t1", SelectParams{Matchers: rx, Direction: Forward, Start: base,
		LineFilters: []LineFilter{{Op: Contains, Value: "status=201"}, {Op: NotMatchRegex, Value: `request 0`}}})
	if len(got) != 34 || got[0] != "api:request 100 status=201" || got[33] != "web:request 199 status=201" {
		t.Fatalf("filtered: %d lines, first %v", len(got), got[:1])
	}
	// [start, end): end is exclusive.
	got = selectAll(t, s, "t1", SelectParams{Matchers: rx, Direction: Forward, Start: base + 10, End: base + 12})
	if strings.Join(got, ",") != "api:request 010 status=201,web:request 011 status=202" {
		t.Fatalf("range: %v", got)
	}
	// Other tenants see nothing.
	if got := selectAll(t, s, "t2", SelectParams{Matchers: rx, Start: base}); len(got) != 0 {
		t.Fatalf("tenant t2 sees %d lines", len(got))
	}
	if _, err := s.Select(context.Background(), "t1", SelectParams{Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "app", ".*")}}); err == nil || !strings.Contains(err.Error(), "at least one") {
		t.Fatalf("empty-compatible selector: %v", err)
	}
}

func TestFlushReopenAndReplay(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Config{})
	now := time.Now().UnixNano()
	ls := labels.FromStrings("app", "api")
	for i := 0; i < 50; i++ {
		if err := push(t, s, "t1", ls, Entry{Timestamp: now + int64(i), Line: fmt.Sprintf("flushed %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := 50; i < 80; i++ {
		if err := push(t, s, "t1", ls, Entry{Timestamp: now + int64(i), Line: fmt.Sprintf("only in wal %d", i),
			Metadata: labels.FromStrings("trace_id", "0af7651916cd43dd8448eb211c80319c")}); err != nil {
			t.Fatal(err)
		}
	}
	// Abandon s without Close, as a crash would: the last 30 lines are only in the WAL.
	s.wal.Close()
	s2 := openTest(t, dir, Config{})
	defer s2.Close()
	it, err := s2.Select(context.Background(), "t1", SelectParams{Matchers: eq(t, "api"), Start: now, End: now + 100, Direction: Forward})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.Next() {
		_, e := it.At()
		want := fmt.Sprintf("flushed %d", n)
		if n >= 50 {
			want = fmt.Sprintf("only in wal %d", n)
			if e.Metadata.Get("trace_id") != "0af7651916cd43dd8448eb211c80319c" {
				t.Fatalf("line %d lost its trace_id: %v", n, e.Metadata)
			}
		}
		if e.Line != want || e.Timestamp != now+int64(n) {
			t.Fatalf("line %d: %q at %d", n, e.Line, e.Timestamp)
		}
		if e.Metadata.Get("detected_level") == "" {
			t.Fatalf("line %d has no detected_level", n)
		}
		n++
	}
	if n != 80 {
		t.Fatalf("after reopen: %d lines, want 80", n)
	}
}

func TestIngestDefaults(t *testing.T) {
	s := openTest(t, t.TempDir(), Config{})
	defer s.Close()
	now := time.Now().UnixNano()
	cases := []struct {
		labels  labels.Labels
		line    string
		meta    labels.Labels
		service string
		level   string
	}{
		{labels.FromStrings("job", "varlogs"), `level=warn msg="disk almost full"`, labels.EmptyLabels(), "varlogs", "warn"},
		{labels.FromStrings("app", "shop", "job", "x"), `{"level":"ERROR","msg":"boom"}`, labels.EmptyLabels(), "shop", "error"},
		{labels.FromStrings("service_name", "given", "app", "a"), `GET /health 200`, labels.EmptyLabels(), "given", "unknown"},
		{labels.FromStrings("env", "prod"), `2024-01-01 INFO started`, labels.EmptyLabels(), "unknown_service", "info"},
		{labels.FromStrings("env", "dev"), `plain`, labels.FromStrings("severity_text", "Warning"), "unknown_service", "warn"},
		{labels.FromStrings("env", "qa"), `plain`, labels.FromStrings("severity_number", "17"), "unknown_service", "error"},
	}
	for i, c := range cases {
		if err := push(t, s, "t1", c.labels, Entry{Timestamp: now + int64(i), Line: c.line, Metadata: c.meta}); err != nil {
			t.Fatal(err)
		}
		m := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "service_name", c.service)}
		it, err := s.Select(context.Background(), "t1", SelectParams{Matchers: m, Start: now + int64(i), End: now + int64(i) + 1})
		if err != nil {
			t.Fatal(err)
		}
		if !it.Next() {
			t.Fatalf("case %d: no line with service_name=%q", i, c.service)
		}
		if _, e := it.At(); e.Metadata.Get("detected_level") != c.level {
			t.Errorf("case %d: detected_level %q, want %q", i, e.Metadata.Get("detected_level"), c.level)
		}
	}
}

func TestLimitsAnswerLokiMessages(t *testing.T) {
	s := openTest(t, t.TempDir(), Config{MaxLineSize: 10, MaxStreamsPerTenant: 2})
	defer s.Close()
	now := time.Now().UnixNano()
	ctx := pipeline.WithTenant(context.Background(), "t1")
	err := s.ConsumeLogs(ctx, &logpush.Request{Streams: []Stream{{Labels: labels.FromStrings("app", "a"), Entries: []Entry{
		{Timestamp: now, Line: "short"}, {Timestamp: now, Line: "much too long a line"},
	}}}})
	pe, ok := pipeline.AsPartial(err)
	if !ok || pe.Rejected != 1 || !strings.Contains(err.Error(), "Max entry size '10' bytes exceeded for stream '{app=\"a\", service_name=\"a\"}' while adding an entry with length '20' bytes") {
		t.Fatalf("line too long: %v", err)
	}
	err = push(t, s, "t1", labels.FromStrings("app", "b"), Entry{Timestamp: now - int64(8*24*time.Hour), Line: "old"})
	if !pipeline.IsInvalid(err) || !strings.Contains(err.Error(), "timestamp too old") {
		t.Fatalf("too old: %v", err)
	}
	many := labels.NewBuilder(labels.EmptyLabels())
	for i := 0; i < 16; i++ {
		many.Set(fmt.Sprintf("l%02d", i), "v")
	}
	if err := push(t, s, "t1", many.Labels(), Entry{Timestamp: now, Line: "x"}); !pipeline.IsInvalid(err) || !strings.Contains(err.Error(), "has 16 label names; limit 15") {
		t.Fatalf("too many labels: %v", err)
	}
	if err := push(t, s, "t1", labels.FromStrings("app", "b"), Entry{Timestamp: now, Line: "x"}); err != nil {
		t.Fatal(err)
	}
	err = push(t, s, "t1", labels.FromStrings("app", "c"), Entry{Timestamp: now, Line: "x"})
	if !errorsIsOverloaded(err) || !strings.Contains(err.Error(), "Maximum active stream limit exceeded") {
		t.Fatalf("stream limit: %v", err)
	}
	// The limit is per tenant.
	if err := push(t, s, "t2", labels.FromStrings("app", "c"), Entry{Timestamp: now, Line: "x"}); err != nil {
		t.Fatal(err)
	}
}

func errorsIsOverloaded(err error) bool {
	return err != nil && strings.Contains(err.Error(), pipeline.ErrOverloaded.Error())
}

func TestLabelsSeriesStatsVolume(t *testing.T) {
	s := openTest(t, t.TempDir(), Config{})
	defer s.Close()
	base := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixNano()
	for i := 0; i < 60; i++ {
		app := []string{"api", "web", "db"}[i%3]
		if err := push(t, s, "t1", labels.FromStrings("app", app, "env", "prod"), Entry{Timestamp: base + int64(i)*int64(time.Minute), Line: "0123456789"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	end := base + int64(time.Hour)
	names, _ := s.Labels(ctx, "t1", base, end, nil)
	if strings.Join(names, ",") != "app,env,service_name" {
		t.Fatalf("labels: %v", names)
	}
	vals, _ := s.LabelValues(ctx, "t1", "app", base, end, []*labels.Matcher{labels.MustNewMatcher(labels.MatchNotEqual, "app", "db")})
	if strings.Join(vals, ",") != "api,web" {
		t.Fatalf("values: %v", vals)
	}
	series, _ := s.Series(ctx, "t1", base, end, eq(t, "web"))
	if len(series) != 1 || series[0].Get("service_name") != "web" {
		t.Fatalf("series: %v", series)
	}
	if vals, _ := s.LabelValues(ctx, "t1", "app", end+int64(time.Hour), end+2*int64(time.Hour), nil); len(vals) != 0 {
		t.Fatalf("values outside range: %v", vals)
	}
	st, _ := s.Stats(ctx, "t1", base, end, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "env", "prod")})
	if st.Streams != 3 || st.Entries != 60 || st.Bytes != 600 {
		t.Fatalf("stats: %+v", st)
	}
	vol, _ := s.Volume(ctx, "t1", VolumeParams{Matchers: eq(t, "api"), Start: base, End: end, Step: int64(30 * time.Minute)})
	if len(vol) != 1 || len(vol[0].Buckets) != 2 || vol[0].Buckets[0].Bytes+vol[0].Buckets[1].Bytes != 200 {
		t.Fatalf("volume: %+v", vol)
	}
}

func TestRetentionBySize(t *testing.T) {
	s := openTest(t, t.TempDir(), Config{MaxDiskBytes: 1})
	defer s.Close()
	now := time.Now().UnixNano()
	for i := 0; i < 3; i++ {
		if err := push(t, s, "t1", labels.FromStrings("app", fmt.Sprint("a", i)), Entry{Timestamp: now + int64(i), Line: "x"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	s.applyRetention()
	if n := len(s.blocks); n != 0 {
		t.Fatalf("%d blocks left over a 1-byte budget", n)
	}
	if vals, _ := s.LabelValues(context.Background(), "t1", "app", 0, now+10, nil); len(vals) != 0 {
		t.Fatalf("deleted streams still listed: %v", vals)
	}
}

func TestTail(t *testing.T) {
	s := openTest(t, t.TempDir(), Config{})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ch, dropped, err := s.Tail(ctx, "t1", eq(t, "api"), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	push(t, s, "t1", labels.FromStrings("app", "web"), Entry{Timestamp: now, Line: "not me"})
	push(t, s, "t1", labels.FromStrings("app", "api"), Entry{Timestamp: now, Line: "tailed"})
	got := <-ch
	if got.Entries[0].Line != "tailed" || got.Labels.Get("service_name") != "api" || len(dropped()) != 0 {
		t.Fatalf("tail got %v", got)
	}
	cancel()
	for range ch {
	}
}

// A tail whose reader falls behind loses entries; the tail learns each one
// it wanted (keep's choice, under keep's labels) with its timestamp, up to
// MaxTailDropped between two reads.
func TestTailReportsDroppedEntries(t *testing.T) {
	s := openTest(t, t.TempDir(), Config{})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keep := func(ls labels.Labels, e Entry) (labels.Labels, bool) {
		if strings.HasPrefix(e.Line, "skip") {
			return ls, false
		}
		return labels.NewBuilder(ls).Set("kept", "yes").Labels(), true
	}
	ch, dropped, err := s.Tail(ctx, "t1", eq(t, "api"), keep)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	// Nobody reads ch: one push of tailBuffer streams fills it.
	var req logpush.Request
	for i := range tailBuffer {
		req.Streams = append(req.Streams, Stream{Labels: labels.FromStrings("app", "api", "pod", fmt.Sprint(i)), Entries: []Entry{{Timestamp: now, Line: "buffered"}}})
	}
	if err := s.ConsumeLogs(pipeline.WithTenant(ctx, "t1"), &req); err != nil {
		t.Fatal(err)
	}
	if d := dropped(); len(d) != 0 {
		t.Fatalf("dropped %d entries before the buffer was full", len(d))
	}
	req = logpush.Request{}
	var want []string
	for i := range 5 {
		ls := labels.FromStrings("app", "api", "pod", fmt.Sprintf("late%d", i))
		req.Streams = append(req.Streams, Stream{Labels: ls, Entries: []Entry{{Timestamp: now + int64(i), Line: "lost"}, {Timestamp: now + 100, Line: "skip me"}}})
		want = append(want, fmt.Sprintf(`{app="api", kept="yes", pod="late%d", service_name="api"}@%d`, i, now+int64(i)))
	}
	req.Streams = append(req.Streams, Stream{Labels: labels.FromStrings("app", "web"), Entries: []Entry{{Timestamp: now, Line: "not tailed"}}})
	if err := s.ConsumeLogs(pipeline.WithTenant(ctx, "t1"), &req); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range dropped() {
		got = append(got, fmt.Sprintf("%s@%d", d.Labels, d.Timestamp))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("dropped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := dropped(); len(d) != 0 {
		t.Fatalf("dropped entries reported twice: %d", len(d))
	}
	// More than MaxTailDropped in one go: the first MaxTailDropped are kept.
	many := make([]Entry, MaxTailDropped+50)
	for i := range many {
		many[i] = Entry{Timestamp: now + int64(i), Line: "lost"}
	}
	if err := push(t, s, "t1", labels.FromStrings("app", "api"), many...); err != nil {
		t.Fatal(err)
	}
	if d := dropped(); len(d) != MaxTailDropped || d[len(d)-1].Timestamp != now+MaxTailDropped-1 {
		t.Fatalf("dropped %d entries, want the first %d", len(d), MaxTailDropped)
	}
	if len(ch) != tailBuffer {
		t.Fatalf("tail buffer holds %d pushes, want %d", len(ch), tailBuffer)
	}
}

// The self-monitoring page charts these: lines stored, lines refused, and the
// logs WAL beside the other stores'.
func TestMetricsCountStoredAndRefusedLines(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := Open(t.TempDir(), Config{MaxLineSize: 10}, discard(), WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UnixNano()
	_ = push(t, s, "t1", labels.FromStrings("app", "a"), Entry{Timestamp: now, Line: "one"}, Entry{Timestamp: now + 1, Line: "two"}, Entry{Timestamp: now + 2, Line: "far too long a line"})
	if got := testutil.ToFloat64(s.m.lines); got != 2 {
		t.Errorf("ingested lines = %v, want 2", got)
	}
	if got := testutil.ToFloat64(s.m.refused); got != 1 {
		t.Errorf("refused lines = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "vispyr_wal_written_bytes_total"); err != nil || n != 1 {
		t.Errorf("logs WAL metrics: %d series, %v", n, err)
	}
}
