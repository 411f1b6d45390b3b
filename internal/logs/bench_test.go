package logs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline/logpush"
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
