package traces

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// genBatch builds one OTLP request like a load generator's: nTraces traces of
// spansPer spans with random IDs, spread over 5 services, with typical HTTP attributes.
func genBatch(rng *rand.Rand, nTraces, spansPer int, now time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	services := make([]ptrace.SpanSlice, 5)
	for i := range services {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", i))
		rs.Resource().Attributes().PutStr("host.name", "node-1")
		rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		services[i] = ss.Spans()
	}
	routes := []string{"/api/cart", "/api/checkout", "/api/user/{id}", "/health", "/api/search"}
	for t := 0; t < nTraces; t++ {
		var tid pcommon.TraceID
		binaryRand(rng, tid[:])
		start := now.Add(-time.Duration(rng.IntN(1000)) * time.Millisecond)
		var parent pcommon.SpanID
		for s := 0; s < spansPer; s++ {
			sp := services[(t+s)%5].AppendEmpty()
			sp.SetTraceID(tid)
			var sid pcommon.SpanID
			binaryRand(rng, sid[:])
			sp.SetSpanID(sid)
			sp.SetParentSpanID(parent)
			if s == 0 {
				parent = sid
				sp.SetKind(ptrace.SpanKindServer)
			} else {
				sp.SetKind(ptrace.SpanKindClient)
			}
			route := routes[rng.IntN(len(routes))]
			sp.SetName("GET " + route)
			st := start.Add(time.Duration(s) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(1+rng.IntN(200_000)) * time.Microsecond)))
			a := sp.Attributes()
			a.PutStr("http.method", "GET")
			a.PutStr("http.route", route)
			code := 200
			if rng.IntN(50) == 0 {
				code = 500
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
			a.PutInt("http.status_code", int64(code))
		}
	}
	return td
}

func binaryRand(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// BenchmarkIngest measures durable ingest through ConsumeTraces with 4 concurrent
// writers sending 100 traces × 10 spans per request (the load shape).
// Every request's traces are new (restamped IDs), so that the blocks cut meanwhile
// hold every span sent, as a real load's do.
func BenchmarkIngest(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(Config{}, dir, quiet, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { s.Run(ctx); close(runDone) }() // cuts blocks as it would in production
	defer func() { cancel(); <-runDone }()
	const writers, perWriter = 4, 4
	batches := make([]ptrace.Traces, writers*perWriter)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range batches {
		batches[i] = genBatch(rng, 100, 10, time.Now())
	}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	cpu0 := testpeer.CPUTime()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		own := batches[w*perWriter : (w+1)*perWriter]
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				td := own[i%perWriter]
				restampTraceIDs(td, uint64(i))
				for {
					err := s.ConsumeTraces(ctx, td)
					if err == nil {
						break
					}
					if !isOverloaded(err) {
						b.Error(err)
						return
					}
					time.Sleep(10 * time.Millisecond) // back off as a client would
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)*1000/time.Since(start).Seconds(), "spans/s")
	// CPU per span does not depend on what else the machine runs: on 2 idle cores
	// the ceiling is about 2e6/cpu-µs spans/s.
	b.ReportMetric(float64((testpeer.CPUTime()-cpu0).Microseconds())/float64(b.N*1000), "cpu-µs/span")
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB")
}

// restampTraceIDs puts n in the first half of every trace ID of td, keeping
// the spans of a trace together.
func restampTraceIDs(td ptrace.Traces, n uint64) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				id := sp.TraceID()
				binary.BigEndian.PutUint64(id[:8], n)
				sp.SetTraceID(id)
			}
		}
	}
}

func isOverloaded(err error) bool { return err != nil && errorsIs(err, pipeline.ErrOverloaded) }

