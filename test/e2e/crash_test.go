package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

const (
	crashSeries  = 10
	crashWriters = 4
)

// crashRequest is writer w's request i: one sample for each of its
// crashSeries series at base + i*10ms, with a value that encodes (i, series).
func crashRequest(base time.Time, w, i int) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	ts := base.Add(time.Duration(i) * 10 * time.Millisecond).UnixMilli()
	for s := 0; s < crashSeries; s++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  harness.Labels("__name__", "e2e_crash", "s", strconv.Itoa(s), "w", strconv.Itoa(w)),
			Samples: []prompb.Sample{{Timestamp: ts, Value: float64(i*crashSeries + s)}},
		})
	}
	return req
}

// writeUntilError sends requests from..to-1 in order and returns the
// indexes Vispyr acknowledged (2xx) before the first failure. progress, if
// not nil, is called after each acknowledged request.
func writeUntilError(v *harness.Vispyr, base time.Time, w, from, to int, progress func()) (acked []int, lastErr error) {
	client := &http.Client{Timeout: 10 * time.Second}
	for i := from; i < to; i++ {
		res, err := harness.RemoteWrite(client, v.MetricsURL("/api/v1/write"), crashRequest(base, w, i))
		if err != nil {
			return acked, err
		}
		if res.Status/100 != 2 {
			return acked, fmt.Errorf("request %d: status %d: %s", i, res.Status, res.Body)
		}
		acked = append(acked, i)
		if progress != nil {
			progress()
		}
	}
	return acked, nil
}

// storedCrashSamples returns every stored e2e_crash sample as
// timestamp(ms) -> "w/s" -> value.
func storedCrashSamples(t *testing.T, v *harness.Vispyr, base time.Time) map[int64]map[string]float64 {
	t.Helper()
	waitReplayed(t, v)
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
			got[p.Millis()][s.Metric["w"]+"/"+s.Metric["s"]] = p.Float()
		}
	}
	return got
}

// waitReplayed waits until no metrics WAL replays in the background: until
// then its samples are not in the answers.
func waitReplayed(t *testing.T, v *harness.Vispyr) {
	t.Helper()
	const series = "vispyr_metrics_wal_replay_pending_bytes "
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		resp, err := v.HTTPClient().Get(v.AdminURL("/metrics"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(string(b), "\n"+series)
		if i < 0 {
			t.Fatalf("no %s in Vispyr's /metrics", series)
		}
		if strings.HasPrefix(string(b[i+1+len(series):]), "0\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the background WAL replay did not end")
		}
	}
}

func checkAcked(t *testing.T, got map[int64]map[string]float64, base time.Time, acked [][]int) {
	t.Helper()
	missing, total := 0, 0
	for w, indexes := range acked {
		missing += checkWriterAcked(t, got, base, w, indexes)
		total += len(indexes) * crashSeries
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged samples missing", missing, total)
	}
}

func checkWriterAcked(t *testing.T, got map[int64]map[string]float64, base time.Time, w int, acked []int) int {
	t.Helper()
	missing := 0
	for _, i := range acked {
		want := crashRequest(base, w, i)
		for _, ts := range want.Timeseries {
			s := strconv.Itoa(w) + "/" + ts.Labels[1].Value
			v, ok := got[ts.Samples[0].Timestamp][s]
			if !ok || v != ts.Samples[0].Value {
				if missing < 5 {
					t.Errorf("acknowledged sample lost: request %d series s=%s: got %v (present %v), want %v", i, s, v, ok, ts.Samples[0].Value)
				}
				missing++
			}
		}
	}
	return missing
}

// Every sample Vispyr acknowledged survives kill -9 in the middle of
// concurrent streams of writes, and a later graceful restart; and kill -9
// again in the middle of writes after that graceful restart, when the start-up
// reads the head snapshot the graceful stop left and replays only the WAL
// written since.
func TestCrashSafetyKill9(t *testing.T) {
	t.Parallel()
	crashSafetyKill9(t, harness.Start(t, harness.Options{}))
}

// The same when every start-up moves the metrics WAL aside and replays it
// in the background while the fresh head takes the writes: each check runs
// once the replay has ended, and finds every acknowledged sample.
func TestCrashSafetyKill9BackgroundReplay(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Args: []string{"--metrics.background-replay-min-wal-bytes=1"}})
	crashSafetyKill9(t, v)
	if n := strings.Count(v.Tail(1<<22), "replaying a metrics WAL in the background"); n < 3 {
		t.Errorf("%d background replays logged, want one per restart (3)", n)
	}
}

func crashSafetyKill9(t *testing.T, v *harness.Vispyr) {
	base := time.Now().Add(-5 * time.Minute).Truncate(time.Second)

	acked := killDuringWrites(t, v, base, make([]int, crashWriters))
	v.Restart()
	checkAcked(t, storedCrashSamples(t, v, base), base, acked)

	// After recovery the series keep accepting newer samples.
	for w := range acked {
		next := nextRequest(acked[w], 0)
		more, err := writeUntilError(v, base, w, next, next+5, nil)
		if err != nil {
			t.Fatalf("writer %d: write after restart: %v", w, err)
		}
		acked[w] = append(acked[w], more...)
	}
	if err := v.Stop(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	v.Restart()
	checkAcked(t, storedCrashSamples(t, v, base), base, acked)

	from := make([]int, crashWriters)
	for w := range acked {
		from[w] = nextRequest(acked[w], 0)
	}
	for w, more := range killDuringWrites(t, v, base, from) {
		acked[w] = append(acked[w], more...)
	}
	v.Restart()
	checkAcked(t, storedCrashSamples(t, v, base), base, acked)
}

// nextRequest is the index a writer goes on from: past its last
// acknowledged request and the one whose answer a kill may have cut off.
func nextRequest(acked []int, from int) int {
	if n := len(acked); n > 0 {
		return acked[n-1] + 2
	}
	return from
}

// killDuringWrites runs crashWriters writers, writer w from request from[w]
// on, and kills Vispyr with SIGKILL once 300 requests in all have been
// acknowledged, while every writer is busy. It returns each writer's
// acknowledged requests.
func killDuringWrites(t *testing.T, v *harness.Vispyr, base time.Time, from []int) [][]int {
	t.Helper()
	// Each writer's samples span at most 200s from base; the kill lands
	// long before a writer gets through its share.
	const span, killAfter = 20000, 300
	var (
		acked   = make([][]int, crashWriters)
		errs    = make([]error, crashWriters)
		total   atomic.Int64
		wg      sync.WaitGroup
		reached = make(chan struct{})
		once    sync.Once
	)
	for w := 0; w < crashWriters; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			acked[w], errs[w] = writeUntilError(v, base, w, from[w], from[w]+span, func() {
				if total.Add(1) == killAfter {
					once.Do(func() { close(reached) })
				}
			})
		}(w)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-reached:
	case <-done:
		t.Fatalf("writes stopped before the kill after %d acknowledged: %v", total.Load(), errors.Join(errs...))
	}
	v.Kill9()
	<-done
	for w, err := range errs {
		if err == nil {
			t.Fatalf("writer %d finished all %d writes before kill -9 landed: the test proved nothing", w, len(acked[w]))
		}
	}
	t.Logf("%d requests (%d samples) acknowledged before kill -9; writer 0's next failed: %v",
		total.Load(), total.Load()*crashSeries, errs[0])
	return acked
}
