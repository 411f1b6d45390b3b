package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
)

// sendError is a failed send: retryable ones are tried again after a back-off
// (at least retryAfter), the others drop the batch.
type sendError struct {
	retryable  bool
	retryAfter time.Duration
	reason     string // dropped-counter reason: http_400, grpc_invalid_argument, …
	err        error
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// sender delivers one request body for a tenant ("" for none).
type sender func(ctx context.Context, tenant string, body []byte) error

// maxErrBody is how much of a destination's error answer is kept for the log.
const maxErrBody = 1024

// httpSender POSTs bodies to url with Prometheus's HTTP client (auth, TLS),
// the destination's headers and the tenant as X-Scope-OrgID.
type httpSender struct {
	client  *http.Client
	url     string
	headers map[string]string // content type and encoding, then the user's
	timeout time.Duration
}

func newHTTPSender(d *Destination, url string, headers map[string]string) (*httpSender, error) {
	client, err := commoncfg.NewClientFromConfig(d.httpClientConfig(), "vispyr-forward-"+d.Name)
	if err != nil {
		return nil, fmt.Errorf("build HTTP client for %s: %w", d.Name, err)
	}
	h := map[string]string{}
	for k, v := range headers {
		h[k] = v
	}
	for k, v := range d.Headers {
		h[k] = v
	}
	return &httpSender{client: client, url: url, headers: h, timeout: d.Queue.Timeout}, nil
}

func (s *httpSender) send(ctx context.Context, tenant string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return &sendError{reason: "bad_request", err: err}
	}
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// Network errors and timeouts: the destination may come back.
		return &sendError{retryable: true, err: fmt.Errorf("post %s: %w", s.url, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	_, _ = io.Copy(io.Discard, resp.Body)
	return httpError(resp, strings.TrimSpace(string(msg)))
}

// httpError classifies an answer as remote write and OTLP/HTTP specify: 429
// and 5xx are retried (Retry-After honoured), other codes are permanent.
func httpError(resp *http.Response, msg string) *sendError {
	e := &sendError{
		reason: "http_" + strconv.Itoa(resp.StatusCode),
		err:    fmt.Errorf("server returned HTTP status %s: %s", resp.Status, msg),
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode/100 == 5,
		resp.StatusCode == http.StatusRequestTimeout:
		e.retryable = true
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// parseRetryAfter reads seconds or an HTTP date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// backoff is exponential with full jitter in its upper half, as Prometheus's
// queue does, never below the destination's Retry-After.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next(retryAfter time.Duration) time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	d := b.cur/2 + rand.N(b.cur/2+1)
	return max(d, retryAfter)
}

func (b *backoff) reset() { b.cur = 0 }

// asSendError returns err as a sendError; anything else is retried.
func asSendError(err error) *sendError {
	var se *sendError
	if errors.As(err, &se) {
		return se
	}
	return &sendError{retryable: true, err: err}
}
