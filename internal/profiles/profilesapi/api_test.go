package profilesapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/settings/v1/settingsv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/profiles"
	"github.com/vispyr/vispyr/internal/profiles/profilesapi"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope/convert"
)

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// fixture stores folded CPU profiles: service "shop" at t0 (pod a) and t0+20s (pod
// b), service "auth" at t0, and "shop" for tenant "acme".
func fixture(t *testing.T) (*httptest.Server, querierv1connect.QuerierServiceClient) {
	t.Helper()
	store, err := profiles.Open(profiles.Config{}, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	add := func(tenant, app string, pod string, at time.Time, folded string) {
		b, err := convert.FromFolded([]byte(folded), convert.FoldedInput{AppName: app, Labels: map[string]string{"pod": pod}, SampleRate: 100, StartNanos: at.UnixNano()})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Append(pipeline.WithTenant(context.Background(), tenant), b); err != nil {
			t.Fatal(err)
		}
	}
	add(pipeline.DefaultTenant, "shop", "a", t0, "main;checkout;price 3\nmain;checkout 1\nmain;idle 2\n")
	add(pipeline.DefaultTenant, "shop", "b", t0.Add(20*time.Second), "main;checkout;price 1\nmain;render 3\n")
	add(pipeline.DefaultTenant, "auth", "a", t0, "main;login 5\n")
	add("acme", "shop", "z", t0, "secret 9\n")
	srv := httptest.NewServer(profilesapi.NewHandler(store, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return srv, querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
}

const ms = int64(10_000_000) // one sample at 100 Hz

func rangeMs() (int64, int64) {
	return t0.Add(-time.Minute).UnixMilli(), t0.Add(time.Minute).UnixMilli()
}

func TestLabelsAndTypes(t *testing.T) {
	_, c := fixture(t)
	ctx := context.Background()
	start, end := rangeMs()

	pt, err := c.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start, End: end}))
	if err != nil {
		t.Fatal(err)
	}
	if len(pt.Msg.ProfileTypes) != 1 || pt.Msg.ProfileTypes[0].ID != cpuType || pt.Msg.ProfileTypes[0].SampleType != "cpu" {
		t.Errorf("profile types = %v", pt.Msg.ProfileTypes)
	}
	// Grafana's health check asks for 1000..4000 ms: it must succeed, empty.
	if hc, err := c.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: 1000, End: 4000})); err != nil || len(hc.Msg.ProfileTypes) != 0 {
		t.Errorf("health check: %v %v", hc, err)
	}

	names, err := c.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{Start: start, End: end}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"__name__", "__profile_type__", "pod", "service_name"} {
		if !slices.Contains(names.Msg.Names, want) {
			t.Errorf("label names %v lack %s", names.Msg.Names, want)
		}
	}
	if slices.Contains(names.Msg.Names, "__tenant__") {
		t.Errorf("hidden tenant label leaked: %v", names.Msg.Names)
	}

	vals, err := c.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{
		Name: "pod", Matchers: []string{`{__profile_type__="` + cpuType + `",service_name="shop"}`}, Start: start, End: end,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(vals.Msg.Names, ","); got != "a,b" {
		t.Errorf("pod values for shop = %q, want a,b (not acme's z)", got)
	}

	series, err := c.Series(ctx, connect.NewRequest(&querierv1.SeriesRequest{
		Matchers: []string{`{service_name="shop"}`, `{service_name="auth"}`}, LabelNames: []string{"service_name", "pod"}, Start: start, End: end,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(series.Msg.LabelsSet) != 3 {
		t.Errorf("series = %v, want shop/a shop/b auth/a", series.Msg.LabelsSet)
	}
}

func TestFlameGraphQueries(t *testing.T) {
	_, c := fixture(t)
	ctx := context.Background()
	start, end := rangeMs()
	merge := func(sel string, sts *typesv1.StackTraceSelector) *querierv1.FlameGraph {
		t.Helper()
		r, err := c.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: cpuType, LabelSelector: sel, Start: start, End: end, StackTraceSelector: sts,
		}))
		if err != nil {
			t.Fatal(err)
		}
		return r.Msg.Flamegraph
	}
	if g := merge(`{service_name="shop"}`, nil); g.Total != 10*ms || g.Names[0] != "total" {
		t.Errorf("shop total %d, want 10 samples", g.Total)
	}
	if g := merge(`{service_name="shop",pod="b"}`, nil); g.Total != 4*ms {
		t.Errorf("shop pod b total %d, want 4 samples", g.Total)
	}
	if g := merge(`{service_name=~"sh.*|auth"}`, nil); g.Total != 15*ms {
		t.Errorf("regex selector total %d, want 15 samples", g.Total)
	}
	site := &typesv1.StackTraceSelector{CallSite: []*typesv1.Location{{Name: "main"}, {Name: "checkout"}}}
	if g := merge(`{service_name="shop"}`, site); g.Total != 5*ms {
		t.Errorf("call site main/checkout total %d, want 5 samples", g.Total)
	}

	p, err := c.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{
		ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`, Start: start, End: end,
	}))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := proto.Marshal(p.Msg)
	pp, err := profile.ParseData(raw)
	if err != nil {
		t.Fatalf("SelectMergeProfile is not valid pprof: %v", err)
	}
	var sum int64
	for _, s := range pp.Sample {
		sum += s.Value[0]
		if s.Location[len(s.Location)-1].Line[0].Function.Name != "main" {
			t.Errorf("pprof root frame is not main: leaf-first order broken")
		}
	}
	if sum != 10*ms || pp.SampleType[0].Type != "cpu" {
		t.Errorf("pprof sum %d type %v", sum, pp.SampleType[0])
	}

	d, err := c.Diff(ctx, connect.NewRequest(&querierv1.DiffRequest{
		Left:  &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: `{pod="a",service_name="shop"}`, Start: start, End: end},
		Right: &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: `{pod="b",service_name="shop"}`, Start: start, End: end},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if d.Msg.Flamegraph.LeftTicks != 6*ms || d.Msg.Flamegraph.RightTicks != 4*ms {
		t.Errorf("diff ticks %d/%d", d.Msg.Flamegraph.LeftTicks, d.Msg.Flamegraph.RightTicks)
	}
}

func TestSelectSeries(t *testing.T) {
	_, c := fixture(t)
	start := t0.Add(-time.Second).UnixMilli() // profiles at start+1s and start+21s
	f := func(agg *typesv1.TimeSeriesAggregationType, step float64, groupBy []string, want map[string][]float64) {
		t.Helper()
		r, err := c.SelectSeries(context.Background(), connect.NewRequest(&querierv1.SelectSeriesRequest{
			ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`, Start: start, End: start + 60_000,
			Step: step, GroupBy: groupBy, Aggregation: agg,
		}))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]float64{}
		for _, s := range r.Msg.Series {
			key := ""
			for _, l := range s.Labels {
				key += l.Value
			}
			for _, p := range s.Points {
				if (p.Timestamp-start)%int64(step*1000) != 0 {
					t.Errorf("timestamp %d not aligned to %vs steps from start", p.Timestamp, step)
				}
				got[key] = append(got[key], p.Value/float64(ms))
			}
		}
		if len(got) != len(want) {
			t.Fatalf("series %v, want %v", got, want)
		}
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Errorf("series %q = %v, want %v", k, got[k], v)
			}
		}
	}
	f(nil, 10, []string{"pod"}, map[string][]float64{"a": {6}, "b": {4}})
	f(nil, 10, nil, map[string][]float64{"": {6, 4}})
	f(nil, 60, nil, map[string][]float64{"": {10}})
	// Points close their step: a profile at start+1s belongs to start+10s.
	r, err := c.SelectSeries(context.Background(), connect.NewRequest(&querierv1.SelectSeriesRequest{
		ProfileTypeID: cpuType, LabelSelector: `{service_name="shop"}`, Start: start, End: start + 60_000, Step: 10,
	}))
	if err != nil || len(r.Msg.Series) != 1 || r.Msg.Series[0].Points[0].Timestamp != start+10_000 || r.Msg.Series[0].Points[1].Timestamp != start+30_000 {
		t.Errorf("step timestamps: %v %v, want start+10s and start+30s", r, err)
	}
	avg := typesv1.TimeSeriesAggregationType_TIME_SERIES_AGGREGATION_TYPE_AVERAGE
	f(&avg, 60, nil, map[string][]float64{"": {5}})
}

