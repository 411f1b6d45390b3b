package pyroscope_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// BenchmarkIngestPprof posts a real 10-second Go CPU profile (gzipped pprof, as
// format=pprof) through the /ingest handler into a real store (WAL fsync included)
// from 32 concurrent clients, and reports profiles accepted per second.
func BenchmarkIngestPprof(b *testing.B) {
	raw, err := os.ReadFile("../../profiles/testdata/go-cpu-10s.pb.gz")
	if err != nil {
		b.Fatal(err)
	}
	store := openStore(b, b.TempDir())
	defer store.Close()
	h := server(b, store).Config.Handler
	var n atomic.Int64
	b.SetParallelism(16) // 16 × GOMAXPROCS clients
	start, cpu0 := time.Now(), testpeer.CPUTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			url := fmt.Sprintf("/ingest?format=pprof&name=svc-%d{pod=p%d}&from=%d", i%20, i%5, time.Now().Unix())
			req := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
			req.Header.Set("Content-Type", "application/octet-stream") // as the SDKs send a bare profile
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "profiles/s")
	// CPU time per profile does not depend on what else the machine runs; 2 cores
	// can ingest about 2 s / cpu-per-profile profiles per second.
	perProfile := (testpeer.CPUTime() - cpu0) / time.Duration(b.N)
	b.ReportMetric(float64(perProfile.Microseconds()), "cpu-µs/profile")
	b.ReportMetric(2*float64(time.Second)/float64(perProfile), "2core-capacity-profiles/s")
}
