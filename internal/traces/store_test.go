package traces

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traces/backend"
	"github.com/vispyr/vispyr/internal/traces/backend/miniotest"
)

var quiet = slog.New(slog.DiscardHandler)

func tid(i int) [16]byte {
	return [16]byte{0x5e, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 1, 2, 3}
}

// spansOf builds spans first..first+n-1 of trace i for one service. Span 0 is the
// root; the rest are its children. Times are relative to base.
func spansOf(td ptrace.Traces, i int, service string, first, n int, base time.Time) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("test")
	for j := first; j < first+n; j++ {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(tid(i))
		sp.SetSpanID(pcommon.SpanID{byte(i >> 8), byte(i), byte(j), 0x77})
		if j > 0 {
			sp.SetParentSpanID(pcommon.SpanID{byte(i >> 8), byte(i), 0, 0x77})
			sp.SetKind(ptrace.SpanKindClient)
		} else {
			sp.SetKind(ptrace.SpanKindServer)
		}
		sp.SetName(fmt.Sprintf("%s-op-%d", service, j))
		st := base.Add(time.Duration(j) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(10+j) * time.Millisecond)))
		sp.Attributes().PutStr("http.method", "GET")
		sp.Attributes().PutInt("http.status_code", int64(200+j%2*300))
		if j%2 == 1 {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
}

func openStore(t testing.TB, dir string, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg, dir, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func countSpans(td ptrace.Traces) int { return td.SpanCount() }

func mustFind(t testing.TB, s *Store, tenant string, i, want int) {
	t.Helper()
	td, ok, err := s.FindTrace(context.Background(), tenant, tid(i), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || countSpans(td) != want {
		t.Fatalf("trace %d: found=%v with %d spans, want %d", i, ok, countSpans(td), want)
	}
}

func TestAcknowledgedSpansSurviveCrash(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Config{})
	base := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * 50; i < w*50+50; i++ {
				td := ptrace.NewTraces()
				spansOf(td, i, "api", 0, 4, base)
				if err := s.ConsumeTraces(context.Background(), td); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	// no Close: like kill -9, a second store opens the same directory.
	s2 := openStore(t, dir, Config{})
	defer s2.Close()
	defer s.Close()
	for i := 0; i < 200; i++ {
		mustFind(t, s2, pipeline.DefaultTenant, i, 4)
	}
}

func TestTraceSplitAcrossBlockCutsIsReturnedWhole(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Config{})
	defer s.Close()
	base := time.Now()
	send := func(svc string, first, n int) {
		td := ptrace.NewTraces()
		spansOf(td, 7, svc, first, n, base)
		spansOf(td, 8, svc, first, n, base) // a neighbour that must not leak in
		if err := s.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	send("frontend", 0, 3)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	send("backend", 3, 2)
	mustFind(t, s, pipeline.DefaultTenant, 7, 5) // block + head
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	send("db", 5, 1)
	send("db", 5, 1)                             // a client retry: the duplicate span is returned once
	mustFind(t, s, pipeline.DefaultTenant, 7, 6) // two blocks + head
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.blockCount(); n != 3 {
		t.Fatalf("%d blocks after three cuts", n)
	}
	mustFind(t, s, pipeline.DefaultTenant, 7, 6)
	s.compact(ctx)
	if n := s.blockCount(); n != 1 {
		t.Fatalf("%d blocks after compaction, want 1", n)
	}
	mustFind(t, s, pipeline.DefaultTenant, 7, 6)
	mustFind(t, s, pipeline.DefaultTenant, 8, 6)
}

func TestTenantsAreSeparate(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Config{})
	defer s.Close()
	td := ptrace.NewTraces()
	spansOf(td, 1, "api", 0, 2, time.Now())
	if err := s.ConsumeTraces(pipeline.WithTenant(ctx, "team-a"), td); err != nil {
		t.Fatal(err)
	}
	for _, flush := range []bool{false, true} {
		if flush {
			s.Flush(ctx)
		}
		mustFind(t, s, "team-a", 1, 2)
		if _, ok, _ := s.FindTrace(ctx, "team-b", tid(1), 0, 0); ok {
			t.Fatal("team-b sees team-a's trace")
		}
	}
}

func dirSize(t testing.TB, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := d.Info(); err == nil {
				n += st.Size()
			}
		}
		return nil
	})
	return n
}

