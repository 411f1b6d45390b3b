// Package pyroscope receives profiles the way Pyroscope does: the legacy /ingest
// endpoint every Pyroscope SDK uses, and the connect push API.
package pyroscope

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/profile"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope/convert"
)

// MaxBodyBytes bounds one request body (compressed), like Pyroscope's request limit.
const MaxBodyBytes = 32 << 20

// retryAfterSeconds is what overloaded answers tell clients to wait.
const retryAfterSeconds = "5"

type handler struct {
	store    pipeline.Profiles
	logger   *slog.Logger
	inflight *limits.Inflight
	requests *prometheus.CounterVec
	// maxSamples refuses larger profiles before they are decoded;
	// tenantMaxSamples, when set, gives each tenant's limit instead.
	maxSamples       int
	tenantMaxSamples func(tenant string) int
}

// samplesLimit is the samples limit of the tenant in ctx.
func (h *handler) samplesLimit(ctx context.Context) int {
	if h.tenantMaxSamples != nil {
		return h.tenantMaxSamples(pipeline.Tenant(ctx))
	}
	return h.maxSamples
}

// Option adjusts the handler.
type Option func(*handler)

// WithInflight shares the server-wide limit on bytes being ingested at once; without
// it the handler keeps its own limit of DefaultMaxInflightBytes.
func WithInflight(l *limits.Inflight) Option { return func(h *handler) { h.inflight = l } }

// DefaultMaxInflightBytes bounds the memory of requests being decoded at once.
const DefaultMaxInflightBytes = 256 << 20

// NewHandler serves /ingest, /pyroscope/ingest and /push.v1.PusherService/Push.
func NewHandler(store pipeline.Profiles, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) http.Handler {
	h := &handler{
		store:      store,
		logger:     logger,
		inflight:   limits.NewInflight(DefaultMaxInflightBytes),
		maxSamples: convert.DefaultMaxSamples,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_pyroscope_ingest_requests_total",
			Help: "Pyroscope ingest requests by endpoint, format and HTTP status.",
		}, []string{"endpoint", "format", "code"}),
	}
	for _, o := range opts {
		o(h)
	}
	if reg != nil {
		reg.MustRegister(h.requests)
	}
	mux := http.NewServeMux()
	ingest := h.limit("ingest", h.ingest)
	mux.Handle("/ingest", ingest)
	mux.Handle("/pyroscope/ingest", ingest)
	path, push := pushv1connect.NewPusherServiceHandler(&pushService{h: h}, connect.WithReadMaxBytes(MaxBodyBytes))
	push = withTenant(push)
	mux.Handle(path, h.limit("push", func(w http.ResponseWriter, r *http.Request, c *charge, body []byte) {
		// connect reads the body once more into its own buffer, and gunzips
		// it: charge that copy.
		n := int64(len(body))
		if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
			n = min(max(n, convert.GzipSize(body)), MaxBodyBytes)
		}
		if err := c.add(n); err != nil {
			h.fail(w, "push", "pprof", err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		push.ServeHTTP(w, r.WithContext(withCharge(r.Context(), c)))
	}))
	return mux
}

func withTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := r.Header.Get("X-Scope-OrgID"); t != "" {
			r = r.WithContext(pipeline.WithTenant(r.Context(), t))
		}
		next.ServeHTTP(w, r)
	})
}

// limit reads the request body, charging it to the in-flight budget as it
// arrives (never by its declared length), and hands it to next; profiles are
// charged their decoded size as they are decoded. Over budget is 429 with
// Retry-After.
func (h *handler) limit(endpoint string, next func(http.ResponseWriter, *http.Request, *charge, []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &charge{budget: h.inflight}
		defer c.release()
		format := r.URL.Query().Get("format")
		if endpoint == "ingest" && r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			h.fail(w, endpoint, format, errorf(http.StatusMethodNotAllowed, "method %s not allowed, use POST", r.Method))
			return
		}
		if endpoint == "ingest" {
			if err := ingestContentType(r.Header.Get("Content-Type")); err != nil {
				h.fail(w, endpoint, format, err)
				return
			}
		}
		body, err := c.readBody(r, endpoint == "ingest")
		if err != nil {
			h.fail(w, endpoint, format, err)
			return
		}
		next(w, r, c, body)
	})
}

