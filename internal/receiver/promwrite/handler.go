// Package promwrite receives Prometheus remote write (v1 and v2) and hands the
// decoded requests to a pipeline.Samples (the metrics store, or a forwarder). It
// answers exactly as Prometheus's own receiver behind Vispyr's request guard does
// (same status codes, v2 headers and partial-write rules) but decodes without
// allocating per sample (internal/pipeline/remotewrite).
package promwrite

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/snappy"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// Options are the guards applied before anything is decoded.
type Options struct {
	// MaxRequestBytes caps the body, before and after snappy (413 above it).
	MaxRequestBytes int64
	// MaxSeriesPerRequest caps the time series of one request (400 above it).
	MaxSeriesPerRequest int
	// Inflight is the ingest memory budget shared with the other receivers (503
	// with Retry-After when spent, which Prometheus retries). Nil admits everything.
	Inflight *limits.Inflight
}

// stockMaxDecoded is the stock handler's own fixed cap on a body, before and
// after snappy, which applies on top of MaxRequestBytes.
const stockMaxDecoded = 32 << 20

type handler struct {
	sink   pipeline.Samples
	opts   Options
	logger *slog.Logger

	rejected *prometheus.CounterVec
	// states is a free list, so that a GC, which empties a sync.Pool, does
	// not make the next requests regrow the arenas of a 2k-series request.
	// It keeps 2 per core; more requests than that are in flight while each
	// waits for its queue's fsync (16 senders: 16), and their states go to
	// spare when the list is full, since regrowing them for every such
	// request cost about a quarter of the gateway's CPU in allocation and GC.
	states chan *state
	spare  sync.Pool
}

