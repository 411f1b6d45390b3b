package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// absurdTrace is one span of service svc from start to end (Unix ns).
func absurdTrace(svc string, id byte, start, end uint64) (ptrace.Traces, string) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	tid := pcommon.TraceID{0xab, id, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	sp.SetTraceID(tid)
	sp.SetSpanID(pcommon.SpanID{id, 1, 2, 3, 4, 5, 6, 7})
	sp.SetName("op")
	sp.SetStartTimestamp(pcommon.Timestamp(start))
	sp.SetEndTimestamp(pcommon.Timestamp(end))
	return td, hex.EncodeToString(tid[:])
}

// A span that ends before it starts, and a remote-write sample dated 1938,
// are what an unlucky client sends: neither may show up as nonsense.
func TestAbsurdTimestamps(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	client := v.HTTPClient()
	now := time.Now()

	// Traces: accepted as Tempo accepts them, but the span ending before it
	// starts is an instant, not a 42-day trace at the top of every search.
	send := func(td ptrace.Traces) {
		t.Helper()
		body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		resp, err := client.Post(v.OTLPHTTPURL("/v1/traces"), "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("OTLP traces: %d %s", resp.StatusCode, b)
		}
	}
	good, goodID := absurdTrace("good", 1, uint64(now.Add(-2*time.Second).UnixNano()), uint64(now.Add(-time.Second).UnixNano()))
	send(good)
	backwards, backID := absurdTrace("backwards", 2, uint64(now.Add(-3*time.Second).UnixNano()), 0)
	send(backwards)
	future, futureID := absurdTrace("future", 3, 5e18, 0)
	send(future)

	var res struct {
		Traces []struct {
			TraceID         string `json:"traceID"`
			RootServiceName string `json:"rootServiceName"`
			DurationMs      uint32 `json:"durationMs"`
		} `json:"traces"`
	}
	q := url.Values{"q": {"{}"}, "limit": {"20"},
		"start": {fmt.Sprint(now.Add(-time.Hour).Unix())}, "end": {fmt.Sprint(now.Add(time.Minute).Unix())}}
	resp, err := client.Get("http://" + v.TempoAddr + "/api/search?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, tr := range res.Traces {
		found[tr.RootServiceName] = true
		if tr.DurationMs > 60_000 || tr.RootServiceName == "future" {
			t.Errorf("search of the last hour shows %s lasting %d ms", tr.RootServiceName, tr.DurationMs)
		}
	}
	if !found["good"] || !found["backwards"] {
		t.Errorf("search of the last hour found %v, want the good trace and the backwards one", found)
	}
	for _, id := range []string{goodID, backID, futureID} {
		code, body := getBody(t, client, "http://"+v.TempoAddr+"/api/traces/"+id)
		if code != http.StatusOK {
			t.Errorf("trace %s: %d %s", id, code, body)
			continue
		}
		var tr struct {
			Batches []struct {
				ScopeSpans []struct {
					Spans []struct{ StartTimeUnixNano, EndTimeUnixNano string }
				}
			}
		}
		_ = json.Unmarshal([]byte(body), &tr)
		sp := tr.Batches[0].ScopeSpans[0].Spans[0]
		if id != goodID && sp.EndTimeUnixNano != sp.StartTimeUnixNano {
			t.Errorf("trace %s: span from %s to %s, want an instant at its start", id, sp.StartTimeUnixNano, sp.EndTimeUnixNano)
		}
	}

	// Remote write: a sample older than the retention is refused as out of
	// bounds (400, not retried) and nothing is stored; good samples are.
	rw := func(ts int64, name string) harness.RemoteWriteResult {
		r, err := harness.RemoteWrite(client, v.MetricsURL("/api/v1/write"), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels: harness.Labels("__name__", name), Samples: []prompb.Sample{{Timestamp: ts, Value: 1}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := rw(-1e12, "absurd_old"); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "out of bounds") || !strings.Contains(r.Body, "too far in the past") {
		t.Errorf("sample at -1e12 ms: %d %q, want 400 out of bounds, too far in the past", r.Status, r.Body)
	}
	if r := rw(now.UnixMilli(), "absurd_ok"); r.Status != http.StatusNoContent {
		t.Errorf("good sample: %d %s", r.Status, r.Body)
	}
	api := harness.NewAPI(v.MetricsURL(""))
	st := api.Get(t, "/api/v1/status/tsdb", nil).MustSucceed(t)
	var stats struct {
		HeadStats struct{ MinTime int64 } `json:"headStats"`
	}
	_ = json.Unmarshal(st.Data, &stats)
	if stats.HeadStats.MinTime < now.Add(-time.Hour).UnixMilli() {
		t.Errorf("head min time %d (%s): the refused sample was stored", stats.HeadStats.MinTime, time.UnixMilli(stats.HeadStats.MinTime).UTC())
	}
	if _, s, _ := api.Instant(t, "absurd_ok", now); len(s) != 1 {
		t.Errorf("absurd_ok: %v, want the good sample", s)
	}
}

func getBody(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
