package pyroscope

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope/convert"
)

// WithMaxSamples refuses profiles with more samples than n with 400, as
// Pyroscope's max_profile_stacktrace_samples does (0: no limit).
func WithMaxSamples(n int) Option { return func(h *handler) { h.maxSamples = n } }

// WithTenantMaxSamples gives each tenant (X-Scope-OrgID) its own samples
// limit, as Pyroscope's per-tenant overrides do; it takes precedence over
// WithMaxSamples.
func WithTenantMaxSamples(f func(tenant string) int) Option {
	return func(h *handler) { h.tenantMaxSamples = f }
}

// charge is the memory one request holds in the in-flight budget: its body as
// it arrives, then each profile's decoded size before it is decoded.
type charge struct {
	budget *limits.Inflight
	n      int64
}

func (c *charge) add(n int64) error {
	if !c.budget.Acquire(n) {
		return &httpError{code: http.StatusTooManyRequests,
			err: fmt.Errorf("too many profiles being ingested at once: %w", pipeline.ErrOverloaded)}
	}
	c.n += n
	return nil
}

func (c *charge) release() { c.budget.Release(c.n); c.n = 0 }

// readBody reads the request body, charging it as it arrives, and gunzips it
// when Content-Encoding says so and gunzip is set (connect decompresses itself).
func (c *charge) readBody(r *http.Request, gunzip bool) ([]byte, error) {
	body, n, err := limits.ReadRequest(r, MaxBodyBytes, c.budget, nil)
	c.n += n
	if err == nil && gunzip && strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		var zr io.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(body)); err != nil {
			return nil, errorf(http.StatusBadRequest, "gunzip body: %w", err)
		}
		body, n, err = limits.ReadAll(zr, convert.MaxDecompressedBytes, c.budget, nil)
		c.n += n
	}
	switch {
	case errors.Is(err, limits.ErrOverloaded):
		return nil, &httpError{code: http.StatusTooManyRequests, err: fmt.Errorf("too many profiles being ingested at once: %w", pipeline.ErrOverloaded)}
	case errors.Is(err, limits.ErrTooLarge):
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body exceeds %d bytes (%d decompressed)", MaxBodyBytes, convert.MaxDecompressedBytes)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "read body: %w", err)
	}
	return body, nil
}

// parsePprof decompresses and decodes one pprof, charging the decompressed
// bytes and the estimated decoded size before allocating them, and refusing
// more samples than the limit before decoding.
func (c *charge) parsePprof(data []byte, maxSamples int, series func() string) (*googlev1.Profile, error) {
	if err := c.add(min(convert.GzipSize(data), convert.MaxDecompressedBytes)); err != nil {
		return nil, err
	}
	raw, err := convert.Decompress(data)
	if err != nil {
		if errors.Is(err, convert.ErrTooLarge) {
			return nil, &httpError{code: http.StatusRequestEntityTooLarge, err: err}
		}
		return nil, &httpError{code: http.StatusBadRequest, err: fmt.Errorf("bad pprof: %w", err)}
	}
	samples, decoded, err := convert.PprofShape(raw)
	if err != nil {
		return nil, &httpError{code: http.StatusBadRequest, err: fmt.Errorf("bad pprof: %w", err)}
	}
	if err := convert.CheckSamples(samples, maxSamples, series()); err != nil {
		return nil, &httpError{code: http.StatusBadRequest, err: err}
	}
	if err := c.add(decoded); err != nil {
		return nil, err
	}
	prof, err := convert.ParsePprof(raw)
	if err != nil {
		return nil, &httpError{code: http.StatusBadRequest, err: fmt.Errorf("bad pprof: %w", err)}
	}
	return prof, nil
}

type chargeKey struct{}

func withCharge(ctx context.Context, c *charge) context.Context {
	return context.WithValue(ctx, chargeKey{}, c)
}

// chargeFrom returns the request's charge; a push served without the limit
// middleware (tests) gets an unbounded one.
func chargeFrom(ctx context.Context) *charge {
	if c, ok := ctx.Value(chargeKey{}).(*charge); ok {
		return c
	}
	return &charge{}
}

// labelString formats series labels as Pyroscope's messages do: {a="b", ...}.
func labelString(ls map[string]string) string {
	return labels.FromMap(ls).String()
}