// NewHandler returns the remote-write handler for POST /api/v1/write, which hands
// every decoded request to sink.
func NewHandler(sink pipeline.Samples, opts Options, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	h := &handler{
		sink: sink, opts: opts, logger: logger,
		rejected: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_remote_write_rejected_requests_total",
			Help: "Remote-write requests refused before reaching storage, by reason.",
		}, []string{"reason"}),
	}
	h.states = make(chan *state, 2*runtime.GOMAXPROCS(0))
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Prometheus takes a missing Content-Type as v1. Vispyr does not: every
	// remote-write client sends one, and a request without it (or with
	// text/plain) is one a web page can send cross-origin without a preflight.
	// (Other methods get upstream's 405 below, once the body is checked.)
	if _, err := remoteapi.ParseProtoMsg(r.Header.Get("Content-Type")); err != nil && r.Method == http.MethodPost {
		h.reject(w, "content_type", http.StatusUnsupportedMediaType, err.Error())
		return
	}
	st := h.get()
	defer h.put(st)
	raw, cost, ok := h.guard(w, r, st)
	if !ok {
		return
	}
	defer h.opts.Inflight.Release(cost)
	v2, ok := stockChecks(w, r, len(st.body), len(raw))
	if !ok {
		return
	}
	var written remotewrite.Written
	err := st.req.Decode(raw, v2)
	if err != nil {
		h.logger.Error("decoding remote write request", "v2", v2, "err", err)
		err = pipeline.Invalid(err)
	} else {
		st.req.SetSnappy(st.body)
		ctx := pipeline.WithTenant(r.Context(), r.Header.Get("X-Scope-OrgID"))
		written, err = h.sink.ConsumeSamples(ctx, &st.req)
	}
	if v2 {
		hd := w.Header()
		hd.Set("X-Prometheus-Remote-Write-Samples-Written", itoa(written.Samples))
		hd.Set("X-Prometheus-Remote-Write-Histograms-Written", itoa(written.Histograms))
		hd.Set("X-Prometheus-Remote-Write-Exemplars-Written", itoa(written.Exemplars))
	}
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case pipeline.IsLimit(err):
		// A tenant limit (Mimir's 429), not an outage.
		limits.WriteOverloaded(w, err.Error())
	case pipeline.IsInvalid(err):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, pipeline.ErrOverloaded), pipeline.IsDiskFull(err):
		// Both pass: Prometheus retries a 503 after Retry-After.
		limits.WriteUnavailable(w, err.Error())
	default:
		h.logger.Error("storing remote write request", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// guard applies Vispyr's limits, in the order the guard in front of the stock
// handler did, so a request breaking several rules gets the same answer: body
// size, encoding, decoded size, bytes in flight, series count. It returns the
// decompressed body and the in-flight bytes to release.
func (h *handler) guard(w http.ResponseWriter, r *http.Request, st *state) (raw []byte, cost int64, ok bool) {
	// The body is charged to the in-flight budget as it arrives, so neither a
	// declared length nor thousands of slow senders make memory the budget
	// does not see.
	body, cost, err := st.readBody(r, h.opts.MaxRequestBytes, h.opts.Inflight)
	if err != nil {
		h.opts.Inflight.Release(cost)
		switch {
		case errors.Is(err, limits.ErrOverloaded):
			h.rejected.WithLabelValues("overloaded").Inc()
			limits.WriteUnavailable(w, err.Error())
		case errors.Is(err, limits.ErrTooLarge):
			h.reject(w, "too_large", http.StatusRequestEntityTooLarge, err.Error())
		default:
			h.reject(w, "read", http.StatusBadRequest, err.Error())
		}
		return nil, 0, false
	}
	fail := func() ([]byte, int64, bool) {
		h.opts.Inflight.Release(cost)
		return nil, 0, false
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		h.reject(w, "encoding", http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Encoding %q: remote write uses snappy", enc))
		return fail()
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		h.reject(w, "bad_snappy", http.StatusBadRequest, "decode snappy: "+err.Error())
		return fail()
	}
	if int64(n) > h.opts.MaxRequestBytes {
		h.reject(w, "too_large", http.StatusRequestEntityTooLarge,
			fmt.Sprintf("decompressed body of %d bytes is over the limit of %d", n, h.opts.MaxRequestBytes))
		return fail()
	}
	if !h.opts.Inflight.Acquire(int64(n)) {
		h.rejected.WithLabelValues("overloaded").Inc()
		limits.WriteUnavailable(w, limits.ErrOverloaded.Error())
		return fail()
	}
	cost += int64(n)
	raw, err = st.decompress(body, n)
	if err != nil {
		h.opts.Inflight.Release(cost)
		h.reject(w, "bad_snappy", http.StatusBadRequest, "decode snappy: "+err.Error())
		return nil, 0, false
	}
	v2 := strings.Contains(r.Header.Get("Content-Type"), string(remoteapi.WriteV2MessageType))
	if series, err := countSeries(raw, v2); err != nil {
		h.opts.Inflight.Release(cost)
		h.reject(w, "bad_protobuf", http.StatusBadRequest, err.Error())
		return nil, 0, false
	} else if series > h.opts.MaxSeriesPerRequest {
		h.opts.Inflight.Release(cost)
		h.reject(w, "too_many_series", http.StatusBadRequest,
			fmt.Sprintf("request has %d series, over the limit of %d", series, h.opts.MaxSeriesPerRequest))
		return nil, 0, false
	}
	return raw, cost, true
}

// stockChecks applies, in order, the checks of Prometheus's handler that the
// guard does not make stricter: exact encoding name, its own 32 MiB cap, the
// method and the content type, which says v1 or v2.
func stockChecks(w http.ResponseWriter, r *http.Request, bodyLen, decodedLen int) (v2, ok bool) {
	if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != string(remoteapi.SnappyBlockCompression) {
		http.Error(w, fmt.Sprintf("%v encoding (compression) is not accepted by this server; only %v is acceptable",
			enc, remoteapi.SnappyBlockCompression), http.StatusUnsupportedMediaType)
		return false, false
	}
	if bodyLen > stockMaxDecoded {
		http.Error(w, fmt.Sprintf("request body exceeds the %v bytes limit", stockMaxDecoded), http.StatusRequestEntityTooLarge)
		return false, false
	}
	if decodedLen > stockMaxDecoded {
		http.Error(w, fmt.Sprintf("decoded size exceeds the %v bytes limit", stockMaxDecoded), http.StatusBadRequest)
		return false, false
	}
	if r.Method != http.MethodPost {
		http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
		return false, false
	}
	msgType, err := remoteapi.ParseProtoMsg(r.Header.Get("Content-Type"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		return false, false
	}
	return msgType == remoteapi.WriteV2MessageType, true
}

func (h *handler) reject(w http.ResponseWriter, reason string, code int, msg string) {
	h.rejected.WithLabelValues(reason).Inc()
	http.Error(w, msg, code)
}

// state is what one request needs, pooled: the body, its decompressed form and
// the decoded request.
type state struct {
	body, raw []byte
	req       remotewrite.Request
}

// maxPooled keeps one huge request from pinning its buffers in the pool.
const maxPooled = 8 << 20

func (h *handler) get() *state {
	select {
	case st := <-h.states:
		return st
	default:
		if st, ok := h.spare.Get().(*state); ok {
			return st
		}
		return new(state)
	}
}

func (h *handler) put(st *state) {
	if cap(st.body) > maxPooled || cap(st.raw) > maxPooled {
		return
	}
	select {
	case h.states <- st:
	default:
		h.spare.Put(st)
	}
}

// readBody reads the body into the pooled buffer, charging it to budget as it
// arrives (limits.ReadRequest). The charged bytes are returned also on error.
func (st *state) readBody(r *http.Request, max int64, budget *limits.Inflight) ([]byte, int64, error) {
	buf, charged, err := limits.ReadRequest(r, max, budget, st.body)
	if buf != nil {
		st.body = buf
	}
	return buf, charged, err
}

// decompress decodes the snappy body into the pooled buffer.
func (st *state) decompress(body []byte, n int) ([]byte, error) {
	if cap(st.raw) < n {
		st.raw = make([]byte, n)
	}
	raw, err := snappy.Decode(st.raw[:cap(st.raw)], body)
	if err != nil {
		return nil, err
	}
	return raw, nil
}

// countSeries counts the top-level time series (field 1 of v1, field 5 of v2)
// by walking the outer fields only, exactly as the guard in front of the stock
// handler did.
func countSeries(raw []byte, v2 bool) (int, error) {
	field := protowire.Number(1)
	if v2 {
		field = 5
	}
	n := 0
	for len(raw) > 0 {
		num, typ, l := protowire.ConsumeTag(raw)
		if l < 0 {
			return 0, errors.New("decode protobuf: malformed field tag")
		}
		raw = raw[l:]
		l = protowire.ConsumeFieldValue(num, typ, raw)
		if l < 0 {
			return 0, fmt.Errorf("decode protobuf: malformed field %d", num)
		}
		if num == field && typ == protowire.BytesType {
			n++
		}
		raw = raw[l:]
	}
	return n, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
