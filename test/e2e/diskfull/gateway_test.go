package diskfull

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// TestGatewayDiskFull: the gateway's forward queues refuse writes on a disk
// under the reserve (503 for remote write, RESOURCE_EXHAUSTED for OTLP/gRPC,
// naming the queue and the free bytes), readiness says why, and both resume
// without a restart once space returns.
func TestGatewayDiskFull(t *testing.T) {
	mnt := mountTmpfs(t)
	down := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)) // nothing listens: records stay queued
	gw := harness.Start(t, harness.Options{Command: "gateway", DataDir: filepath.Join(mnt, "data"),
		Args: []string{fmt.Sprintf("--limits.disk-reserve-bytes=%d", reserve)},
		Config: fmt.Sprintf(`
forward:
  metrics:
    - name: down
      url: http://%s/api/v1/write
      queue: {max_backoff: 200ms}
  traces:
    - name: down
      url: grpc://%s
      queue: {max_backoff: 200ms}
`, down, down)})
	conn, err := grpc.NewClient(gw.OTLPGRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	traces := ptraceotlp.NewGRPCClient(conn)
	client := &http.Client{Timeout: 10 * time.Second}
	write := func() harness.RemoteWriteResult {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  harness.Labels("__name__", "gw_diskfull", "at", strconv.FormatInt(time.Now().UnixNano(), 10)),
			Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
		}}}
		res, err := harness.RemoteWrite(client, gw.MetricsURL("/api/v1/write"), req)
		if err != nil {
			t.Fatalf("remote write: %v", err)
		}
		return res
	}
	export := func() error {
		td, _ := traceBatch("gw-diskfull")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := traces.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		return err
	}
	if res := write(); res.Status != http.StatusNoContent {
		t.Fatalf("remote write with room: %d %s", res.Status, res.Body)
	}
	if err := export(); err != nil {
		t.Fatalf("OTLP export with room: %v", err)
	}

	filler := filepath.Join(mnt, "filler")
	grow(t, filler, reserve/2)
	var res harness.RemoteWriteResult
	harness.Eventually(t, 5*time.Second, func() (bool, string) {
		res = write()
		return res.Status != http.StatusNoContent, "remote write still accepted under the reserve"
	})
	if res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		!strings.Contains(res.Body, "forward/metrics/down") || !strings.Contains(res.Body, "disk almost full") {
		t.Errorf("remote write on a full disk: %d Retry-After=%q %q; want 503 with Retry-After naming the queue and the disk",
			res.Status, res.Header.Get("Retry-After"), res.Body)
	}
	st := status.Convert(export())
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "forward/traces/down") {
		t.Errorf("OTLP export on a full disk: %v %q; want ResourceExhausted naming the queue", st.Code(), st.Message())
	}
	harness.Eventually(t, 5*time.Second, func() (bool, string) {
		code, body := get(t, gw.AdminURL("/-/ready"))
		return code == http.StatusServiceUnavailable && strings.Contains(body, "disk almost full"), fmt.Sprintf("/-/ready %d %s", code, body)
	})

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, func() (bool, string) {
		res = write()
		return res.Status == http.StatusNoContent, fmt.Sprintf("remote write after space returned: %d %s", res.Status, res.Body)
	})
	if err := export(); err != nil {
		t.Errorf("OTLP export after space returned: %v", err)
	}
	if !gw.Alive() {
		t.Fatalf("gateway died")
	}
}
