package forward

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// rwDest is a remote-write destination that decodes with golang/snappy, the
// decoder of Prometheus 2.42 and VictoriaMetrics 1.79, and keeps each
// series' timestamps in the order they arrived.
type rwDest struct {
	v2       bool
	refuse   atomic.Bool // answer 503
	mu       sync.Mutex
	ts       map[string][]int64
	biggest  int // samples in the largest request
	problems []string
}

func (d *rwDest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.refuse.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		d.problem("snappy: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got map[string][]int64
	if d.v2 {
		got, err = decodeV2(raw)
	} else {
		got, err = decodeV1(raw)
	}
	if err != nil {
		d.problem("protobuf: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for s, ts := range got {
		d.ts[s] = append(d.ts[s], ts...)
		n += len(ts)
	}
	d.biggest = max(d.biggest, n)
	w.WriteHeader(http.StatusNoContent)
}

func (d *rwDest) problem(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
}

func decodeV1(raw []byte) (map[string][]int64, error) {
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, err
	}
	out := map[string][]int64{}
	for _, ts := range req.Timeseries {
		k := labelsString(ts.Labels)
		for _, s := range ts.Samples {
			out[k] = append(out[k], s.Timestamp)
		}
	}
	return out, nil
}

func decodeV2(raw []byte) (map[string][]int64, error) {
	var req writev2.Request
	if err := req.Unmarshal(raw); err != nil {
		return nil, err
	}
	out := map[string][]int64{}
	var sb labels.ScratchBuilder
	for _, ts := range req.Timeseries {
		ls, err := ts.ToLabels(&sb, req.Symbols)
		if err != nil {
			return nil, err
		}
		k := ls.String()
		for _, s := range ts.Samples {
			out[k] = append(out[k], s.Timestamp)
		}
	}
	return out, nil
}

func labelsString(pl []prompb.Label) string {
	var sb labels.ScratchBuilder
	for _, l := range pl {
		sb.Add(l.Name, l.Value)
	}
	sb.Sort()
	return sb.Labels().String()
}

// check fails unless every series holds rounds samples, in time order. A
// sample may come twice, right after itself: a send that timed out is sent
// again, though the destination may have taken it (it merges such copies).
func (d *rwDest) check(t *testing.T, series, rounds int) {
	t.Helper()
	eventually(t, 20*time.Second, func() (bool, string) {
		d.mu.Lock()
		defer d.mu.Unlock()
		distinct := 0
		for _, ts := range d.ts {
			distinct += len(slices.Compact(slices.Clone(ts)))
		}
		return distinct >= series*rounds, fmt.Sprintf("destination holds %d distinct samples, want %d", distinct, series*rounds)
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.problems) > 0 {
		t.Fatalf("destination refused requests: %v", d.problems)
	}
	if len(d.ts) != series {
		t.Fatalf("destination holds %d series, want %d", len(d.ts), series)
	}
	for s, ts := range d.ts {
		if !slices.IsSorted(ts) || len(slices.Compact(slices.Clone(ts))) != rounds {
			t.Fatalf("series %s arrived as %v, want %d timestamps in order", s, ts, rounds)
		}
	}
}

// rwEnv is a forwarder with one metrics destination.
type rwEnv struct {
	fwd  *Forwarder
	stop func()
}

func startRW(t *testing.T, url, protocol, dir string, q QueueConfig) *rwEnv {
	t.Helper()
	fwd, _, stop := runForwarder(t, Config{Metrics: []Destination{{Name: "dest", URL: url, Protocol: protocol, Queue: q}}}, dir)
	e := &rwEnv{fwd: fwd, stop: stop}
	t.Cleanup(e.stop)
	return e
}

// sendRounds sends rounds [from, to) of series series, each round one
// request in turn by the receiver's hot path (grouped records), by an
// appender (the path of new series, the generator and OTLP) and by the hot
// path with metadata (queued as the client compressed it).
func (e *rwEnv) sendRounds(t *testing.T, series, from, to int) {
	t.Helper()
	ctx := context.Background()
	for r := from; r < to; r++ {
		ts := int64(r) * 1000
		switch r % 3 {
		case 0, 2:
			wr := prompb.WriteRequest{}
			for s := range series {
				wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
					Labels:  []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "s", Value: fmt.Sprint(s)}},
					Samples: []prompb.Sample{{Timestamp: ts, Value: float64(r)}},
				})
			}
			if r%3 == 2 {
				wr.Metadata = []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "m", Help: "h"}}
			}
			raw, req := decodedRequest(t, &wr)
			req.SetSnappy(s2.EncodeSnappy(nil, raw))
			if err := e.fwd.Metrics.AppendRawV1(ctx, req); err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		case 1:
			app := e.fwd.Metrics.Appender(ctx)
			for s := range series {
				if _, err := app.Append(0, labels.FromStrings("__name__", "m", "s", fmt.Sprint(s)), ts, float64(r)); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		}
	}
}

