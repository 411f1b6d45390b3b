package loki

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/klauspost/compress/snappy"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// Handler serves Loki's push endpoints.
type Handler struct {
	next     pipeline.Logs
	maxBytes int64
	logger   *slog.Logger
	legacy   bool // JSON bodies are the legacy path's shape
}

// NewHandler returns the push receiver; bodies (decompressed) over maxBytes are
// refused with 413.
func NewHandler(next pipeline.Logs, maxBytes int64, logger *slog.Logger) *Handler {
	return &Handler{next: next, maxBytes: maxBytes, logger: logger}
}

// Register adds the push paths to mux: Loki's and its legacy one, which
// takes the same protobuf but JSON of another shape, as Loki 3 still does.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /loki/api/v1/push", h)
	legacy := *h
	legacy.legacy = true
	mux.Handle("POST /api/prom/push", &legacy)
}

// ServeHTTP answers as Loki does: 204 when every line is stored, 400 with the
// reasons when some or all were refused (valid ones are still stored), 429 with
// Retry-After when overloaded, 503 with Retry-After while the disk is full,
// 500 otherwise.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := h.decode(r)
	if err != nil {
		code := http.StatusBadRequest
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), code)
		return
	}
	ctx := pipeline.WithTenant(r.Context(), r.Header.Get("X-Scope-OrgID"))
	err = h.next.ConsumeLogs(ctx, req)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case pipeline.IsInvalid(err):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case isPartial(err):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, pipeline.ErrOverloaded):
		w.Header().Set("Retry-After", strconv.Itoa(int(limits.RetryAfter.Seconds())))
		http.Error(w, err.Error(), http.StatusTooManyRequests)
	case pipeline.IsDiskFull(err):
		// 503, which Loki clients (Promtail, Alloy) retry, as they do 429.
		w.Header().Set("Retry-After", strconv.Itoa(int(limits.RetryAfter.Seconds())))
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		h.logger.Error("store pushed logs", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func isPartial(err error) bool {
	_, ok := pipeline.AsPartial(err)
	return ok
}

// decode reads the body by its Content-Type (JSON, else protobuf) and
// Content-Encoding (gzip for either; protobuf is snappy-compressed as well).
func (h *Handler) decode(r *http.Request) (*logpush.Request, error) {
	body := io.Reader(http.MaxBytesReader(nil, r.Body, h.maxBytes))
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		body = http.MaxBytesReader(nil, zr, h.maxBytes)
	default:
		return nil, fmt.Errorf("Content-Encoding %q not supported", r.Header.Get("Content-Encoding"))
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		decode := decodeJSON
		if h.legacy {
			decode = decodeLegacyJSON
		}
		req, err := decode(b)
		if err != nil {
			return nil, fmt.Errorf("loghttp push: %w", err)
		}
		return req, nil
	}
	if n, err := snappy.DecodedLen(b); err != nil || int64(n) > h.maxBytes {
		return nil, fmt.Errorf("snappy: decoded length %d invalid or over %d bytes", n, h.maxBytes)
	}
	raw, err := snappy.Decode(nil, bytes.Clone(b))
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	return decodeProto(raw)
}
