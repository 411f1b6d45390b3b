package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

const crashSeries = 10

// crashRequest is request i: one sample for each of crashSeries series at
// base + i*10ms, with a value that encodes (i, series).
func crashRequest(base time.Time, i int) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	ts := base.Add(time.Duration(i) * 10 * time.Millisecond).UnixMilli()
	for s := 0; s < crashSeries; s++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  harness.Labels("__name__", "e2e_crash", "s", strconv.Itoa(s)),
			Samples: []prompb.Sample{{Timestamp: ts, Value: float64(i*crashSeries + s)}},
		})
	}
	return req
}

// writeUntilError sends requests from..to-1 in order and returns the
// indexes Vispyr acknowledged (2xx) before the first failure. progress, if
// not nil, is called after each acknowledged request.
func writeUntilError(v *harness.Vispyr, base time.Time, from, to int, progress func(n int)) (acked []int, lastErr error) {
	client := &http.Client{Timeout: 10 * time.Second}
	for i := from; i < to; i++ {
		res, err := harness.RemoteWrite(client, v.MetricsURL("/api/v1/write"), crashRequest(base, i))
		if err != nil {
			return acked, err
		}
		if res.Status/100 != 2 {
			return acked, fmt.Errorf("request %d: status %d: %s", i, res.Status, res.Body)
		}
		acked = append(acked, i)
		if progress != nil {
			progress(len(acked))
		}
	}
	return acked, nil
}

// storedCrashSamples returns every stored e2e_crash sample as
// timestamp(ms) -> series -> value.
func storedCrashSamples(t *testing.T, v *harness.Vispyr, base time.Time) map[int64]map[string]float64 {
	t.Helper()
	api := harness.NewAPI(v.MetricsURL(""))
	at := base.Add(10 * time.Minute)
	r := api.Get(t, "/api/v1/query", url.Values{"query": {"e2e_crash[15m]"}, "time": {harness.FormatTime(at)}}).MustSucceed(t)
	typ, series := r.Query(t)
	if typ != "matrix" {
		t.Fatalf("e2e_crash[15m]: resultType %q, want matrix", typ)
	}
	got := map[int64]map[string]float64{}
	for _, s := range series {
		for _, p := range s.Values {
			if got[p.Millis()] == nil {
				got[p.Millis()] = map[string]float64{}
			}
			got[p.Millis()][s.Metric["s"]] = p.Float()
		}
	}
	return got
}

func checkAcked(t *testing.T, got map[int64]map[string]float64, base time.Time, acked []int) {
	t.Helper()
	missing := 0
	for _, i := range acked {
		want := crashRequest(base, i)
		for _, ts := range want.Timeseries {
			s := ts.Labels[1].Value
			v, ok := got[ts.Samples[0].Timestamp][s]
			if !ok || v != ts.Samples[0].Value {
				if missing < 5 {
					t.Errorf("acknowledged sample lost: request %d series s=%s: got %v (present %v), want %v", i, s, v, ok, ts.Samples[0].Value)
				}
				missing++
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged samples missing", missing, len(acked)*crashSeries)
	}
}

// Every sample Vispyr acknowledged survives kill -9 in the middle of a
// stream of writes, and a later graceful restart.
func TestCrashSafetyKill9(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	base := time.Now().Add(-5 * time.Minute).Truncate(time.Second)

	// Writes span base .. base+200s; the kill lands after 300 of them.
	const target, killAfter = 20000, 300
	var (
		acked   []int
		werr    error
		done    = make(chan struct{})
		reached = make(chan struct{})
	)
	go func() {
		defer close(done)
		acked, werr = writeUntilError(v, base, 0, target, func(n int) {
			if n == killAfter {
				close(reached)
			}
		})
	}()
	select {
	case <-reached:
	case <-done:
		t.Fatalf("writes stopped before the kill after %d acknowledged: %v", len(acked), werr)
	}
	v.Kill9()
	<-done
	if werr == nil {
		t.Fatalf("all %d writes finished before kill -9 landed: the test proved nothing", len(acked))
	}
	t.Logf("%d requests (%d samples) acknowledged before kill -9; the next failed: %v", len(acked), len(acked)*crashSeries, werr)

	v.Restart()
	checkAcked(t, storedCrashSamples(t, v, base), base, acked)

	// After recovery the series keep accepting newer samples.
	next := acked[len(acked)-1] + 2
	more, err := writeUntilError(v, base, next, next+20, nil)
	if err != nil {
		t.Fatalf("write after restart: %v", err)
	}
	if err := v.Stop(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	v.Restart()
	checkAcked(t, storedCrashSamples(t, v, base), base, append(acked, more...))
}