func rwQueue(shards int) QueueConfig {
	q := fastQueue()
	q.Shards, q.MaxBatchItems = shards, 50
	return q
}

// Every sample arrives once and each series' samples in order, whichever
// path queued them, for both protocols; no request is much larger than
// max_batch_items.
func TestRemoteWriteKeepsSeriesOrder(t *testing.T) {
	for _, protocol := range []string{"1.0", "2.0"} {
		t.Run(protocol, func(t *testing.T) {
			d := &rwDest{v2: protocol == "2.0", ts: map[string][]int64{}}
			srv := httptest.NewServer(d)
			defer srv.Close()
			e := startRW(t, srv.URL, protocol, t.TempDir(), rwQueue(3))
			e.sendRounds(t, 120, 0, 30)
			d.check(t, 120, 30)
			if d.biggest >= 2*50 {
				t.Errorf("a request held %d samples; max_batch_items is 50", d.biggest)
			}
		})
	}
}

// A backlog queued for 3 shards is sent in order by 2 after a restart (the
// shard count no longer divides the group count: records are regrouped).
func TestRemoteWriteBacklogAcrossShardChange(t *testing.T) {
	// The first run sends to a destination that is down (a second server,
	// so that no request it gave up on can reach the one that keeps data).
	down := &rwDest{ts: map[string][]int64{}}
	down.refuse.Store(true)
	downSrv := httptest.NewServer(down)
	defer downSrv.Close()
	d := &rwDest{ts: map[string][]int64{}}
	srv := httptest.NewServer(d)
	defer srv.Close()
	dir := t.TempDir()
	first := startRW(t, downSrv.URL, "1.0", dir, rwQueue(3))
	first.sendRounds(t, 60, 0, 12)
	first.stop()
	second := startRW(t, srv.URL, "1.0", dir, rwQueue(2))
	second.sendRounds(t, 60, 12, 24)
	d.check(t, 60, 24)
}

// Joined blocks decode, with golang/snappy, to the joined inputs.
func TestJoinBlocks(t *testing.T) {
	var parts [][]byte
	var blocks [][]byte
	for i, n := range []int{0, 1, 17, 1000, 70000} {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(j % (7 + i)) // repeats: copies, some far back
		}
		parts = append(parts, p)
		blocks = append(blocks, s2.EncodeSnappy(nil, p))
	}
	joined, err := joinBlocks(blocks)
	if err != nil {
		t.Fatal(err)
	}
	got, err := snappy.Decode(nil, joined)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Concat(parts...); string(got) != string(want) {
		t.Fatalf("joined blocks decode to %d bytes, want the %d joined", len(got), len(want))
	}
	// The most compressible input still passes decodeBlock's size check.
	zeros := make([]byte, 1<<20)
	if got, err := decodeBlock(nil, s2.EncodeSnappy(nil, zeros)); err != nil || len(got) != len(zeros) {
		t.Fatalf("a block of %d zero bytes decodes to %d bytes: %v", len(zeros), len(got), err)
	}
}

