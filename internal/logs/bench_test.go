package logs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline/logpush"
	"github.com/vispyr/vispyr/internal/testpeer"
)

// BenchmarkIngest pushes batches of 1000 logfmt lines (~130 bytes) over 10
// streams, flushes, and reports lines/s and the bytes per line the blocks take
// on disk. Run: go test ./internal/logs -run XXX -bench Ingest -benchtime 200x
func BenchmarkIngest(b *testing.B) {
	s, err := Open(b.TempDir(), Config{}, discard())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []string{"info", "info", "info", "debug", "warn", "error"}
	paths := []string{"/api/cart", "/api/checkout", "/health", "/api/items", "/login"}
	base := time.Now().Add(-time.Hour).UnixNano()
	lines := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := &logpush.Request{}
		for st := 0; st < 10; st++ {
			stream := Stream{Labels: labels.FromStrings("app", fmt.Sprint("svc-", st), "env", "prod")}
			for j := 0; j < 100; j++ {
				ts := base + int64(lines)*1000
				stream.Entries = append(stream.Entries, Entry{Timestamp: ts, Line: fmt.Sprintf(
					"ts=%d level=%s method=GET path=%s status=%d duration_ms=%d user_id=%d request_id=%016x",
					ts, levels[rng.IntN(len(levels))], paths[rng.IntN(len(paths))], 200+rng.IntN(4)*100, rng.IntN(900), rng.IntN(100000), rng.Uint64())})
				lines++
			}
			req.Streams = append(req.Streams, stream)
		}
		if err := s.ConsumeLogs(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(s.DiskBytes())/float64(lines), "disk-bytes/line")
}

// BenchmarkReplay measures start-up after a crash: Open replaying a WAL of
// about 100 MB (lines as BenchmarkIngest pushes them, none flushed to a
// block), and reports the CPU it takes per MB of WAL.
// Run: go test ./internal/logs -run XXX -bench Replay -benchtime 3x
func BenchmarkReplay(b *testing.B) {
	cfg := Config{MaxHeadBytes: 4 << 30, FlushInterval: time.Hour}
	src := b.TempDir()
	s, err := Open(src, cfg, discard())
	if err != nil {
		b.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UnixNano()
	for n := 0; walBytes(src) < 100<<20; n++ {
		req := &logpush.Request{}
		for st := 0; st < 10; st++ {
			stream := Stream{Labels: labels.FromStrings("app", fmt.Sprint("svc-", st), "env", "prod")}
			for j := 0; j < 100; j++ {
				ts := base + int64(n*1000+st*100+j)*1000
				stream.Entries = append(stream.Entries, Entry{Timestamp: ts, Line: fmt.Sprintf(
					"ts=%d level=info method=GET path=/api/cart status=200 duration_ms=%d request_id=%016x", ts, j, n)})
			}
			req.Streams = append(req.Streams, stream)
		}
		if err := s.ConsumeLogs(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	wal := walBytes(src)
	crashed := b.TempDir() // the files as a kill -9 leaves them
	if err := os.CopyFS(crashed, os.DirFS(src)); err != nil {
		b.Fatal(err)
	}
	_ = s.Close()
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		if err := os.CopyFS(dir, os.DirFS(crashed)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cpu0 := testpeer.CPUTime()
		s, err := Open(dir, cfg, discard())
		if err != nil {
			b.Fatal(err)
		}
		cpu += testpeer.CPUTime() - cpu0
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(wal)/(1<<20), "wal-MB")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N)/(float64(wal)/(1<<20)), "cpu-ms/MB")
}

func walBytes(dir string) int64 {
	var n int64
	es, _ := os.ReadDir(filepath.Join(dir, "wal"))
	for _, e := range es {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}
