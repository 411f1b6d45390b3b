package pyroscope_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pyroscopego "github.com/grafana/pyroscope-go"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/vispyr/vispyr/internal/profiles"
	"github.com/vispyr/vispyr/internal/profiles/profilesapi"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope"
)

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

// server runs the ingest and query handlers on one port, as :4040 does.
// wrap, if given, sees every request first (to record what clients send).
func server(t testing.TB, store *profiles.Store, wrap ...func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ingest := pyroscope.NewHandler(store, logger, nil)
	query := profilesapi.NewHandler(store, logger)
	mux := http.NewServeMux()
	mux.Handle("/ingest", ingest)
	mux.Handle("/pyroscope/ingest", ingest)
	mux.Handle("/push.v1.PusherService/", ingest)
	mux.Handle("/", query)
	var h http.Handler = mux
	for _, w := range wrap {
		h = w(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func openStore(t testing.TB, dir string) *profiles.Store {
	t.Helper()
	s, err := profiles.Open(profiles.Config{}, dir, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The busy functions do a fixed amount of work (not a fixed wall time) so the CPU
// profile sees the same CPU time however loaded the machine is.

// workUnit is roughly 0.1 s of CPU on a current x86 core.
const workUnit = 30_000_000

//go:noinline
func vispyrBusyChecksum(units int) uint64 {
	var x uint64 = 1
	for i := 0; i < units*workUnit; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		x ^= x >> 29
	}
	return x
}

//go:noinline
func vispyrSpanWork(units int) uint64 {
	var x uint64 = 7
	for i := 0; i < units*workUnit; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

var sink uint64

// TestGoSDK runs the real pyroscope-go client against Vispyr and reads the data back
// with the connect client Grafana's backend uses.
func TestGoSDK(t *testing.T) {
	store := openStore(t, t.TempDir())
	defer store.Close()
	srv := server(t, store)

	start := time.Now()
	prof, err := pyroscopego.Start(pyroscopego.Config{
		ApplicationName: "vispyr.gotest",
		ServerAddress:   srv.URL,
		Tags:            map[string]string{"env": "test"},
		UploadRate:      time.Hour, // we flush by hand
		ProfileTypes:    []pyroscopego.ProfileType{pyroscopego.ProfileCPU, pyroscopego.ProfileAllocSpace, pyroscopego.ProfileInuseSpace},
	})
	if err != nil {
		t.Fatal(err)
	}
	sink += vispyrBusyChecksum(6)
	pprof.Do(context.Background(), pprof.Labels("span_id", "00000000000000ab", "span_name", "checkout"), func(context.Context) {
		sink += vispyrSpanWork(3)
	})
	prof.Flush(true)
	if err := prof.Stop(); err != nil {
		t.Fatal(err)
	}
	end := time.Now()

	client := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
	ctx := context.Background()

	types, err := client.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start.UnixMilli(), End: end.UnixMilli()}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, pt := range types.Msg.ProfileTypes {
		ids = append(ids, pt.ID)
	}
	for _, want := range []string{cpuType, "process_cpu:samples:count:cpu:nanoseconds", "memory:alloc_space:bytes:space:bytes", "memory:inuse_space:bytes:space:bytes"} {
		if !strings.Contains(strings.Join(ids, " "), want) {
			t.Errorf("profile types %v lack %s", ids, want)
		}
	}

	values, err := client.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{
		Name: "service_name", Matchers: []string{`{__profile_type__="` + cpuType + `"}`}, Start: start.UnixMilli(), End: end.UnixMilli(),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(values.Msg.Names, ","); got != "vispyr.gotest" {
		t.Errorf("service_name values = %q, want vispyr.gotest", got)
	}

	fg, err := client.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: cpuType, LabelSelector: `{service_name="vispyr.gotest",env="test"}`,
		Start: start.UnixMilli(), End: end.UnixMilli(),
	}))
	if err != nil {
		t.Fatal(err)
	}
	g := fg.Msg.Flamegraph
	busy := functionTotal(g, "vispyrBusyChecksum")
	share := float64(busy) / float64(g.Total)
	t.Logf("total %v ns, vispyrBusyChecksum %v ns (%.0f%%)", g.Total, busy, share*100)
	// 6 units of busy work out of 9: anything from a third up is plausible
	// on a shared 2-core machine; a broken merge shows 0 or the wrong function.
	if share < 0.3 || share > 1 {
		t.Errorf("vispyrBusyChecksum share %.2f, want a plausible majority", share)
	}
	// The Go profiler under-samples on throttled machines; 0.1 s of the ~0.9 s
	// burned still proves the samples arrived.
	if g.Total < int64(100*time.Millisecond) {
		t.Errorf("total CPU %v, want at least 0.1s of the ~0.9s burned", time.Duration(g.Total))
	}

	span, err := client.SelectMergeSpanProfile(ctx, connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
		ProfileTypeID: cpuType, LabelSelector: `{service_name="vispyr.gotest"}`, SpanSelector: []string{"00000000000000ab"},
		Start: start.UnixMilli(), End: end.UnixMilli(),
	}))
	if err != nil {
		t.Fatal(err)
	}
	sg := span.Msg.Flamegraph
	if functionTotal(sg, "vispyrSpanWork") == 0 || functionTotal(sg, "vispyrBusyChecksum") != 0 {
		t.Errorf("span profile should hold vispyrSpanWork only: names %v", sg.Names)
	}

	series, err := client.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
		ProfileTypeID: cpuType, LabelSelector: `{service_name="vispyr.gotest"}`, Start: start.UnixMilli(), End: end.UnixMilli() + 1000,
		Step: 15, GroupBy: []string{"span_name"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, s := range series.Msg.Series {
		for _, p := range s.Points {
			sum += p.Value
		}
	}
	if int64(sum) != g.Total {
		t.Errorf("SelectSeries sums to %v, flame graph total is %v", sum, g.Total)
	}
	if len(series.Msg.Series) != 2 {
		t.Errorf("group by span_name: got %d series, want 2 (with and without span_name)", len(series.Msg.Series))
	}
}

// functionTotal sums the totals of nodes named fn (outermost occurrences only).
func functionTotal(g *querierv1.FlameGraph, fn string) int64 {
	var sum int64
	for _, l := range g.Levels {
		for i := 0; i+3 < len(l.Values); i += 4 {
			if strings.HasSuffix(g.Names[l.Values[i+3]], "."+fn) {
				sum += l.Values[i+1]
			}
		}
	}
	return sum
}
