package profilesapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"

	"github.com/vispyr/vispyr/internal/profiles"
	"github.com/vispyr/vispyr/internal/profiles/profilesapi"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope/convert"
)

// BenchmarkSelectMergeStacktracesAPI is what Grafana waits for: one hour (360
// 10-second Go CPU profiles) of one service among 10, merged into a flame graph and
// sent over connect/proto, from the head and from a block.
func BenchmarkSelectMergeStacktracesAPI(b *testing.B) {
	raw, err := os.ReadFile("../testdata/go-cpu-10s.pb.gz")
	if err != nil {
		b.Fatal(err)
	}
	store, err := profiles.Open(profiles.Config{}, b.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	start := time.Now().Add(-time.Hour)
	for i := range 360 {
		for svc := range 10 {
			p, err := convert.ParsePprof(raw)
			if err != nil {
				b.Fatal(err)
			}
			p.TimeNanos = start.Add(time.Duration(i) * 10 * time.Second).UnixNano()
			batch, err := convert.FromPprof(p, convert.Input{Labels: map[string]string{"service_name": "svc" + string(rune('a'+svc))}})
			if err != nil {
				b.Fatal(err)
			}
			if err := store.Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	srv := httptest.NewServer(profilesapi.NewHandler(store, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	c := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
	run := func(b *testing.B) {
		for b.Loop() {
			r, err := c.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
				ProfileTypeID: cpuType, LabelSelector: `{service_name="svca"}`,
				Start: start.Add(-time.Minute).UnixMilli(), End: time.Now().UnixMilli(),
			}))
			if err != nil || r.Msg.Flamegraph.Total == 0 {
				b.Fatal(err)
			}
		}
	}
	b.Run("head", run)
	if err := store.CutHead(); err != nil {
		b.Fatal(err)
	}
	b.Run("block", run)
	b.Run("block-cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			store.DropBlockCache()
			b.StartTimer()
			r, err := c.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
				ProfileTypeID: cpuType, LabelSelector: `{service_name="svca"}`,
				Start: start.Add(-time.Minute).UnixMilli(), End: time.Now().UnixMilli(),
			}))
			if err != nil || r.Msg.Flamegraph.Total == 0 {
				b.Fatal(err)
			}
		}
	})
}