// TestJSONAndErrors speaks connect's JSON form as the Explore Profiles app does, and
// checks errors come back as connect JSON with a 4xx.
func TestJSONAndErrors(t *testing.T) {
	srv, _ := fixture(t)
	start, end := rangeMs()
	call := func(path, body string, hdr map[string]string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connect-Protocol-Version", "1")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: not JSON: %s", path, raw)
		}
		return resp.StatusCode, out
	}
	body := func(sel string) string {
		b, _ := json.Marshal(map[string]any{"profileTypeID": cpuType, "labelSelector": sel, "start": start, "end": end})
		return string(b)
	}
	code, out := call("/querier.v1.QuerierService/SelectMergeStacktraces", body(`{service_name="auth"}`), nil)
	fg, _ := out["flamegraph"].(map[string]any)
	if code != 200 || fg == nil || fg["total"] != "50000000" {
		t.Errorf("JSON flame graph: %d %v", code, out)
	}
	// The same through the /pyroscope prefix and for another tenant.
	code, out = call("/pyroscope/querier.v1.QuerierService/SelectMergeStacktraces", body(`{service_name="shop"}`), map[string]string{"X-Scope-OrgID": "acme"})
	fg, _ = out["flamegraph"].(map[string]any)
	if code != 200 || fg == nil || fg["total"] != "90000000" {
		t.Errorf("tenant acme via /pyroscope: %d %v", code, out)
	}
	code, out = call("/querier.v1.QuerierService/SelectMergeStacktraces", body(`{service_name=`), nil)
	if code != 400 || out["code"] != "invalid_argument" || !strings.Contains(out["message"].(string), "selector") {
		t.Errorf("bad selector: %d %v", code, out)
	}
	code, out = call("/querier.v1.QuerierService/SelectMergeSpanProfile", body(`{}`), nil)
	if code != 400 || !strings.Contains(out["message"].(string), "span_selector") {
		t.Errorf("span profile without spans: %d %v", code, out)
	}
	code, out = call("/querier.v1.QuerierService/GetProfileStats", `{}`, nil)
	if code != 200 || out["dataIngested"] != true {
		t.Errorf("profile stats: %d %v", code, out)
	}

	sc := settingsv1connect.NewSettingsServiceClient(http.DefaultClient, srv.URL)
	if _, err := sc.Get(context.Background(), connect.NewRequest(&settingsv1.GetSettingsRequest{})); err != nil {
		t.Errorf("settings Get: %v", err)
	}
}