func TestRetentionDeletesOldBlocksAndFreesDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, Config{Retention: 24 * time.Hour})
	defer s.Close()
	old, recent := time.Now().Add(-48*time.Hour), time.Now()
	for i := 0; i < 300; i++ {
		td := ptrace.NewTraces()
		spansOf(td, i, "api", 0, 10, old)
		s.ConsumeTraces(ctx, td)
	}
	s.Flush(ctx)
	td := ptrace.NewTraces()
	spansOf(td, 1000, "api", 0, 2, recent)
	s.ConsumeTraces(ctx, td)
	s.Flush(ctx)
	before := dirSize(t, filepath.Join(dir, "traces", "blocks"))
	s.applyRetention(ctx, time.Now())
	after := dirSize(t, filepath.Join(dir, "traces", "blocks"))
	if s.blockCount() != 1 || after*3 > before {
		t.Fatalf("retention left %d blocks, disk %d -> %d bytes", s.blockCount(), before, after)
	}
	if _, ok, _ := s.FindTrace(ctx, pipeline.DefaultTenant, tid(5), 0, 0); ok {
		t.Fatal("expired trace still found")
	}
	mustFind(t, s, pipeline.DefaultTenant, 1000, 2)
}

func TestOverBudgetAnswersOverloaded(t *testing.T) {
	s := openStore(t, t.TempDir(), Config{MaxHeadBytes: 1 << 20})
	defer s.Close()
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		td := ptrace.NewTraces()
		spansOf(td, i, "api", 0, 10, time.Now())
		err = s.ConsumeTraces(context.Background(), td)
	}
	if !errors.Is(err, pipeline.ErrOverloaded) {
		t.Fatalf("over budget got %v, want ErrOverloaded", err)
	}
}

func TestBadInputIsInvalid(t *testing.T) {
	s := openStore(t, t.TempDir(), Config{})
	defer s.Close()
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("no ids")
	if err := s.ConsumeTraces(context.Background(), td); !pipeline.IsInvalid(err) {
		t.Fatalf("span without IDs: %v, want an invalid-input error", err)
	}
}

func TestBlocksRoundTripThroughMinIO(t *testing.T) {
	ctx := context.Background()
	s3 := miniotest.Start(t)
	cfg := Config{Storage: backend.Config{Backend: "s3", S3: s3}}
	dir := t.TempDir()
	s := openStore(t, dir, cfg)
	for i := 0; i < 50; i++ {
		td := ptrace.NewTraces()
		spansOf(td, i, "api", 0, 3, time.Now())
		s.ConsumeTraces(ctx, td)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// a fresh store with an empty local dir finds the blocks in the bucket
	s2 := openStore(t, t.TempDir(), cfg)
	defer s2.Close()
	if s2.blockCount() != 1 {
		t.Fatalf("reopened store sees %d blocks in MinIO", s2.blockCount())
	}
	mustFind(t, s2, pipeline.DefaultTenant, 42, 3)
}

func TestConfigValidateNamesField(t *testing.T) {
	f := func(mod func(*Config), want string) {
		t.Helper()
		var c Config
		c.Defaults()
		mod(&c)
		if err := c.Validate(); fmt.Sprint(err) != want {
			t.Errorf("got %v, want %s", err, want)
		}
	}
	f(func(c *Config) {}, "<nil>")
	f(func(c *Config) { c.Retention = time.Second }, "retention: 1s is below 1m")
	f(func(c *Config) { c.Storage.Backend = "s4" }, `storage.backend: "s4" is not one of local, s3`)
}

func FuzzDecodeWALRecord(f *testing.F) {
	td := ptrace.NewTraces()
	spansOf(td, 1, "api", 0, 3, time.Unix(1_700_000_000, 0))
	rows, _ := spanrowFromTraces(td)
	f.Add(encodeWALRecord("tenant-a", rows))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		tenant, rows, err := decodeWALRecord(b)
		if err != nil {
			return
		}
		// whatever decodes must re-encode to something that decodes the same
		tenant2, rows2, err := decodeWALRecord(encodeWALRecord(tenant, rows))
		if err != nil || tenant2 != tenant || len(rows2) != len(rows) {
			t.Fatalf("decoded record does not round trip: %v", err)
		}
	})
}

