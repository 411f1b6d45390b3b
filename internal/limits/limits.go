// Package limits holds the guards every receiver shares: request body size and the
// bytes being ingested at once, so that overload is refused with 413/429 before
// memory runs out.
package limits

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// RetryAfter is what overloaded receivers ask clients to wait.
const RetryAfter = 5 * time.Second

// ErrTooLarge is returned when a body exceeds its limit.
var ErrTooLarge = errors.New("request body too large")

// Inflight caps the bytes of requests being decoded and stored at once.
type Inflight struct {
	max int64
	cur atomic.Int64
}

// NewInflight returns a limiter admitting at most max bytes at once.
func NewInflight(max int64) *Inflight { return &Inflight{max: max} }

// Acquire reserves n bytes and reports whether they fit. A true result must be
// paired with Release(n).
func (l *Inflight) Acquire(n int64) bool {
	if l == nil {
		return true
	}
	if l.cur.Add(n) > l.max {
		l.cur.Add(-n)
		return false
	}
	return true
}

// Release returns n bytes reserved by Acquire.
func (l *Inflight) Release(n int64) {
	if l != nil {
		l.cur.Add(-n)
	}
}

// InUse is the number of bytes currently reserved.
func (l *Inflight) InUse() int64 { return l.cur.Load() }

// ReadBody reads at most max bytes of r.Body; ErrTooLarge when there is more.
// It charges nothing: receivers use ReadRequest with their budget.
func ReadBody(r *http.Request, max int64) ([]byte, error) {
	body, _, err := ReadRequest(r, max, nil, nil)
	return body, err
}

// WriteOverloaded answers 429 with Retry-After, the code OTLP and Pyroscope
// clients retry on.
func WriteOverloaded(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter.Seconds())))
	http.Error(w, msg, http.StatusTooManyRequests)
}

// WriteUnavailable answers 503 with Retry-After. Remote write uses it for
// overload: Prometheus drops a batch answered 429 unless its queue sets
// retry_on_http_429, but always retries a 5xx.
func WriteUnavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter.Seconds())))
	http.Error(w, msg, http.StatusServiceUnavailable)
}
