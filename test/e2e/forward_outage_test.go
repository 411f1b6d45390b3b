package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// outageLoad sends one signal to the gateway in a loop and keeps what the
// gateway acknowledged. The loop holds pause's read lock per request, so the
// test can stop the gateway between requests.
type outageLoad struct {
	name    string
	send    func(i int) error // request i; nil once acknowledged
	every   time.Duration     // pace (0: as fast as acknowledged)
	acked   []int             // requests acknowledged, in order
	refused int
	lastErr error
}

func (l *outageLoad) run(pause *sync.RWMutex, stop <-chan struct{}, max int) {
	for i := 0; i < max; i++ {
		select {
		case <-stop:
			return
		case <-time.After(l.every):
		}
		pause.RLock()
		err := l.send(i)
		pause.RUnlock()
		if err != nil {
			l.refused++
			l.lastErr = err
			time.Sleep(50 * time.Millisecond)
			continue
		}
		l.acked = append(l.acked, i)
	}
}

// A metrics destination (VictoriaMetrics) and a traces and profiles
// destination (a second vispyr serve) stopped for 30 s while metrics, spans
// and profiles keep coming, the gateway killed with -9 in the middle of the
// outage and restarted: the gateway goes on acknowledging, its RSS stays
// bounded (the backlog is on disk), and once the destinations are back every
// acknowledged sample, span and profile arrives.
func TestGatewayOutageUnderLoad(t *testing.T) {
	t.Parallel()
	vmAddr, vmDir := "127.0.0.1:"+strconv.Itoa(testpeer.FreePort(t)), filepath.Join(t.TempDir(), "vm")
	// Delivery is at least once: a batch VictoriaMetrics stored while going
	// down, or while its answer timed out, is sent again. Its deduplication
	// merges such copies (same series and millisecond), as the issue allows.
	dedup := "-dedup.minScrapeInterval=1ms"
	vm := harness.StartVictoriaMetricsAt(t, vmAddr, vmDir, dedup)
	peer := harness.Start(t, harness.Options{})
	queue := "queue: {batch_deadline: 100ms, min_backoff: 50ms, max_backoff: 1s}"
	gw := harness.Start(t, harness.Options{Command: "gateway", Config: fmt.Sprintf(`
forward:
  metrics:
    - name: vm
      url: http://%s/api/v1/write
      %s
  traces:
    - name: peer
      url: http://%s
      %s
  profiles:
    - name: peer
      url: http://%s
      %s
`, vmAddr, queue, peer.OTLPHTTPAddr, queue, peer.PyroscopeAddr, queue)})

	// Each metrics request is 200 series at its own second, each traces
	// request 2 traces of 4 spans, each profile its own 10 s.
	const series, spans, tracesPerReq = 200, 4, 2
	// Request i is at base+i s: 3000 requests end in the past.
	base := time.Now().Add(-55 * time.Minute).Truncate(time.Second)
	client := &http.Client{Timeout: 10 * time.Second}
	metricsBody := func(i int) *prompb.WriteRequest {
		req := &prompb.WriteRequest{}
		for s := range series {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  harness.Labels("__name__", "fw_test", "series", strconv.Itoa(s), "pad", "a-label-value-to-make-the-backlog-bigger"),
				Samples: []prompb.Sample{{Value: float64(i), Timestamp: base.Add(time.Duration(i) * time.Second).UnixMilli()}},
			})
		}
		return req
	}
	// Paced like the others: unpaced, the gateway acknowledged all 3000
	// requests in the 3 s before the outage began, and none during it.
	metrics := &outageLoad{name: "metrics", every: 10 * time.Millisecond, send: func(i int) error {
		res, err := harness.RemoteWrite(client, gw.MetricsURL("/api/v1/write"), metricsBody(i))
		if err == nil && res.Status/100 != 2 {
			err = fmt.Errorf("remote write: %d %s", res.Status, res.Body)
		}
		return err
	}}
	traces := &outageLoad{name: "traces", every: 50 * time.Millisecond, send: func(i int) error {
		td, _ := fwTraces("fw-outage", i*tracesPerReq, tracesPerReq, spans, base.Add(time.Duration(i)*time.Second))
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			return err
		}
		resp, err := client.Post(gw.OTLPHTTPURL("/v1/traces"), "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("OTLP export: %s", resp.Status)
		}
		return nil
	}}
	from := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	profile := func(i int) profileSend { return foldedSend(i, from.Add(time.Duration(i)*10*time.Second)) }
	profiles := &outageLoad{name: "profiles", every: 50 * time.Millisecond, send: func(i int) error {
		return profile(i)(gw.PyroscopeIngestAddr, "fw-outage-gw")
	}}

	var pause sync.RWMutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Bounded in count too: 3000 metrics requests stay within the hour
	// that holds() reads, trace requests within fwTraces' 16-bit IDs.
	wg.Go(func() { metrics.run(&pause, stop, 3000) })
	wg.Go(func() { traces.run(&pause, stop, 1000) })
	wg.Go(func() { profiles.run(&pause, stop, 1000) })

	// The gateway's RSS, sampled through the whole run.
	var peakRSS, idleRSS int64
	idleRSS, _, _ = gw.Process().RSS()
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if cur, _, err := harness.ProcRSS(gw.Pid()); err == nil {
				peakRSS = max(peakRSS, cur)
			}
		}
	}()

	time.Sleep(3 * time.Second)
	outage := time.Now()
	before := [3]int{len(metrics.acked), len(traces.acked), len(profiles.acked)}
	if err := vm.Stop(30 * time.Second); err != nil {
		t.Logf("stop victoria-metrics: %v", err)
	}
	if err := peer.Stop(); err != nil {
		t.Logf("stop second vispyr: %v", err)
	}
	time.Sleep(12 * time.Second)
	pause.Lock() // between requests: no request is half acknowledged
	backlog := scrape(t, gw.AdminURL("/metrics"), `vispyr_forward_queue_bytes{destination="vm",signal="metrics"}`)
	gw.Kill9()
	gw.Restart()
	pause.Unlock()
	time.Sleep(time.Until(outage.Add(30 * time.Second)))
	during := [3]int{len(metrics.acked) - before[0], len(traces.acked) - before[1], len(profiles.acked) - before[2]}
	vm = harness.StartVictoriaMetricsAt(t, vmAddr, vmDir, dedup)
	peer.Restart()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	<-rssDone

	t.Logf("acknowledged (during the outage): metrics %d (%d), traces %d (%d), profiles %d (%d) requests; refused %d/%d/%d (last: %v %v %v)",
		len(metrics.acked), during[0], len(traces.acked), during[1], len(profiles.acked), during[2],
		metrics.refused, traces.refused, profiles.refused, metrics.lastErr, traces.lastErr, profiles.lastErr)
	t.Logf("gateway RSS idle %d MB, peak %d MB; metrics queue %.1f MB before the kill", idleRSS>>20, peakRSS>>20, backlog/1e6)
	for i, l := range []*outageLoad{metrics, traces, profiles} {
		// Requests pause while the gateway restarts, and its queues have room
		// for the whole outage: every request is acknowledged.
		if l.refused > 0 {
			t.Errorf("%s: %d requests refused, the last: %v", l.name, l.refused, l.lastErr)
		}
		if during[i] == 0 {
			t.Errorf("%s: the gateway acknowledged nothing during the outage", l.name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// Generous: a backlog kept in memory would grow with the outage; on disk
	// the gateway stays near its idle size.
	if limit := idleRSS + 200<<20; peakRSS > limit {
		t.Fatalf("gateway RSS peaked at %d MB during the outage (idle %d MB, bound %d MB)", peakRSS>>20, idleRSS>>20, limit>>20)
	}

	var acked int
	var sum float64
	for _, i := range metrics.acked {
		acked += series
		sum += float64(i * series)
	}
	holds(t, "victoria-metrics after the outage", vm.URL(""), base.Add(time.Hour), acked, sum)

	var ids []pcommon.TraceID
	var idx []int
	for _, i := range traces.acked {
		_, got := fwTraces("fw-outage", i*tracesPerReq, tracesPerReq, spans, time.Time{})
		ids = append(ids, got...)
		for k := range tracesPerReq {
			idx = append(idx, i*tracesPerReq+k)
		}
	}
	holdsTracesAt(t, "second vispyr after the outage", tempoTrace(peer), ids, idx, spans)

	for _, i := range profiles.acked {
		if err := profile(i)(peer.PyroscopeIngestAddr, "fw-outage-direct"); err != nil {
			t.Fatalf("profile %d straight to the destination: %v", i, err)
		}
	}
	typ := "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	harness.Eventually(t, 60*time.Second, func() (bool, string) {
		wantTotal, wantNames := flame(t, peer.PyroscopeAddr, typ, "fw-outage-direct")
		gotTotal, gotNames := flame(t, peer.PyroscopeAddr, typ, "fw-outage-gw")
		return wantTotal > 0 && gotTotal == wantTotal && slices.Equal(gotNames, wantNames),
			fmt.Sprintf("profiles through the gateway: total %d, %d names; the acknowledged ones sent straight: total %d, %d names",
				gotTotal, len(gotNames), wantTotal, len(wantNames))
	})
}
