package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

const rw2ContentType = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

func postRW2(t *testing.T, v *harness.Vispyr, req *writev2.Request) harness.RemoteWriteResult {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	res, err := harness.PostRemoteWrite(nil, v.MetricsURL("/api/v1/write"), snappy.Encode(nil, raw), http.Header{
		"Content-Type":                      {rw2ContentType},
		"X-Prometheus-Remote-Write-Version": {"2.0.0"},
	})
	if err != nil {
		t.Fatalf("remote write v2: %v", err)
	}
	return res
}

// Remote write 2.0: float samples with an exemplar and metadata, and a
// native histogram. Prometheus's v2 sender counts a request as failed unless
// the X-Prometheus-Remote-Write-*-Written headers say what was written.
func TestRemoteWriteV2(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	now := time.Now().Truncate(time.Second)
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }

	st := writev2.NewSymbolTable()
	traceID := "4bf92f3577b34da6a3ce929d0e0e4736"
	h := &histogram.Histogram{
		Count: 5, Sum: 12.5, Schema: 0, ZeroThreshold: 0.001, ZeroCount: 1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
		PositiveBuckets: []int64{2, 0}, // delta-encoded: 2, 2
	}
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "e2e_rw2_total", "k", "a"), nil),
			Samples: []writev2.Sample{
				{Value: 1, Timestamp: ms(-2 * time.Second)},
				{Value: 2, Timestamp: ms(-time.Second)},
				{Value: 3, Timestamp: ms(0)},
			},
			Exemplars: []writev2.Exemplar{{
				LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", traceID), nil),
				Value:      3, Timestamp: ms(0),
			}},
			Metadata: writev2.Metadata{
				Type:    writev2.Metadata_METRIC_TYPE_COUNTER,
				HelpRef: st.Symbolize("Requests seen by the e2e test."),
			},
		},
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "e2e_rw2_hist", "k", "a"), nil),
			Histograms: []writev2.Histogram{writev2.FromIntHistogram(0, ms(0), h)},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM},
		},
	}}
	req.Symbols = st.Symbols()

	res := postRW2(t, v, req)
	if res.Status != http.StatusNoContent {
		t.Fatalf("v2 write: status %d, want 204: %s", res.Status, res.Body)
	}
	for hdr, want := range map[string]string{
		"X-Prometheus-Remote-Write-Samples-Written":    "3",
		"X-Prometheus-Remote-Write-Histograms-Written": "1",
		"X-Prometheus-Remote-Write-Exemplars-Written":  "1",
	} {
		if got := res.Header.Get(hdr); got != want {
			t.Errorf("%s = %q, want %q", hdr, got, want)
		}
	}

	api := harness.NewAPI(v.MetricsURL(""))
	s := api.QueryRange(t, `e2e_rw2_total{k="a"}`, now.Add(-2*time.Second), now, time.Second)
	if len(s) != 1 || len(s[0].Values) != 3 || s[0].Values[2].V != "3" {
		t.Errorf("e2e_rw2_total = %+v, want 1,2,3", s)
	}
	_, hc, _ := api.Instant(t, `histogram_count(e2e_rw2_hist)`, now)
	_, hs, _ := api.Instant(t, `histogram_sum(e2e_rw2_hist)`, now)
	if len(hc) != 1 || hc[0].Value.V != "5" || len(hs) != 1 || hs[0].Value.V != "12.5" {
		t.Errorf("native histogram count %+v sum %+v, want 5 and 12.5", hc, hs)
	}
	_, _, raw := api.Instant(t, `e2e_rw2_hist`, now)
	if !strings.Contains(string(raw.Data), `"histogram"`) {
		t.Errorf("native histogram query answer has no \"histogram\" field: %s", raw.Data)
	}

	ex := api.Get(t, "/api/v1/query_exemplars", url.Values{"query": {"e2e_rw2_total"},
		"start": {harness.FormatTime(now.Add(-time.Minute))}, "end": {harness.FormatTime(now.Add(time.Minute))}}).MustSucceed(t)
	if !strings.Contains(string(ex.Data), traceID) {
		t.Errorf("query_exemplars = %s, want trace_id %s", ex.Data, traceID)
	}

	// A label reference past the symbols table is the sender's bug: 400.
	bad := &writev2.Request{Symbols: []string{"", "__name__"}, Timeseries: []writev2.TimeSeries{{
		LabelsRefs: []uint32{1, 7}, Samples: []writev2.Sample{{Value: 1, Timestamp: ms(0)}},
	}}}
	if res := postRW2(t, v, bad); res.Status != http.StatusBadRequest || res.Body == "" {
		t.Errorf("v2 with a bad symbol ref: %d %q, want 400 with a message", res.Status, res.Body)
	}
	v.CheckServing(t)
}
