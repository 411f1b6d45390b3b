package pyroscope_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/vispyr/vispyr/internal/receiver/pyroscope"
)

// bigPprof is a CPU pprof of two samples whose values are each valid but
// whose sum passes int64.
func bigPprof(t *testing.T) []byte {
	t.Helper()
	fn := []*profile.Function{{ID: 1, Name: "main.main"}, {ID: 2, Name: "main.hot"}}
	loc := []*profile.Location{{ID: 1, Line: []profile.Line{{Function: fn[0]}}}, {ID: 2, Line: []profile.Line{{Function: fn[1]}}}}
	big := int64(math.MaxInt64/2 + 1)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10_000_000,
		TimeNanos: time.Now().UnixNano(), Function: fn, Location: loc,
		Sample: []*profile.Sample{
			{Location: []*profile.Location{loc[0]}, Value: []int64{big}},
			{Location: []*profile.Location{loc[1], loc[0]}, Value: []int64{big}},
		},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Absurd values are refused with the status a client acts on, or clamped to
// something true, and never stored as nonsense beside good data.
func TestAbsurdValues(t *testing.T) {
	store := openStore(t, t.TempDir())
	defer store.Close()
	srv := server(t, store)
	now := time.Now()
	const cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

	// Good data first, to check it is undamaged by what follows.
	if code, msg := post(t, srv, "name=good.cpu&sampleRate=100", "application/octet-stream", []byte("main;work 3\n")); code != 200 {
		t.Fatalf("good profile: %d %s", code, msg)
	}

	// pprof totals past int64, on /ingest and on push: 400 / invalid_argument naming the overflow.
	code, msg := post(t, srv, "format=pprof&name=big", "application/octet-stream", bigPprof(t))
	if code != http.StatusBadRequest || !strings.Contains(msg, "overflows the profile's total") {
		t.Errorf("/ingest pprof overflowing int64: %d %q, want 400 naming the overflow", code, msg)
	}
	push := pushv1connect.NewPusherServiceClient(http.DefaultClient, srv.URL)
	req := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "big"}},
		Samples: []*pushv1.RawSample{{RawProfile: bigPprof(t)}},
	}}}
	_, err := push.Push(context.Background(), connect.NewRequest(req))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.Contains(ce.Message(), "overflows") {
		t.Errorf("push of a pprof overflowing int64: %v, want invalid_argument naming the overflow", err)
	}

	// sampleRate above 1 GHz: Pyroscope's period (1e9/rate) would be 0 and the
	// samples stored as zero; clamped to 1 ns they keep their counts.
	if code, msg := post(t, srv, "name=fast.cpu&sampleRate=2000000000", "application/octet-stream", []byte("main;spin 7\n")); code != 200 {
		t.Fatalf("sampleRate 2e9: %d %s", code, msg)
	}
	if g := flame(t, srv, cpu, `{service_name="fast"}`, now.Add(-time.Minute), now.Add(time.Minute)); g.Total != 7 {
		t.Errorf("profile of 7 samples sent with sampleRate 2e9 has flame-graph total %d, want 7 (1 ns each)", g.Total)
	}

	// A push body over the limit: 413, not the 429 connect gives
	// ResourceExhausted (which clients retry for ever).
	hr, err := http.Post(srv.URL+"/push.v1.PusherService/Push", "application/proto", io.LimitReader(zeros{}, pyroscope.MaxBodyBytes+1))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	if hr.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"code":"invalid_argument"`) {
		t.Errorf("oversized push: %d %s, want 413 with a connect invalid_argument error", hr.StatusCode, body)
	}

	// Query times far past 2262 or before 1678 overflow when made nanoseconds:
	// they are clamped, so the range still covers the data.
	q := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
	for _, r := range [][2]int64{{-math.MaxInt64, math.MaxInt64}, {0, math.MaxInt64}, {now.Add(-time.Hour).UnixMilli(), math.MaxInt64 / 1000}} {
		resp, err := q.SelectMergeStacktraces(context.Background(), connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: cpu, LabelSelector: `{service_name="good"}`, Start: r[0], End: r[1],
		}))
		if err != nil {
			t.Errorf("range %v: %v", r, err)
			continue
		}
		if resp.Msg.Flamegraph.Total != 3*10_000_000 {
			t.Errorf("range %v: total %d, want the good profile's 30ms", r, resp.Msg.Flamegraph.Total)
		}
	}
	sr, err := q.SelectSeries(context.Background(), connect.NewRequest(&querierv1.SelectSeriesRequest{
		ProfileTypeID: cpu, LabelSelector: `{service_name="good"}`, Start: -math.MaxInt64, End: math.MaxInt64, Step: 1e300,
	}))
	if err != nil || len(sr.Msg.Series) != 1 || len(sr.Msg.Series[0].Points) != 1 || sr.Msg.Series[0].Points[0].Value != 3*10_000_000 {
		t.Errorf("series over all time with a huge step: %v %v, want one point of 30ms", sr, err)
	}

	// Nothing of the refused profiles was stored; the good one is whole.
	if g := flame(t, srv, cpu, `{service_name="big"}`, now.Add(-time.Minute), now.Add(time.Minute)); g.Total != 0 {
		t.Errorf("refused profile stored: total %d", g.Total)
	}
	if g := flame(t, srv, cpu, `{service_name="good"}`, now.Add(-time.Minute), now.Add(time.Minute)); g.Total != 3*10_000_000 {
		t.Errorf("good profile total %d, want 30ms", g.Total)
	}
}
