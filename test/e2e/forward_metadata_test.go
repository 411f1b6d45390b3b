package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// metadataSink is a remote-write destination that keeps the metadata it is
// sent: per family from 1.0 requests, per series name from 2.0 ones. No
// installed peer shows remote-written metadata (Prometheus 2.42 and
// VictoriaMetrics 1.79 drop it; Mimir, which keeps it, is not installed).
type metadataSink struct {
	mu   sync.Mutex
	meta map[string]string // family or series name → "type help unit"
}

func (s *metadataSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.Contains(r.Header.Get("Content-Type"), "write.v2") {
		var req writev2.Request
		if err := req.Unmarshal(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var sb labels.ScratchBuilder
		for _, ts := range req.Timeseries {
			ls, _ := ts.ToLabels(&sb, req.Symbols)
			if m, _ := ts.ToMetadata(req.Symbols); !m.IsEmpty() {
				s.meta[ls.Get(labels.MetricName)] = fmt.Sprintf("%s %s %s", m.Type, m.Help, m.Unit)
			}
		}
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, m := range req.Metadata {
		s.meta[m.MetricFamilyName] = fmt.Sprintf("%s %s %s", strings.ToLower(m.Type.String()), m.Help, m.Unit)
	}
}

// waitFor waits until the sink holds want (name → "type help unit").
func (s *metadataSink) waitFor(t *testing.T, name string, want map[string]string) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var missing []string
		for k, v := range want {
			if s.meta[k] != v {
				missing = append(missing, fmt.Sprintf("%s: %q", k, s.meta[k]))
			}
		}
		slices.Sort(missing)
		return len(missing) == 0, fmt.Sprintf("%s has %v", name, missing)
	})
}

// The gateway forwards remote-write metadata: 1.0 metadata (in its own
// request, as Prometheus sends it, or beside new series) and 2.0 per-series
// metadata reach both a 1.0 destination (per family) and a 2.0 destination
// (per series).
func TestGatewayForwardsMetadata(t *testing.T) {
	t.Parallel()
	v1 := &metadataSink{meta: map[string]string{}}
	v2 := &metadataSink{meta: map[string]string{}}
	s1, s2 := httptest.NewServer(v1), httptest.NewServer(v2)
	t.Cleanup(s1.Close)
	t.Cleanup(s2.Close)
	gw := harness.Start(t, harness.Options{Command: "gateway", Config: fmt.Sprintf(`
forward:
  metrics:
    - {name: v1, url: %s, queue: {batch_deadline: 100ms}}
    - {name: v2, url: %s, protocol: "2.0", queue: {batch_deadline: 100ms}}
`, s1.URL, s2.URL)})
	now := time.Now().UnixMilli()
	send := func(req *prompb.WriteRequest) {
		t.Helper()
		res, err := harness.RemoteWrite(nil, gw.MetricsURL("/api/v1/write"), req)
		if err != nil || res.Status/100 != 2 {
			t.Fatalf("remote write: %v %d %s", err, res.Status, res.Body)
		}
	}
	// Metadata alone, as Prometheus's 1.0 sender sends it, then the series.
	send(&prompb.WriteRequest{Metadata: []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "md_latency_seconds", Help: "Latency.", Unit: "seconds"},
	}})
	send(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  harness.Labels("__name__", "md_latency_seconds_bucket", "le", "+Inf"),
		Samples: []prompb.Sample{{Value: 1, Timestamp: now}},
	}}})
	// New series and their metadata in one request.
	send(&prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{Labels: harness.Labels("__name__", "md_requests_total"), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}},
		Metadata:   []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "md_requests_total", Help: "Requests."}},
	})
	// 2.0 metadata per series.
	st := writev2.NewSymbolTable()
	res := postRW2(t, gw, &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "md_temperature_celsius"), nil),
		Samples:    []writev2.Sample{{Value: 21.5, Timestamp: now}},
		Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: st.Symbolize("Temperature."), UnitRef: st.Symbolize("celsius")},
	}}, Symbols: st.Symbols()})
	if res.Status/100 != 2 {
		t.Fatalf("remote write 2.0: %d %s", res.Status, res.Body)
	}

	v1.waitFor(t, "the 1.0 destination", map[string]string{
		"md_latency_seconds":     "histogram Latency. seconds",
		"md_requests_total":      "counter Requests. ",
		"md_temperature_celsius": "gauge Temperature. celsius",
	})
	v2.waitFor(t, "the 2.0 destination", map[string]string{
		"md_latency_seconds_bucket": "histogram Latency. seconds",
		"md_requests_total":         "counter Requests. ",
		"md_temperature_celsius":    "gauge Temperature. celsius",
	})
}