// ingestContentType refuses the content types a web page may send
// cross-origin without a CORS preflight, other than the multipart form the
// Go, Node and .NET SDKs post: without it any page open in a browser on the
// network could write profiles. Pyroscope itself takes any; the SDKs send
// multipart/form-data or application/octet-stream (binary/octet-stream for
// folded lines), which is what Vispyr asks of hand-made requests too.
func ingestContentType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt == "text/plain" || mt == "application/x-www-form-urlencoded" {
		return errorf(http.StatusUnsupportedMediaType,
			"unsupported Content-Type %q: send application/octet-stream (pprof, folded lines) or multipart/form-data", ct)
	}
	return nil
}

// httpError carries the status an ingest failure is answered with.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, err: fmt.Errorf(format, args...)}
}

func (h *handler) ingest(w http.ResponseWriter, r *http.Request, c *charge, body []byte) {
	format := r.URL.Query().Get("format")
	ctx := r.Context()
	if t := r.Header.Get("X-Scope-OrgID"); t != "" {
		ctx = pipeline.WithTenant(ctx, t)
	}
	b, err := h.decodeIngest(r, c, body)
	if err == nil {
		err = h.append(ctx, b)
	}
	if err != nil {
		h.fail(w, "ingest", format, err)
		return
	}
	h.requests.WithLabelValues("ingest", formatLabel(format), "200").Inc()
	w.WriteHeader(http.StatusOK)
}

func (h *handler) append(ctx context.Context, b *profile.Batch) error {
	if b == nil || len(b.Profiles) == 0 {
		return nil
	}
	err := h.store.ConsumeProfiles(ctx, b)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pipeline.ErrOverloaded):
		return &httpError{code: http.StatusTooManyRequests, err: err}
	case pipeline.IsDiskFull(err):
		// Temporary, unlike a 500: the write succeeds once space returns.
		return &httpError{code: http.StatusServiceUnavailable, err: err}
	case pipeline.IsInvalid(err):
		return &httpError{code: http.StatusBadRequest, err: err}
	default:
		return &httpError{code: http.StatusInternalServerError, err: fmt.Errorf("store profile: %w", err)}
	}
}

func (h *handler) fail(w http.ResponseWriter, endpoint, format string, err error) {
	code := http.StatusBadRequest
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	if code >= 500 {
		h.logger.Error("profile ingest failed", "err", err)
	}
	h.requests.WithLabelValues(endpoint, formatLabel(format), strconv.Itoa(code)).Inc()
	if endpoint == "push" {
		writeConnectError(w, code, err)
		return
	}
	http.Error(w, err.Error(), code)
}

// writeConnectError answers a push refused before connect decoded it in the
// connect protocol's error shape, keeping the HTTP status: 413 for a body
// over the limit (connect itself would say ResourceExhausted, which it
// answers 429 and clients retry), 429 for overload.
func writeConnectError(w http.ResponseWriter, status int, err error) {
	code := connect.CodeInvalidArgument
	switch status {
	case http.StatusTooManyRequests:
		code = connect.CodeResourceExhausted
	case http.StatusServiceUnavailable:
		code = connect.CodeUnavailable
	case http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		code = connect.CodeUnimplemented
	}
	if status >= 500 && status != http.StatusServiceUnavailable {
		code = connect.CodeInternal
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code.String(), "message": err.Error()})
}

func formatLabel(f string) string {
	switch f {
	case "", "pprof", "jfr", "lines", "trie", "tree", "speedscope", "groups":
		return f
	}
	return "other"
}

// params are the /ingest query parameters.
type params struct {
	limit      int // most samples a profile may hold (0: no limit)
	app        string
	labels     map[string]string
	start      time.Time
	spyName    string
	sampleRate uint32
}

func parseParams(r *http.Request) (params, error) {
	q := r.URL.Query()
	var p params
	var err error
	p.app, p.labels, err = convert.ParseAppName(q.Get("name"))
	if err != nil {
		return p, errorf(http.StatusBadRequest, "name: %w", err)
	}
	if p.app == "" && p.labels[profile.LabelServiceName] == "" {
		return p, errorf(http.StatusBadRequest, "name: missing application name (name=app{labels})")
	}
	p.start = time.Now()
	if s := q.Get("from"); s != "" {
		if p.start, err = convert.ParseTime(s); err != nil {
			return p, errorf(http.StatusBadRequest, "from: %w", err)
		}
	}
	if s := q.Get("until"); s != "" {
		if _, err := convert.ParseTime(s); err != nil {
			return p, errorf(http.StatusBadRequest, "until: %w", err)
		}
	}
	p.sampleRate = 100
	if s := q.Get("sampleRate"); s != "" {
		// Pyroscope falls back to 100 on a bad rate instead of rejecting the data.
		if n, err := strconv.ParseUint(s, 10, 32); err == nil && n > 0 {
			p.sampleRate = uint32(n)
		}
	}
	p.spyName = q.Get("spyName")
	return p, nil
}

