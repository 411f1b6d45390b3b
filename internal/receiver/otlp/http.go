package otlp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// HTTP serves OTLP/HTTP: POST /v1/traces and /v1/metrics.
type HTTP struct {
	traces   pipeline.Traces
	metrics  pipeline.Metrics
	logs     pipeline.Logs
	maxBytes int64
	inflight *limits.Inflight
	logger   *slog.Logger
	tel      *telemetry
}

// NewHTTP returns the OTLP/HTTP receiver. A nil consumer makes its path answer 404.
func NewHTTP(traces pipeline.Traces, metrics pipeline.Metrics, maxBytes int64, inflight *limits.Inflight, logger *slog.Logger, opts ...Option) *HTTP {
	return &HTTP{traces: traces, metrics: metrics, logs: logsOption(opts), maxBytes: maxBytes, inflight: inflight, logger: logger, tel: newTelemetry(opts)}
}

// Handler routes the standard OTLP/HTTP paths.
func (h *HTTP) Handler() http.Handler {
	mux := http.NewServeMux()
	if h.traces != nil {
		mux.HandleFunc("POST /v1/traces", h.serveTraces)
	}
	if h.metrics != nil {
		mux.Handle("POST /v1/metrics", h.MetricsHandler())
	}
	if h.logs != nil {
		mux.HandleFunc("POST /v1/logs", h.serveLogs)
	}
	return mux
}

// MetricsHandler serves one OTLP metrics export, whatever path it is mounted on
// (Prometheus also takes them on /api/v1/otlp/v1/metrics).
func (h *HTTP) MetricsHandler() http.Handler { return http.HandlerFunc(h.serveMetrics) }

type encoding int

const (
	encProto encoding = iota
	encJSON
)

func (h *HTTP) serveTraces(w http.ResponseWriter, r *http.Request) {
	enc, body, cost, ok := h.readRequest(w, r, "traces")
	if !ok {
		return
	}
	defer h.inflight.Release(cost)
	ctx := pipeline.WithTenant(r.Context(), r.Header.Get("X-Scope-OrgID"))
	if raw, ok := h.traces.(pipeline.RawTraces); ok && enc == encProto {
		// The consumer takes the bytes: check them, count the spans and
		// hand them on, unless the walk leaves them to pdata.
		spans, decode, err := walkTraces(body)
		if err != nil {
			h.refuseTraces(w, enc, decodeError(body, err))
			return
		}
		if !decode {
			h.answerTraces(w, enc, spans, raw.ConsumeRawTraces(ctx, body, spans))
			return
		}
	}
	req := ptraceotlp.NewExportRequest()
	if err := unmarshal(enc, body, req.UnmarshalProto, req.UnmarshalJSON); err != nil {
		h.refuseTraces(w, enc, err)
		return
	}
	h.answerTraces(w, enc, req.Traces().SpanCount(), h.traces.ConsumeTraces(ctx, req.Traces()))
}

func (h *HTTP) refuseTraces(w http.ResponseWriter, enc encoding, decodeErr error) {
	h.tel.reject("traces", "decode")
	writeStatus(w, enc, http.StatusBadRequest, fmt.Sprintf("decode OTLP traces: %v", decodeErr))
}

// answerTraces answers the consumer's verdict on spans spans: OK, partial
// success or an error status.
func (h *HTTP) answerTraces(w http.ResponseWriter, enc encoding, spans int, err error) {
	resp := ptraceotlp.NewExportResponse()
	if err != nil {
		pe, ok := pipeline.AsPartial(err)
		if !ok {
			h.tel.reject("traces", reason(err))
			writeConsumerError(w, enc, err)
			return
		}
		resp.PartialSuccess().SetRejectedSpans(pe.Rejected)
		resp.PartialSuccess().SetErrorMessage(pe.Error())
		spans -= int(pe.Rejected)
	}
	h.tel.accept("traces", spans)
	writeResponse(w, enc, resp.MarshalProto, resp.MarshalJSON)
}

