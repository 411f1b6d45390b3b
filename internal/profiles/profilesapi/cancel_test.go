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

// TestClientDisconnectStopsMerge: a flame graph closed mid-query ends the merge's
// work on the store rather than leaving it to read every block.
func TestClientDisconnectStopsMerge(t *testing.T) {
	raw, err := os.ReadFile("../testdata/go-cpu-10s.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	store, err := profiles.Open(profiles.Config{}, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	start := time.Now().Add(-time.Hour)
	for blk := range 150 {
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
	merge := func(ctx context.Context) error {
		store.DropBlockCache() // every block is read from disk
		_, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`,
			Start: start.Add(-time.Minute).UnixMilli(), End: time.Now().UnixMilli(),
		}))
		return err
	}

	t0 := time.Now()
	if err := merge(context.Background()); err != nil {
		t.Fatal(err)
	}
	full := time.Since(t0)
	<-entered
	<-finished
	t.Logf("a merge over every block took %v", full)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- merge(ctx) }()
	<-entered
	time.Sleep(full / 10)
	t1 := time.Now()
	cancel()
	<-done
	select {
	case status := <-finished:
		// A merge that ran to its end would have answered 200.
		if status == http.StatusOK {
			t.Fatal("the merge ran to its end after the client left")
		}
		t.Logf("the merge stopped %v after the client left (status %d)", time.Since(t1), status)
	case <-time.After(10 * time.Second):
		t.Fatal("the merge kept running after the client left")
	}
}