// BenchmarkBytesPerSpan reports block bytes per span (data + index + bloom) after a cut,
// and the cut's cost per span.
func BenchmarkBytesPerSpan(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s, err := Open(Config{MaxBlockSpans: 1_000_000}, b.TempDir(), quiet, nil)
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for j := 0; j < 200; j++ {
			if err := s.ConsumeTraces(context.Background(), genBatch(rng, 100, 10, time.Now())); err != nil {
				b.Fatal(err)
			}
		}
		t0, cpu0 := time.Now(), testpeer.CPUTime()
		if err := s.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(t0).Microseconds())/200_000, "flush-µs/span")
		// The cut's CPU (GC included) is steadier than its wall time on a busy machine.
		b.ReportMetric(float64((testpeer.CPUTime()-cpu0).Microseconds())/200_000, "flush-cpu-µs/span")
		var bytes, spans int64
		for _, bs := range s.blocks {
			for _, blk := range bs {
				bytes += blk.Meta.DataBytes + blk.Meta.IndexBytes + blk.Meta.BloomBytes
				spans += int64(blk.Meta.Spans)
			}
		}
		b.ReportMetric(float64(bytes)/float64(spans), "bytes/span")
		s.Close()
	}
}

// BenchmarkTraceByID looks up random stored traces among 20 blocks of 20k spans
// and reports p50/p99 latency alongside the mean. Every lookup consults all 20
// bloom filters; about one in five blocks then reads its index and rows.
func BenchmarkTraceByID(b *testing.B) {
	s, err := Open(Config{MaxBlockSpans: 1_000_000}, b.TempDir(), quiet, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	var ids [][16]byte
	for blk := 0; blk < 20; blk++ {
		for j := 0; j < 20; j++ {
			td := genBatch(rng, 100, 10, time.Now())
			rss := td.ResourceSpans()
			sp := rss.At(0).ScopeSpans().At(0).Spans()
			for k := 0; k < sp.Len(); k += 7 {
				ids = append(ids, sp.At(k).TraceID())
			}
			if err := s.ConsumeTraces(context.Background(), td); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		td, ok, err := s.FindTrace(ctx, pipeline.DefaultTenant, ids[rng.IntN(len(ids))], 0, 0)
		if err != nil || !ok || td.SpanCount() != 10 {
			b.Fatalf("lookup: ok=%v spans=%d err=%v", ok, td.SpanCount(), err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkSearch runs a selective and a broad TraceQL search over 10 blocks of 20k
// spans plus a head of 20k spans.
func BenchmarkSearch(b *testing.B) {
	s, err := Open(Config{MaxBlockSpans: 1_000_000}, b.TempDir(), quiet, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	start := time.Now().Add(-time.Hour)
	for blk := 0; blk < 11; blk++ {
		for j := 0; j < 20; j++ {
			now := start.Add(time.Duration(blk*20+j) * 15 * time.Second)
			if err := s.ConsumeTraces(context.Background(), genBatch(rng, 100, 10, now)); err != nil {
				b.Fatal(err)
			}
		}
		if blk < 10 {
			if err := s.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	benchQueries(b, s, map[string]string{
		"selective":  `{resource.service.name="svc-3" && span.http.route="/api/cart" && duration > 199ms}`,
		"broad":      `{span.http.status_code = 500}`,
		"structural": `{kind=server} >> {status=error}`,
	})
}

// BenchmarkSearchBlocks searches 400k spans that are all in 10 blocks whose traces
// start anywhere in the last hour, as bench/traces leaves them once the head is cut
// (blocks are cut by arrival, not by start time): every block overlaps every other,
// so newest-first block order cannot skip any of them.
func BenchmarkSearchBlocks(b *testing.B) {
	s, err := Open(Config{MaxBlockSpans: 1_000_000}, b.TempDir(), quiet, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(9, 10))
	now := time.Now()
	for range 10 {
		for range 40 {
			at := now.Add(-time.Duration(rng.Int64N(int64(time.Hour))))
			if err := s.ConsumeTraces(context.Background(), genBatch(rng, 100, 10, at)); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	benchQueries(b, s, map[string]string{
		"all":       `{}`,
		"selective": `{resource.service.name="svc-3" && span.http.status_code = 500}`,
	})
}

// benchQueries runs each named TraceQL search (limit 20) as a sub-benchmark.
func benchQueries(b *testing.B, s *Store, queries map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(queries)) {
		q, err := traceql.Parse(queries[name])
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			var found int
			for b.Loop() {
				res, _, err := s.Search(context.Background(), SearchRequest{Tenant: pipeline.DefaultTenant, Query: q, Limit: 20})
				if err != nil {
					b.Fatal(err)
				}
				found = len(res)
			}
			b.ReportMetric(float64(found), "traces")
		})
	}
}

// BenchmarkSearchHead searches 300k spans that are all still in the head, as a
// search right after ingest does: nothing is in blocks to narrow it down.
func BenchmarkSearchHead(b *testing.B) {
	s, err := Open(Config{MaxBlockSpans: 1_000_000, MaxHeadBytes: 4 << 30}, b.TempDir(), quiet, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	now := time.Now()
	for range 300 {
		if err := s.ConsumeTraces(context.Background(), genBatch(rng, 100, 10, now)); err != nil {
			b.Fatal(err)
		}
	}
	benchQueries(b, s, map[string]string{
		"no-match":  `{span.bench.probe = "nope"}`,
		"selective": `{span.http.status_code = 500 && resource.service.name = "svc-3"}`,
		"broad":     `{}`,
	})
}

// BenchmarkHeadSummary is tag autocomplete's cost over a 300k-span head.
func BenchmarkHeadSummary(b *testing.B) {
	s, err := Open(Config{MaxBlockSpans: 1_000_000, MaxHeadBytes: 4 << 30}, b.TempDir(), quiet, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	for range 300 {
		if err := s.ConsumeTraces(context.Background(), genBatch(rng, 100, 10, time.Now())); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		sums := s.Summaries(context.Background(), pipeline.DefaultTenant, 0, 0)
		if len(sums) != 1 || len(sums[0].SpanTags) != 3 {
			b.Fatalf("summaries %+v", sums)
		}
	}
}

// BenchmarkReplay measures start-up after a crash: Open replaying a WAL of
// about 100 MB (spans as BenchmarkIngest sends them, none cut to a block),
// and reports the CPU it takes per MB of WAL.
// Run: go test ./internal/traces -run XXX -bench Replay -benchtime 3x
func BenchmarkReplay(b *testing.B) {
	src := b.TempDir()
	s, err := Open(Config{MaxHeadBytes: 4 << 30}, src, quiet, nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	walBytes := func() int64 { return dirSize(b, filepath.Join(src, "traces", "wal")) }
	for walBytes() < 100<<20 {
		if err := s.ConsumeTraces(context.Background(), genBatch(rng, 100, 10, time.Now())); err != nil {
			b.Fatal(err)
		}
	}
	wal := walBytes()
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
		s, err := Open(Config{MaxHeadBytes: 4 << 30}, dir, quiet, nil)
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

// BenchmarkAppendRows measures the CPU an acknowledged request costs the store
// before its WAL write: rows from pdata, grouped by trace, and the WAL record.
func BenchmarkAppendRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	batches := make([]ptrace.Traces, 8)
	for i := range batches {
		batches[i] = genBatch(rng, 100, 10, time.Now())
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testpeer.CPUTime()
	for i := 0; i < b.N; i++ {
		rows, err := spanrow.FromTraces(batches[i%len(batches)], nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = traceOrder(rows)
		putBuf(encodeWALRecord(pipeline.DefaultTenant, rows))
	}
	// The process's CPU, GC included: steadier than wall time on a shared machine.
	b.ReportMetric(float64((testpeer.CPUTime()-cpu0).Nanoseconds())/float64(b.N*1000), "cpu-ns/span")
}