func (h *handler) decodeIngest(r *http.Request, c *charge, body []byte) (*profile.Batch, error) {
	p, err := parseParams(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	if t := r.Header.Get("X-Scope-OrgID"); t != "" {
		ctx = pipeline.WithTenant(ctx, t)
	}
	p.limit = h.samplesLimit(ctx)
	format := r.URL.Query().Get("format")
	ct := r.Header.Get("Content-Type")
	switch {
	case format == "pprof":
		return h.pprofBatch(c, body, nil, p)
	case format == "jfr":
		return nil, errorf(http.StatusUnprocessableEntity, "format=jfr is not supported by Vispyr (no JFR parser); send pprof")
	case format == "trie" || format == "tree" || format == "speedscope" ||
		ct == "binary/octet-stream+trie" || ct == "binary/octet-stream+tree":
		return nil, errorf(http.StatusUnprocessableEntity, "format %q is not supported; send pprof or folded lines", format)
	case format == "lines":
		return foldedBatch(body, p, true)
	case format == "" && strings.Contains(ct, "multipart/form-data"):
		return h.multipartBatch(c, body, ct, p)
	case format == "" || format == "groups" || format == "folded":
		return foldedBatch(body, p, false)
	default:
		return nil, errorf(http.StatusUnprocessableEntity, "unknown format %q", format)
	}
}

func seriesLabels(p params) map[string]string {
	ls := make(map[string]string, len(p.labels)+1)
	for k, v := range p.labels {
		ls[k] = v
	}
	if ls[profile.LabelServiceName] == "" {
		ls[profile.LabelServiceName] = p.app
	}
	return ls
}

func (h *handler) pprofBatch(c *charge, data []byte, stc map[string]convert.SampleTypeConfig, p params) (*profile.Batch, error) {
	if len(data) == 0 {
		return nil, nil
	}
	prof, err := c.parsePprof(data, p.limit, func() string { return labelString(seriesLabels(p)) })
	if err != nil {
		return nil, err
	}
	b, err := convert.FromPprof(prof, convert.Input{
		Labels: seriesLabels(p), SpyName: p.spyName, StartNanos: p.start.UnixNano(), SampleTypeConfig: stc,
	})
	if err != nil {
		return nil, &httpError{code: http.StatusBadRequest, err: fmt.Errorf("bad pprof: %w", err)}
	}
	return b, nil
}

func foldedBatch(data []byte, p params, lines bool) (*profile.Batch, error) {
	b, err := convert.FromFolded(data, convert.FoldedInput{
		AppName: p.app, Labels: p.labels, SpyName: p.spyName, SampleRate: p.sampleRate,
		StartNanos: p.start.UnixNano(), Lines: lines,
	})
	if err != nil {
		return nil, &httpError{code: http.StatusBadRequest, err: fmt.Errorf("bad folded profile: %w", err)}
	}
	// A folded line is one sample: the same limit as a pprof's samples.
	for _, prof := range b.Profiles {
		if err := convert.CheckSamples(len(prof.Samples), p.limit, prof.Labels.String()); err != nil {
			return nil, &httpError{code: http.StatusBadRequest, err: err}
		}
	}
	return b, nil
}

// multipartBatch reads pyroscope-go's and @pyroscope/nodejs's form: a `profile` part
// with a (gzipped) pprof and an optional `sample_type_config` JSON part.
func (h *handler) multipartBatch(c *charge, body []byte, contentType string, p params) (*profile.Batch, error) {
	_, mp, err := mime.ParseMediaType(contentType)
	if err != nil || mp["boundary"] == "" {
		return nil, errorf(http.StatusBadRequest, "multipart: bad content type %q", contentType)
	}
	mr := multipart.NewReader(bytes.NewReader(body), mp["boundary"])
	var profile []byte
	var stc map[string]convert.SampleTypeConfig
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "multipart: %w", err)
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "multipart part %q: %w", part.FormName(), err)
		}
		switch part.FormName() {
		case "profile":
			profile = data
		case "prev_profile":
			if len(data) > 0 {
				return nil, errorf(http.StatusBadRequest, "prev_profile is not supported: update the Pyroscope client")
			}
		case "sample_type_config":
			if err := json.Unmarshal(data, &stc); err != nil {
				return nil, errorf(http.StatusBadRequest, "sample_type_config: %w", err)
			}
		}
	}
	if profile == nil {
		return nil, errorf(http.StatusBadRequest, "multipart: missing `profile` part")
	}
	return h.pprofBatch(c, profile, stc, p)
}
