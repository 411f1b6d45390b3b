package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// profileSend is one request the test sends through the gateway and, as a
// reference, straight to the destination under another service name.
type profileSend func(pyroscopeAddr, service string) error

func foldedSend(i int, from time.Time) profileSend {
	body := fmt.Sprintf("main;work;step%d %d\nmain;idle %d\n", i%7, 10+i, 3+i%5)
	return func(addr, service string) error {
		url := fmt.Sprintf("http://%s/ingest?format=folded&name=%s%%7Breq%%3D%d%%7D&from=%d&until=%d",
			addr, service, i%3, from.Unix(), from.Add(10*time.Second).Unix())
		resp, err := http.Post(url, "binary/octet-stream", strings.NewReader(body))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("ingest: %s", resp.Status)
		}
		return nil
	}
}

// pprofSend pushes a heap profile of this very test process (a real Go
// runtime pprof, gzipped, four sample types) by the connect push API.
func pprofSend(t *testing.T) profileSend {
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	return func(addr, service string) error {
		c := pushv1connect.NewPusherServiceClient(http.DefaultClient, "http://"+addr)
		_, err := c.Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "service_name", Value: service}},
			Samples: []*pushv1.RawSample{{RawProfile: raw, ID: "00000000-0000-0000-0000-000000000001"}},
		}}}))
		return err
	}
}

// flame is a merged flame graph of one service: its total and sorted names.
func flame(t *testing.T, addr, typ, service string) (int64, []string) {
	t.Helper()
	q := querierv1connect.NewQuerierServiceClient(http.DefaultClient, "http://"+addr)
	start, end := time.Now().Add(-time.Hour).UnixMilli(), time.Now().Add(time.Minute).UnixMilli()
	fg, err := q.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: typ, LabelSelector: `{service_name="` + service + `"}`, Start: start, End: end}))
	if err != nil {
		t.Fatalf("flame graph of %s: %v", service, err)
	}
	names := slices.Clone(fg.Msg.Flamegraph.GetNames())
	slices.Sort(names)
	return fg.Msg.Flamegraph.GetTotal(), names
}

// Profiles sent to the gateway, by /ingest (folded) and by the push API (a
// real pprof), arrive at a second Vispyr exactly as the same requests sent
// straight to it, across an outage of the destination with a kill -9 of the
// gateway holding the backlog.
func TestGatewayForwardsProfiles(t *testing.T) {
	t.Parallel()
	peer := harness.Start(t, harness.Options{})
	gw := harness.Start(t, harness.Options{Command: "gateway", Config: fmt.Sprintf(`
forward:
  profiles:
    - name: peer
      url: http://%s
      queue: {batch_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}
`, peer.PyroscopeAddr)})

	from := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	var sends []profileSend
	send := func(s profileSend) {
		t.Helper()
		if err := s(gw.PyroscopeIngestAddr, "fw-gw"); err != nil {
			t.Fatalf("send %d to the gateway: %v", len(sends), err)
		}
		sends = append(sends, s)
	}
	for i := range 10 {
		send(foldedSend(i, from.Add(time.Duration(i)*time.Second)))
	}
	send(pprofSend(t))
	// Everything delivered (and the cursor committed) before the outage.
	harness.Eventually(t, 20*time.Second, func() (bool, string) {
		n := scrape(t, gw.AdminURL("/metrics"), `vispyr_forward_queue_records{destination="peer",signal="profiles"}`)
		return n == 0, fmt.Sprintf("gateway queue holds %v records", n)
	})

	if err := peer.Stop(); err != nil {
		t.Logf("stop destination: %v", err)
	}
	for i := 10; i < 20; i++ {
		send(foldedSend(i, from.Add(time.Duration(i)*time.Second)))
	}
	send(pprofSend(t))
	time.Sleep(500 * time.Millisecond) // a few failed sends
	gw.Kill9()
	gw.Restart()
	peer.Restart()

	for i, s := range sends {
		if err := s(peer.PyroscopeIngestAddr, "fw-direct"); err != nil {
			t.Fatalf("send %d straight to the destination: %v", i, err)
		}
	}
	for _, typ := range []string{"process_cpu:cpu:nanoseconds:cpu:nanoseconds", "memory:alloc_space:bytes:space:bytes", "memory:alloc_objects:count:space:bytes"} {
		harness.Eventually(t, 30*time.Second, func() (bool, string) {
			wantTotal, wantNames := flame(t, peer.PyroscopeAddr, typ, "fw-direct")
			gotTotal, gotNames := flame(t, peer.PyroscopeAddr, typ, "fw-gw")
			return wantTotal > 0 && gotTotal == wantTotal && slices.Equal(gotNames, wantNames),
				fmt.Sprintf("%s through the gateway: total %d, %d names; sent straight: total %d, %d names", typ, gotTotal, len(gotNames), wantTotal, len(wantNames))
		})
	}
}
