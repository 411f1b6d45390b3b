package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/vispyr/vispyr/test/e2e/harness"
	"github.com/vispyr/vispyr/test/load"
)

// Far more load than the configured limits take, on every ingest signal at
// once: what is refused is refused as clients expect (429, or 503 for
// remote write, with Retry-After), memory stays under limits.max_memory_bytes,
// everything acknowledged can be read back, and the server stays ready.
func TestOverloadIsAnsweredNotAbsorbed(t *testing.T) {
	t.Parallel()
	const maxMemory = 1 << 30
	v := harness.Start(t, harness.Options{Args: []string{
		"--limits.max-request-bytes=4194304",
		"--limits.max-inflight-bytes=8388608",
		"--limits.max-concurrent-appends=1",
		"--limits.max-memory-bytes=1073741824",
	}})
	d := load.New(load.Target{Metrics: v.MetricsAddr, OTLPHTTP: v.OTLPHTTPAddr, PyroscopeIngest: v.PyroscopeIngestAddr,
		Tempo: v.TempoAddr, Pyroscope: v.PyroscopeAddr, Loki: v.LokiAddr}, load.Shape{SeriesPerWrite: 2000, SpansPerTrace: 1000, StacksPerProf: 2000, LinesPerPush: 2000})

	// 24 senders per signal, flat out, for 8 s: one append slot and 8 MiB in
	// flight take a fraction of it.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var peak int64
	wg.Go(func() {
		for ctx.Err() == nil {
			if _, p, err := v.Process().RSS(); err == nil {
				peak = max(peak, p)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	for range 24 {
		for _, send := range []func(context.Context) bool{d.RemoteWrite, d.Trace, d.Profile, d.Log} {
			wg.Go(func() {
				for ctx.Err() == nil {
					send(ctx)
				}
			})
		}
	}
	wg.Wait()

	st := d.Stats()
	t.Logf("answers by signal and status: %v; acknowledged %v; peak RSS %d MiB", st.Codes, st.Acked, peak>>20)
	for _, b := range st.Bad {
		t.Errorf("not the overload contract: %s", b)
	}
	if rw := st.Codes[load.Metrics]; rw[http.StatusServiceUnavailable] == 0 {
		t.Errorf("remote write was never refused with 503 at 24× its one append slot: %v", rw)
	}
	for sig, n := range st.Acked {
		if n == 0 {
			t.Errorf("%s: nothing acknowledged under overload", sig)
		}
	}
	if _, p, err := v.Process().RSS(); err == nil {
		peak = max(peak, p)
	}
	if peak >= maxMemory {
		t.Errorf("peak RSS %d MiB, over limits.max_memory_bytes (%d MiB)", peak>>20, maxMemory>>20)
	}

	vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer vcancel()
	missing, err := d.Verify(vctx)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	for i, m := range missing {
		if i == 10 {
			t.Errorf("... and %d more", len(missing)-10)
			break
		}
		t.Errorf("acknowledged but not readable: %s", m)
	}
	resp, err := http.Get(v.AdminURL("/-/ready"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !v.Alive() {
		t.Errorf("after the overload: /-/ready %d, alive %v", resp.StatusCode, v.Alive())
	}
}
