package profilesapi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/profiles"
	"github.com/vispyr/vispyr/internal/profiles/profilesapi"
)

// TestQueryMemoryBound: a flame graph or a series query whose tree or points
// pass profiles.query_max_memory_bytes is refused with invalid_argument
// naming the limit; one that finds the budget shared by all running queries
// spent gets resource_exhausted (429), which clients retry; within the bounds
// both answer, and every answer gives back what it held.
func TestQueryMemoryBound(t *testing.T) {
	store, start := manyBlocks(t, profiles.Config{}, 20)
	shared := limits.NewInflight(64 << 20)
	client := func(perQuery int64) querierv1connect.QuerierServiceClient {
		srv := httptest.NewServer(profilesapi.NewHandler(store, slog.New(slog.NewTextHandler(io.Discard, nil)),
			profilesapi.WithQueryMemory(perQuery, shared)))
		t.Cleanup(srv.Close)
		return querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
	}
	from, to := start.Add(-time.Minute).UnixMilli(), time.Now().UnixMilli()
	merge := func(c querierv1connect.QuerierServiceClient) error {
		_, err := c.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`, Start: from, End: to,
		}))
		return err
	}
	series := func(c querierv1connect.QuerierServiceClient) error {
		_, err := c.SelectSeries(context.Background(), connect.NewRequest(&querierv1.SelectSeriesRequest{
			ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`, Step: 1, Start: from, End: to,
		}))
		return err
	}
	// 40 profiles of a real Go program: hundreds of call-tree nodes, 40 points.
	small, roomy := client(2<<10), client(1<<30)
	for name, query := range map[string]func(querierv1connect.QuerierServiceClient) error{"merge": merge, "series": series} {
		err := query(small)
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "profiles.query_max_memory_bytes (2048)") {
			t.Errorf("%s under a 2 KiB bound: %v, want invalid_argument naming profiles.query_max_memory_bytes", name, err)
		}
		if err := query(roomy); err != nil {
			t.Errorf("%s under a 1 GiB bound: %v", name, err)
		}
	}

	// Other queries hold all but 2 KiB of the shared budget.
	shared.Acquire(64<<20 - 2<<10)
	err := merge(roomy)
	var ce *connect.Error
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !errors.As(err, &ce) || !strings.Contains(ce.Message(), "retry later") {
		t.Errorf("merge with the shared budget spent: %v, want resource_exhausted", err)
	}
	shared.Release(64<<20 - 2<<10)
	if n := shared.InUse(); n != 0 {
		t.Errorf("queries still hold %d bytes of the shared budget after answering", n)
	}
}

// TestMergeTimeout: a merge that outruns profiles.query_timeout ends with
// deadline_exceeded naming the bound, rather than reading every block.
func TestMergeTimeout(t *testing.T) {
	store, start := manyBlocks(t, profiles.Config{QueryTimeout: time.Nanosecond}, 30)
	srv := httptest.NewServer(profilesapi.NewHandler(store, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	c := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
	store.DropBlockCache()
	_, err := c.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`,
		Start: start.Add(-time.Minute).UnixMilli(), End: time.Now().UnixMilli(),
	}))
	if connect.CodeOf(err) != connect.CodeDeadlineExceeded || !strings.Contains(err.Error(), "profiles.query_timeout (1ns)") {
		t.Fatalf("merge past its timeout: %v, want deadline_exceeded naming profiles.query_timeout", err)
	}
}