// A series goes to the same shard whether its record is grouped or not, and
// whether the shard count divides the group count or not: its samples can
// never overtake each other on two shards.
func TestGroupedAndPlainRecordsShardAlike(t *testing.T) {
	var wr prompb.WriteRequest
	for s := range 200 {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "s", Value: fmt.Sprint(s)}},
			Samples: []prompb.Sample{{Timestamp: int64(s), Value: 1}},
		})
	}
	raw, req := decodedRequest(t, &wr)
	grouped, ok := appendGrouped(nil, req, 6, 30)
	if !ok {
		t.Fatal("a request of contiguous labels was not grouped")
	}
	plain := s2.EncodeSnappy(nil, raw)
	for _, shards := range []int{1, 2, 3, 4, 6} {
		c := &rwCodec{shards: shards, maxItems: 30}
		shardOf := func(body []byte) map[string]uint64 {
			out := map[string]uint64{}
			err := c.split(body, func(key uint64, block []byte, items int, _ int64) {
				got, err := snappy.Decode(nil, block)
				if err != nil {
					t.Fatal(err)
				}
				series, err := decodeV1(got)
				if err != nil {
					t.Fatal(err)
				}
				if len(series) != items {
					t.Errorf("block of %d series counts %d items", len(series), items)
				}
				for s := range series {
					if _, dup := out[s]; dup {
						t.Errorf("series %s split twice", s)
					}
					out[s] = key % uint64(shards)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		g, p := shardOf(grouped), shardOf(plain)
		if len(g) != 200 || len(p) != 200 {
			t.Fatalf("%d shards: %d series from the grouped record, %d from the plain one, want 200", shards, len(g), len(p))
		}
		for s, shard := range p {
			if g[s] != shard {
				t.Fatalf("%d shards: series %s on shard %d from a grouped record, %d from a plain one", shards, s, g[s], shard)
			}
		}
	}
}

// FuzzSplitRecord: a damaged queue record (the WAL's checksum passed, so
// this takes a bug) is refused or split, never a panic.
func FuzzSplitRecord(f *testing.F) {
	wr := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}},
		Samples: []prompb.Sample{{Timestamp: 1, Value: 1}},
	}}}
	raw, req := decodedRequest(f, &wr)
	grouped, _ := appendGrouped(nil, req, 4, 10)
	f.Add(grouped)
	f.Add(s2.EncodeSnappy(nil, raw))
	f.Add(append(slices.Clone(groupedMagic), 3, 7))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, c := range []*rwCodec{{shards: 2, maxItems: 5}, {shards: 3, maxItems: 5, v2: true, families: map[string]prompb.MetricMetadata{}}} {
			_ = c.split(body, func(uint64, []byte, int, int64) {})
		}
	})
}

// decodedRequest marshals wr and decodes it as the receiver does.
func decodedRequest(t testing.TB, wr *prompb.WriteRequest) ([]byte, *remotewrite.Request) {
	t.Helper()
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req := &remotewrite.Request{}
	if err := req.Decode(raw, false); err != nil {
		t.Fatal(err)
	}
	return raw, req
}

// Appender transactions reuse their series buffers: each commit sends
// exactly its own samples, whatever an earlier (larger, rolled back, or
// with exemplars) transaction held.
func TestAppenderTransactionsDoNotMix(t *testing.T) {
	d := &rwDest{ts: map[string][]int64{}}
	srv := httptest.NewServer(d)
	defer srv.Close()
	e := startRW(t, srv.URL, "1.0", t.TempDir(), rwQueue(2))
	ctx := context.Background()
	want := map[string][]int64{}
	txn := func(name string, series int, stamps []int64, commit bool) {
		t.Helper()
		app := e.fwd.Metrics.AppenderV2(ctx)
		for s := range series {
			ls := labels.FromStrings("__name__", name, "s", fmt.Sprint(s))
			for _, ts := range stamps {
				opts := storage.AppendV2Options{}
				if s%5 == 0 {
					opts.Exemplars = []exemplar.Exemplar{{Labels: labels.FromStrings("trace_id", "t"), Value: 1, Ts: ts, HasTs: true}}
				}
				if _, err := app.Append(0, ls, 0, ts, 1, nil, nil, opts); err != nil {
					t.Fatal(err)
				}
			}
			if commit {
				want[ls.String()] = append(want[ls.String()], stamps...)
			}
		}
		if !commit {
			if err := app.Rollback(); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	txn("m", 50, []int64{1000, 2000}, true)
	txn("n", 10, []int64{3000}, true)
	txn("r", 30, []int64{4000, 5000, 6000}, false)
	txn("m", 5, []int64{7000}, true)
	total := 50*2 + 10 + 5
	eventually(t, 20*time.Second, func() (bool, string) {
		d.mu.Lock()
		defer d.mu.Unlock()
		n := 0
		for _, ts := range d.ts {
			n += len(ts)
		}
		return n >= total, fmt.Sprintf("destination holds %d samples, want %d", n, total)
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.problems) > 0 {
		t.Fatalf("destination refused requests: %v", d.problems)
	}
	if !maps.EqualFunc(d.ts, want, slices.Equal) {
		t.Fatalf("destination holds %v, want %v", d.ts, want)
	}
}
