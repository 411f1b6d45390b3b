package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

func seriesRequest(n int) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	now := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  harness.Labels("__name__", "e2e_limits", "i", fmt.Sprint(i), "pad", strings.Repeat("x", 40)),
			Samples: []prompb.Sample{{Timestamp: now, Value: float64(i)}},
		})
	}
	return req
}

// Request limits set by flags: too many series is a 400 naming the limit,
// a body that decompresses past the size limit a 413.
func TestRequestLimits(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Args: []string{
		"--limits.max-request-bytes=65536", "--limits.max-series-per-request=100"}})
	url := v.MetricsURL("/api/v1/write")

	if res, err := harness.RemoteWrite(nil, url, seriesRequest(100)); err != nil || res.Status != http.StatusNoContent {
		t.Fatalf("100 series (at the limit): %v %d %s, want 204", err, res.Status, res.Body)
	}
	res, err := harness.RemoteWrite(nil, url, seriesRequest(101))
	if err != nil || res.Status != http.StatusBadRequest || !strings.Contains(res.Body, "100") {
		t.Errorf("101 series: %v %d %q, want 400 naming the limit of 100", err, res.Status, res.Body)
	}
	// ~1000 series × ~80 bytes decompress past 64 KiB though snappy shrinks
	// the repetitive body well below it.
	body, _ := harness.EncodeWriteRequest(seriesRequest(1000))
	if len(body) >= 65536 {
		t.Fatalf("test body is %d bytes compressed; want it under the limit", len(body))
	}
	res, err = harness.PostRemoteWrite(nil, url, body, nil)
	if err != nil || res.Status != http.StatusRequestEntityTooLarge || res.Body == "" {
		t.Errorf("body decompressing past the limit: %v %d %q, want 413 with a message", err, res.Status, res.Body)
	}
	v.CheckServing(t)
}

// When more bytes are being ingested than the in-flight budget allows,
// remote write answers 503 with Retry-After: Prometheus retries every 5xx, but
// drops a batch answered 429 unless retry_on_http_429 is set.
func TestOverloadAnswersRetryable(t *testing.T) {
	t.Parallel()
	// The budget counts a request's compressed plus decompressed bytes. Make
	// both limits the request's decompressed size: it passes the size check,
	// yet alone is over the in-flight budget.
	req := seriesRequest(20)
	raw, _ := req.Marshal()
	limit := fmt.Sprint(len(raw))
	v := harness.Start(t, harness.Options{Args: []string{
		"--limits.max-request-bytes=" + limit, "--limits.max-inflight-bytes=" + limit}})

	res, err := harness.RemoteWrite(nil, v.MetricsURL("/api/v1/write"), req)
	if err != nil || res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("remote write over budget: %v %d Retry-After=%q, want 503 with Retry-After", err, res.Status, res.Header.Get("Retry-After"))
	}

	v.CheckServing(t)
}