func TestTornWALTailIsToleratedOnOpen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Config{})
	td := ptrace.NewTraces()
	spansOf(td, 1, "api", 0, 3, time.Now())
	if err := s.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// a crash mid-write leaves a partial record at the end of the last segment
	segs, _ := filepath.Glob(filepath.Join(dir, "traces", "wal", "*"))
	sort.Strings(segs)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5})
	f.Close()
	var logs strings.Builder
	s2, err := Open(Config{}, dir, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if err != nil {
		t.Fatalf("open after torn write: %v", err)
	}
	defer s2.Close()
	mustFind(t, s2, pipeline.DefaultTenant, 1, 3)
	if !strings.Contains(logs.String(), "WAL segment damaged") {
		t.Fatalf("torn tail not logged:\n%s", logs.String())
	}
}

// TestConcurrentIngestCutsAndQueries writes from several goroutines while the head is
// cut and blocks compacted, and queries run; afterwards (and after a reopen from the
// WAL and blocks) every acknowledged span is found exactly once.
func TestConcurrentIngestCutsAndQueries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, Config{})
	base := time.Now()
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { // cuts, compactions and lookups racing with the writers
		defer bg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Flush(ctx); err != nil {
				t.Error(err)
			}
			if i%3 == 2 {
				s.compact(ctx)
			}
			s.FindTrace(ctx, pipeline.DefaultTenant, tid(i), 0, 0)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				// each trace arrives in two halves, possibly on both sides of a cut
				for half := 0; half < 2; half++ {
					td := ptrace.NewTraces()
					spansOf(td, w*1000+i, "api", half*3, 3, base)
					if err := s.ConsumeTraces(ctx, td); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	check := func(s *Store) {
		for w := 0; w < 4; w++ {
			for i := 0; i < 100; i++ {
				mustFind(t, s, pipeline.DefaultTenant, w*1000+i, 6)
			}
		}
	}
	check(s)
	s2 := openStore(t, dir, Config{})
	defer s2.Close()
	defer s.Close()
	check(s2)
}

// A span stamped years ahead is kept as sent, but its block's newest end is
// clamped to the cut time plus the ingestion slack (through compaction too),
// so retention drops it like any block of that day instead of never.
func TestFarFutureSpanDoesNotOutliveRetention(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Config{Retention: 24 * time.Hour})
	defer s.Close()
	future := time.Now().AddDate(5, 0, 0)
	for i := range 2 { // two blocks, merged by compaction below
		td := ptrace.NewTraces()
		spansOf(td, i, "clock-skew", 0, 3, future)
		if err := s.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s.compact(ctx)
	if n := s.blockCount(); n != 1 {
		t.Fatalf("%d blocks after compaction, want 1", n)
	}
	td, ok, err := s.FindTrace(ctx, pipeline.DefaultTenant, tid(1), 0, 0)
	if err != nil || !ok {
		t.Fatalf("far-future trace not found before retention: %v", err)
	}
	if got := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).StartTimestamp().AsTime(); !got.Equal(future) {
		t.Fatalf("span start stored as %v, want %v as sent", got, future)
	}
	s.applyRetention(ctx, time.Now()) // a day within retention: kept
	if s.blockCount() != 1 {
		t.Fatal("retention dropped a block younger than the retention")
	}
	s.applyRetention(ctx, time.Now().Add(24*time.Hour+s.cfg.IngestionSlack+time.Minute))
	if n := s.blockCount(); n != 0 {
		t.Fatalf("a day past retention %d block(s) with far-future spans remain", n)
	}
	if _, ok, _ := s.FindTrace(ctx, pipeline.DefaultTenant, tid(1), 0, 0); ok {
		t.Fatal("far-future trace still found after retention")
	}
}