func (h *HTTP) serveMetrics(w http.ResponseWriter, r *http.Request) {
	enc, body, cost, ok := h.readRequest(w, r, "metrics")
	if !ok {
		return
	}
	defer h.inflight.Release(cost)
	req := pmetricotlp.NewExportRequest()
	if err := unmarshal(enc, body, req.UnmarshalProto, req.UnmarshalJSON); err != nil {
		h.tel.reject("metrics", "decode")
		writeStatus(w, enc, http.StatusBadRequest, fmt.Sprintf("decode OTLP metrics: %v", err))
		return
	}
	ctx := pipeline.WithTenant(r.Context(), r.Header.Get("X-Scope-OrgID"))
	points := req.Metrics().DataPointCount()
	resp := pmetricotlp.NewExportResponse()
	if err := h.metrics.ConsumeMetrics(ctx, req.Metrics()); err != nil {
		pe, ok := pipeline.AsPartial(err)
		if !ok {
			h.tel.reject("metrics", reason(err))
			writeConsumerError(w, enc, err)
			return
		}
		resp.PartialSuccess().SetRejectedDataPoints(pe.Rejected)
		resp.PartialSuccess().SetErrorMessage(pe.Error())
		points -= int(pe.Rejected)
	}
	h.tel.accept("metrics", points)
	writeResponse(w, enc, resp.MarshalProto, resp.MarshalJSON)
}

func (h *HTTP) serveLogs(w http.ResponseWriter, r *http.Request) {
	enc, body, cost, ok := h.readRequest(w, r, "logs")
	if !ok {
		return
	}
	defer h.inflight.Release(cost)
	req := plogotlp.NewExportRequest()
	if err := unmarshal(enc, body, req.UnmarshalProto, req.UnmarshalJSON); err != nil {
		h.tel.reject("logs", "decode")
		writeStatus(w, enc, http.StatusBadRequest, fmt.Sprintf("decode OTLP logs: %v", err))
		return
	}
	ctx := pipeline.WithTenant(r.Context(), r.Header.Get("X-Scope-OrgID"))
	records := req.Logs().LogRecordCount()
	resp := plogotlp.NewExportResponse()
	if err := h.logs.ConsumeLogs(ctx, logpush.FromOTLP(req.Logs())); err != nil {
		pe, ok := pipeline.AsPartial(err)
		if !ok {
			h.tel.reject("logs", reason(err))
			writeConsumerError(w, enc, err)
			return
		}
		resp.PartialSuccess().SetRejectedLogRecords(pe.Rejected)
		resp.PartialSuccess().SetErrorMessage(pe.Error())
		records -= int(pe.Rejected)
	}
	h.tel.accept("logs", records)
	writeResponse(w, enc, resp.MarshalProto, resp.MarshalJSON)
}

// readRequest checks the content type and reads and decompresses the body
// within the size limit, charging it to the in-flight budget as it arrives. On
// false it has answered; otherwise the caller releases cost.
func (h *HTTP) readRequest(w http.ResponseWriter, r *http.Request, signal string) (encoding, []byte, int64, bool) {
	enc, body, cost, reason, ok := h.read(w, r)
	if !ok {
		h.tel.reject(signal, reason)
	}
	return enc, body, cost, ok
}

