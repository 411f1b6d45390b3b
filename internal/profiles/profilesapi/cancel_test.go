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

// statusRecorder keeps the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// manyBlocks stores n blocks of two real Go CPU profiles each, 10 s apart from
// an hour ago, for service "shop".
func manyBlocks(t *testing.T, cfg profiles.Config, n int) (*profiles.Store, time.Time) {
	t.Helper()
	raw, err := os.ReadFile("../testdata/go-cpu-10s.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	store, err := profiles.Open(cfg, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	start := time.Now().Add(-time.Hour)
	for blk := range n {
		for i := range 2 {
			p, err := convert.ParsePprof(raw)
			if err != nil {
				t.Fatal(err)
			}
			p.TimeNanos = start.Add(time.Duration(blk*2+i) * 10 * time.Second).UnixNano()
			batch, err := convert.FromPprof(p, convert.Input{Labels: map[string]string{"service_name": "shop"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Append(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.CutHead(); err != nil {
			t.Fatal(err)
		}
	}
	return store, start
}

// TestClientDisconnectStopsMerge: a flame graph closed mid-query ends the merge's
// work on the store rather than leaving it to read every block.
func TestClientDisconnectStopsMerge(t *testing.T) {
	store, start := manyBlocks(t, profiles.Config{}, 150)
	expectStopsOnDisconnect(t, store, func(ctx context.Context, c querierv1connect.QuerierServiceClient) error {
		_, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`,
			Start: start.Add(-time.Minute).UnixMilli(), End: time.Now().UnixMilli(),
		}))
		return err
	})
}

// TestClientDisconnectStopsSelectSeries: the same for a profile time series
// panel, whose query reads every block of its range.
func TestClientDisconnectStopsSelectSeries(t *testing.T) {
	store, start := manyBlocks(t, profiles.Config{}, 150)
	expectStopsOnDisconnect(t, store, func(ctx context.Context, c querierv1connect.QuerierServiceClient) error {
		_, err := c.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
			ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`, Step: 1,
			Start: start.Add(-time.Minute).UnixMilli(), End: time.Now().UnixMilli(),
		}))
		return err
	})
}

// expectStopsOnDisconnect runs query once to its end, then again with a
// client that leaves a tenth of the way in, and fails unless the handler
// stops rather than answering 200. Every run reads every block from disk.
func expectStopsOnDisconnect(t *testing.T, store *profiles.Store, query func(context.Context, querierv1connect.QuerierServiceClient) error) {
	t.Helper()
	entered := make(chan struct{}, 2)
	finished := make(chan int, 2)
	h := profilesapi.NewHandler(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		finished <- rec.status
	}))
	defer srv.Close()
	c := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
	run := func(ctx context.Context) error {
		store.DropBlockCache()
		return query(ctx, c)
	}

	t0 := time.Now()
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
	full := time.Since(t0)
	<-entered
	<-finished
	t.Logf("a query over every block took %v", full)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	<-entered
	time.Sleep(full / 10)
	t1 := time.Now()
	cancel()
	<-done
	select {
	case status := <-finished:
		// A query that ran to its end would have answered 200.
		if status == http.StatusOK {
			t.Fatal("the query ran to its end after the client left")
		}
		t.Logf("the query stopped %v after the client left (status %d)", time.Since(t1), status)
	case <-time.After(10 * time.Second):
		t.Fatal("the query kept running after the client left")
	}
}
