package pyroscope_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	otelpyroscope "github.com/grafana/otel-profiling-go"
	pyroscopego "github.com/grafana/pyroscope-go"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

//go:noinline
func vispyrTracedWork(units int) uint64 { return vispyrSpanWork(units) }

// TestTraceToProfile follows Grafana's "Related profile" link: otel-profiling-go tags
// the root span with pyroscope.profile.id and the goroutine with span_id;
// SelectMergeSpanProfile with that ID must return only that span's work.
func TestTraceToProfile(t *testing.T) {
	store := openStore(t, t.TempDir())
	defer store.Close()
	srv := server(t, store)

	rec := tracetest.NewSpanRecorder()
	tp := otelpyroscope.NewTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	start := time.Now()
	prof, err := pyroscopego.Start(pyroscopego.Config{
		ApplicationName: "traced", ServerAddress: srv.URL, UploadRate: time.Hour,
		ProfileTypes: []pyroscopego.ProfileType{pyroscopego.ProfileCPU},
	})
	if err != nil {
		t.Fatal(err)
	}
	sink += vispyrBusyChecksum(2) // outside any span
	ctx, span := tp.Tracer("test").Start(context.Background(), "checkout")
	_ = ctx
	sink += vispyrTracedWork(4)
	span.End()
	prof.Flush(true)
	prof.Stop()

	var profileID string
	for _, s := range rec.Ended() {
		for _, a := range s.Attributes() {
			if a.Key == "pyroscope.profile.id" {
				profileID = a.Value.AsString()
			}
		}
	}
	if profileID == "" {
		t.Fatal("root span has no pyroscope.profile.id attribute")
	}
	client := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
	resp, err := client.SelectMergeSpanProfile(context.Background(), connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
		ProfileTypeID: cpuType, LabelSelector: `{service_name="traced"}`, SpanSelector: []string{profileID},
		Start: start.UnixMilli(), End: time.Now().UnixMilli(),
	}))
	if err != nil {
		t.Fatal(err)
	}
	g := resp.Msg.Flamegraph
	traced, busy := functionTotal(g, "vispyrTracedWork"), functionTotal(g, "vispyrBusyChecksum")
	t.Logf("span %s: total %d, traced %d, outside %d", profileID, g.Total, traced, busy)
	if traced == 0 || busy != 0 {
		t.Errorf("span profile must hold the span's work only: names %v", g.Names)
	}
}
