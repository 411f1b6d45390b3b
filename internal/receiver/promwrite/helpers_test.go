package promwrite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/metrics"
)

const (
	ctV1 = "application/x-protobuf"
	ctV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
)

var discard = slog.New(slog.DiscardHandler)

func openDB(tb testing.TB, oooWindow int64) *tsdb.DB {
	tb.Helper()
	opts := tsdb.DefaultOptions()
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 10000
	opts.OutOfOrderTimeWindow = oooWindow
	db, err := tsdb.Open(tb.TempDir(), discard, nil, opts, nil)
	if err != nil {
		tb.Fatalf("open tsdb: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// stockGuard is the guard Vispyr put in front of Prometheus's handler
// (internal/metrics/remotewrite.go before this package), reproduced here as
// the reference our handler must answer like.
type stockGuard struct {
	next http.Handler
	opts Options
}

func (g stockGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := limits.ReadBody(r, g.opts.MaxRequestBytes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		http.Error(w, "encoding", http.StatusUnsupportedMediaType)
		return
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if int64(n) > g.opts.MaxRequestBytes {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	cost := int64(len(body) + n)
	if !g.opts.Inflight.Acquire(cost) {
		limits.WriteUnavailable(w, "overloaded")
		return
	}
	defer g.opts.Inflight.Release(cost)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	field := protowire.Number(1)
	if strings.Contains(r.Header.Get("Content-Type"), "io.prometheus.write.v2.Request") {
		field = 5
	}
	series := 0
	for b := raw; len(b) > 0; {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			http.Error(w, "bad tag", http.StatusBadRequest)
			return
		}
		b = b[l:]
		if l = protowire.ConsumeFieldValue(num, typ, b); l < 0 {
			http.Error(w, "bad field", http.StatusBadRequest)
			return
		}
		if num == field && typ == protowire.BytesType {
			series++
		}
		b = b[l:]
	}
	if series > g.opts.MaxSeriesPerRequest {
		http.Error(w, "too many series", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	g.next.ServeHTTP(w, r)
}

func newStock(db storage.AppendableV2, opts Options) http.Handler {
	h := remote.NewWriteHandler(discard, prometheus.NewRegistry(), db,
		remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType}, false, false)
	return stockGuard{next: h, opts: opts}
}

func defaultOpts() Options {
	return Options{MaxRequestBytes: 4 << 20, MaxSeriesPerRequest: 10000}
}

// pair is our handler and the stock one, each over its own fresh TSDB.
// With mineHead vispyr, ours is the metrics store with Vispyr's own head
// (mineDB its TSDB, mineData the whole store).
type pair struct {
	mine, stock     http.Handler
	mineDB, stockDB *tsdb.DB
	mineData        queryDB
}

// queryDB is what dump reads.
type queryDB interface {
	storage.Queryable
	storage.ExemplarQueryable
}

// mineHead is the metrics.head our side runs; TestParityWithOwnHead runs the
// parity tests again with vispyr.
var mineHead = config.HeadPrometheus

// newPair builds both sides; a positive inflight gives each side its own
// in-flight budget of that many bytes.
func newPair(t *testing.T, opts Options, oooWindow, inflight int64) *pair {
	t.Helper()
	p := &pair{stockDB: openDB(t, oooWindow)}
	mineOpts, stockOpts := opts, opts
	if inflight > 0 {
		mineOpts.Inflight = limits.NewInflight(inflight)
		stockOpts.Inflight = limits.NewInflight(inflight)
	}
	if mineHead == config.HeadVispyr {
		s := openStore(t, oooWindow)
		p.mineDB, p.mineData = s.DB(), s
		p.mine = NewHandler(s.RemoteWriteAppender(discard, prometheus.NewRegistry()), mineOpts, discard, prometheus.NewRegistry())
	} else {
		p.mineDB = openDB(t, oooWindow)
		p.mineData = p.mineDB
		p.mine = newHandler(p.mineDB, mineOpts, discard, prometheus.NewRegistry())
	}
	p.stock = newStock(p.stockDB, stockOpts)
	return p
}

// openStore opens the metrics store with Vispyr's own head, configured as
// openDB configures a TSDB.
func openStore(tb testing.TB, oooWindow int64) *metrics.Storage {
	tb.Helper()
	cfg := config.Default()
	cfg.Metrics.Head = config.HeadVispyr
	cfg.Metrics.MaxExemplars = 10000
	cfg.Metrics.OutOfOrderWindow = time.Duration(oooWindow) * time.Millisecond
	s, err := metrics.Open(cfg.Metrics, cfg.Limits, tb.TempDir(), discard, prometheus.NewRegistry())
	if err != nil {
		tb.Fatalf("open metrics store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

type reply struct {
	code    int
	headers string
}

func post(h http.Handler, body []byte, contentType, encoding string) reply {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var hs []string
	for _, k := range []string{"X-Prometheus-Remote-Write-Samples-Written", "X-Prometheus-Remote-Write-Histograms-Written",
		"X-Prometheus-Remote-Write-Exemplars-Written", "Retry-After"} {
		if v, ok := rec.Header()[k]; ok {
			hs = append(hs, k+"="+strings.Join(v, ","))
		}
	}
	return reply{code: rec.Code, headers: strings.Join(hs, " ")}
}

// send posts the same request to both handlers, checks they answer alike and
// returns the answer.
func (p *pair) send(t *testing.T, body []byte, contentType, encoding string) reply {
	t.Helper()
	mine := post(p.mine, body, contentType, encoding)
	stock := post(p.stock, body, contentType, encoding)
	if mine != stock {
		t.Fatalf("answers differ: vispyr %+v, stock %+v", mine, stock)
	}
	return mine
}

// dump renders everything stored in db: samples and exemplars of every series.
func dump(t *testing.T, db queryDB) string {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatalf("querier: %v", err)
	}
	defer q.Close()
	all := labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+")
	set := q.Select(context.Background(), true, nil, all)
	var sb strings.Builder
	for set.Next() {
		s := set.At()
		fmt.Fprintf(&sb, "%s:", s.Labels())
		it := s.Iterator(nil)
		for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
			switch typ {
			case chunkenc.ValFloat:
				ts, v := it.At()
				fmt.Fprintf(&sb, " %d=%v", ts, v)
			case chunkenc.ValHistogram:
				ts, h := it.AtHistogram(nil)
				fmt.Fprintf(&sb, " %d=%s", ts, h)
			case chunkenc.ValFloatHistogram:
				ts, h := it.AtFloatHistogram(nil)
				fmt.Fprintf(&sb, " %d=%s", ts, h)
			}
		}
		if err := it.Err(); err != nil {
			t.Fatalf("iterate: %v", err)
		}
		sb.WriteString("\n")
	}
	if err := set.Err(); err != nil {
		t.Fatalf("select: %v", err)
	}
	eq, err := db.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatalf("exemplar querier: %v", err)
	}
	res, err := eq.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{all})
	if err != nil {
		t.Fatalf("exemplars: %v", err)
	}
	var exs []string
	for _, r := range res {
		for _, e := range r.Exemplars {
			exs = append(exs, fmt.Sprintf("exemplar %s %s %v %d", r.SeriesLabels, e.Labels, e.Value, e.Ts))
		}
	}
	sort.Strings(exs)
	sb.WriteString(strings.Join(exs, "\n"))
	return sb.String()
}

// sameData checks both TSDBs hold the same data and returns it.
func (p *pair) sameData(t *testing.T) string {
	t.Helper()
	mine, stock := dump(t, p.mineData), dump(t, p.stockDB)
	if mine != stock {
		t.Fatalf("stored data differs:\nvispyr:\n%s\nstock:\n%s", mine, stock)
	}
	return mine
}

func encode(tb testing.TB, m interface{ Marshal() ([]byte, error) }) []byte {
	tb.Helper()
	raw, err := m.Marshal()
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return snappy.Encode(nil, raw)
}

// newHandler is the receiver in front of the metrics store's append path, as
// the server wires it.
func newHandler(db storage.AppendableV2, opts Options, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	return NewHandler(metrics.NewRemoteWriteAppender(db, logger, reg), opts, logger, reg)
}
