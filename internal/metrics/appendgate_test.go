package metrics

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/receiver/promwrite"
)

// More remote-write requests than limits.max_concurrent_appends at once: the
// ones that find no slot are answered 503 with Retry-After (Prometheus
// retries them), and every acknowledged one is stored whole.
func TestSaturatedAppendPathAnswers503(t *testing.T) {
	cfg := config.Default()
	cfg.Limits.MaxConcurrentAppends = 1
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	s, err := Open(cfg.Metrics, cfg.Limits, t.TempDir(), logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	samples := s.RemoteWriteAppender(logger, reg)
	samples.(*tenantSamples).gate.wait = time.Millisecond // no grace: any overlap is refused
	rw := promwrite.NewHandler(samples, promwrite.Options{
		MaxRequestBytes: cfg.Limits.MaxRequestBytes, MaxSeriesPerRequest: cfg.Limits.MaxSeriesPerRequest,
		Inflight: limits.NewInflight(cfg.Limits.MaxInflightBytes),
	}, logger, reg)
	srv := httptest.NewServer(s.NewAPI(APIOptions{Metrics: cfg.Metrics, RemoteWrite: rw}, logger, reg))
	defer srv.Close()

	now := time.Now().Add(-time.Minute).UnixMilli()
	var mu sync.Mutex
	acked, refused := map[int]bool{}, 0
	var refusal string
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for r := range 4 {
				id := w*100 + r
				req := &prompb.WriteRequest{}
				for i := range 2000 {
					req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
						Labels:  []prompb.Label{{Name: "__name__", Value: "gate_test"}, {Name: "req", Value: strconv.Itoa(id)}, {Name: "i", Value: strconv.Itoa(i)}},
						Samples: []prompb.Sample{{Timestamp: now, Value: 1}},
					})
				}
				raw, _ := req.Marshal()
				hr, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
				hr.Header.Set("Content-Encoding", "snappy")
				hr.Header.Set("Content-Type", "application/x-protobuf")
				resp, err := http.DefaultClient.Do(hr)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				switch {
				case resp.StatusCode == http.StatusNoContent:
					acked[id] = true
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
					refused++
					refusal = string(body)
				default:
					t.Errorf("request %d: %d %q, want 204 or 503 with Retry-After", id, resp.StatusCode, body)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if refused == 0 || len(acked) == 0 {
		t.Fatalf("%d acknowledged, %d refused: want both with 8 concurrent writers and one append slot", len(acked), refused)
	}
	if !strings.Contains(refusal, "append path is saturated") || !strings.Contains(refusal, "limits.max_concurrent_appends") {
		t.Errorf("503 body %q does not name the saturated append path and its setting", refusal)
	}
	r := get(t, srv.URL+"/api/v1/query?query="+url.QueryEscape(`count by (req) (gate_test)`)+"&time="+strconv.FormatInt(time.Now().Unix(), 10))
	stored := strings.Count(string(r.Data), `"req"`)
	for id := range acked {
		if !strings.Contains(string(r.Data), fmt.Sprintf(`"req":"%d"},"value":[`, id)) {
			t.Errorf("acknowledged request %d not stored", id)
		}
	}
	if stored != len(acked) || !strings.Contains(string(r.Data), `"2000"`) {
		t.Errorf("%d requests stored, %d acknowledged (each of 2000 series): %s", stored, len(acked), r.Data)
	}
	t.Logf("%d acknowledged, %d refused", len(acked), refused)
}