func (h *HTTP) read(w http.ResponseWriter, r *http.Request) (enc encoding, body []byte, cost int64, reason string, ok bool) {
	enc, err := requestEncoding(r.Header.Get("Content-Type"))
	if err != nil {
		writeStatus(w, encProto, http.StatusUnsupportedMediaType, err.Error())
		return enc, nil, 0, "content_type", false
	}
	raw, rawCost, err := limits.ReadRequest(r, h.maxBytes, h.inflight, nil)
	if err == nil {
		var bodyCost int64
		body, bodyCost, err = decompress(r.Header.Get("Content-Encoding"), raw, h.maxBytes, h.inflight)
		if bodyCost > 0 { // a decompressed copy: the wire bytes can go
			h.inflight.Release(rawCost)
			rawCost = bodyCost
		}
	}
	if err != nil {
		h.inflight.Release(rawCost)
	}
	switch {
	case err == nil:
		return enc, body, rawCost, "", true
	case errors.Is(err, limits.ErrOverloaded):
		setRetryAfter(w, http.StatusTooManyRequests)
		writeStatus(w, enc, http.StatusTooManyRequests, err.Error())
		return enc, nil, 0, "overloaded", false
	case errors.Is(err, limits.ErrTooLarge):
		writeStatus(w, enc, http.StatusRequestEntityTooLarge, err.Error())
		return enc, nil, 0, "too_large", false
	case errors.Is(err, errUnsupportedEncoding):
		writeStatus(w, enc, http.StatusUnsupportedMediaType, err.Error())
		return enc, nil, 0, "content_encoding", false
	default:
		writeStatus(w, enc, http.StatusBadRequest, err.Error())
		return enc, nil, 0, "decode", false
	}
}

func requestEncoding(contentType string) (encoding, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return encProto, fmt.Errorf("unsupported Content-Type %q: use application/x-protobuf or application/json", contentType)
	}
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		return encProto, nil
	case "application/json":
		return encJSON, nil
	}
	return encProto, fmt.Errorf("unsupported Content-Type %q: use application/x-protobuf or application/json", mt)
}

var errUnsupportedEncoding = errors.New("unsupported Content-Encoding")

// decompress returns raw itself (cost 0) when it is not compressed, else its
// decompressed copy, charged to budget as it grows.
func decompress(contentEncoding string, raw []byte, max int64, budget *limits.Inflight) ([]byte, int64, error) {
	var rd io.Reader
	switch contentEncoding {
	case "", "identity":
		return raw, 0, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, 0, fmt.Errorf("decode gzip body: %w", err)
		}
		rd = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max)))
		if err != nil {
			return nil, 0, fmt.Errorf("decode zstd body: %w", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, 0, fmt.Errorf("%w %q: use gzip, zstd or none", errUnsupportedEncoding, contentEncoding)
	}
	out, cost, err := limits.ReadAll(rd, max, budget, nil)
	switch {
	case errors.Is(err, limits.ErrTooLarge):
		return nil, cost, fmt.Errorf("%w: decompressed body over %d bytes", limits.ErrTooLarge, max)
	case errors.Is(err, limits.ErrOverloaded):
		return nil, cost, err
	case err != nil:
		return nil, cost, fmt.Errorf("decompress %s body: %w", contentEncoding, err)
	}
	return out, cost, nil
}

func unmarshal(enc encoding, body []byte, fromProto, fromJSON func([]byte) error) error {
	if enc == encJSON {
		return fromJSON(body)
	}
	return fromProto(body)
}

func writeResponse(w http.ResponseWriter, enc encoding, toProto, toJSON func() ([]byte, error)) {
	marshal, ct := toProto, "application/x-protobuf"
	if enc == encJSON {
		marshal, ct = toJSON, "application/json"
	}
	b, err := marshal()
	if err != nil {
		writeStatus(w, enc, http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func writeConsumerError(w http.ResponseWriter, enc encoding, err error) {
	code := httpStatus(err)
	setRetryAfter(w, code)
	writeStatus(w, enc, code, err.Error())
}

// writeStatus answers with a google.rpc.Status body, as the OTLP/HTTP spec asks.
func writeStatus(w http.ResponseWriter, enc encoding, code int, msg string) {
	st := &spb.Status{Code: int32(grpcCodeFor(code)), Message: msg}
	var (
		b  []byte
		ct string
	)
	if enc == encJSON {
		b, _ = protojson.Marshal(st)
		ct = "application/json"
	} else {
		b, _ = proto.Marshal(st)
		ct = "application/x-protobuf"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func grpcCodeFor(httpCode int) codes.Code {
	switch httpCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Internal
}
