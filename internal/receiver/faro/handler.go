// Package faro receives browser telemetry from the Grafana Faro Web SDK on
// /collect, as Alloy's faro.receiver does: exceptions, logs, events and
// measurements become log lines (logfmt, Alloy's fields), the browser's spans
// go to the trace pipeline and Web Vitals also become gauges. It answers only
// once all of it is durable.
package faro

import (
	"compress/gzip"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/cors"
	"golang.org/x/time/rate"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// apiKeyHeader carries the Faro SDK's apiKey.
const apiKeyHeader = "x-api-key"

// Sinks are where the receiver's output goes; Logs is required.
type Sinks struct {
	Logs    pipeline.Logs
	Traces  pipeline.Traces
	Metrics pipeline.Metrics
}

// Handler serves /collect.
type Handler struct {
	cfg     Config
	sinks   Sinks
	limiter *rate.Limiter
	clock   vitalClock
	logger  *slog.Logger
	http    http.Handler
}

// NewHandler returns the receiver for cfg (see Defaults).
func NewHandler(cfg Config, sinks Sinks, logger *slog.Logger) *Handler {
	cfg.fill()
	h := &Handler{cfg: cfg, sinks: sinks, logger: logger, limiter: rate.NewLimiter(rate.Inf, 0)}
	if cfg.RateLimiting.Enabled {
		h.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimiting.Rate), int(cfg.RateLimiting.BurstSize))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /collect", h.collect)
	var out http.Handler = mux
	if len(cfg.CORSAllowedOrigins) > 0 {
		out = cors.New(cors.Options{
			AllowedOrigins: cfg.CORSAllowedOrigins,
			AllowedMethods: []string{http.MethodPost},
			// What the Faro SDK 2.x sends: Idempotency-Key always,
			// Content-Encoding with its requestCompression option.
			AllowedHeaders: []string{apiKeyHeader, "content-type", "x-faro-session-id", "idempotency-key", "content-encoding"},
			// Preflights are cached a day: every page view would pay one otherwise.
			MaxAge: 86400,
		}).Handler(mux)
	}
	h.http = out
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.http.ServeHTTP(w, r) }

func (h *Handler) collect(w http.ResponseWriter, r *http.Request) {
	if !h.limiter.Allow() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests: over faro.rate_limiting", http.StatusTooManyRequests)
		return
	}
	if h.cfg.APIKey != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get(apiKeyHeader)), []byte(h.cfg.APIKey)) != 1 {
		http.Error(w, "API key not provided or incorrect", http.StatusUnauthorized)
		return
	}
	limit := h.cfg.MaxPayloadBytes
	if limit > 0 && r.ContentLength > limit {
		http.Error(w, fmt.Sprintf("payload of %d bytes over faro.max_payload_bytes (%d)", r.ContentLength, limit), http.StatusRequestEntityTooLarge)
		return
	}
	b, err := readBody(w, r, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("payload over faro.max_payload_bytes (%d)", limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	p, err := decode(b)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx := pipeline.WithTenant(r.Context(), r.Header.Get("X-Scope-OrgID"))
	if err := h.store(ctx, p); err != nil {
		h.answerError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "ok")
}

// answerError answers as every Vispyr receiver does: 400 for input that can
// never be stored, 429 or 503 with Retry-After for overload and a full disk
// (the Faro SDK waits Retry-After before sending again), 500 otherwise.
func (h *Handler) answerError(w http.ResponseWriter, err error) {
	retry := strconv.Itoa(int(limits.RetryAfter.Seconds()))
	switch {
	case pipeline.IsInvalid(err):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case isPartial(err):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, pipeline.ErrOverloaded):
		w.Header().Set("Retry-After", retry)
		http.Error(w, err.Error(), http.StatusTooManyRequests)
	case pipeline.IsDiskFull(err):
		w.Header().Set("Retry-After", retry)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		h.logger.Error("store faro payload", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// readBody reads the body, gunzipped when the SDK's requestCompression sent it
// so; limit (0: none) applies before and after decompression.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := io.Reader(r.Body)
	if limit > 0 {
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		body = zr
		if limit > 0 {
			body = http.MaxBytesReader(w, io.NopCloser(zr), limit)
		}
	default:
		return nil, fmt.Errorf("Content-Encoding %q not supported", enc)
	}
	return io.ReadAll(body)
}

func isPartial(err error) bool {
	_, ok := pipeline.AsPartial(err)
	return ok
}

// store hands the payload to each sink in turn: traces, lines, gauges. A
// payload retried after a later sink failed stores the earlier parts again:
// at least once, never lost. Spans or gauge samples a store refuses while
// accepting the rest (too old, say) are logged: the SDK reads no answer body.
func (h *Handler) store(ctx context.Context, p *decoded) error {
	if p.traces.SpanCount() > 0 && h.sinks.Traces != nil {
		err := h.sinks.Traces.ConsumeTraces(ctx, p.traces)
		if pe, ok := pipeline.AsPartial(err); ok {
			h.logger.Warn("browser spans partly refused", "refused", pe.Rejected, "err", pe.Err)
			err = nil
		}
		if err != nil {
			return fmt.Errorf("store browser traces: %w", err)
		}
	}
	now := time.Now()
	if req := h.lines(&p.payload, now.UnixNano()); len(req.Streams) > 0 {
		if err := h.sinks.Logs.ConsumeLogs(ctx, req); err != nil {
			return fmt.Errorf("store faro log lines: %w", err)
		}
	}
	if h.sinks.Metrics == nil {
		return nil
	}
	if md, ok := h.vitals(&p.payload, now); ok {
		err := h.sinks.Metrics.ConsumeMetrics(ctx, md)
		if pe, ok := pipeline.AsPartial(err); ok {
			h.logger.Warn("web vitals gauges partly refused", "refused", pe.Rejected, "err", pe.Err)
			err = nil
		}
		if err != nil {
			return fmt.Errorf("store web vitals: %w", err)
		}
	}
	return nil
}
