package limits

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrOverloaded is returned when the in-flight budget cannot hold more of a
// body: the request is answered 429 (503 for remote write) with Retry-After.
var ErrOverloaded = errors.New("too many bytes being ingested at once; retry later")

// minChunk is the first buffer a body gets and the smallest growth step.
const minChunk = 16 << 10

// ReadAll reads r into buf[:0] as bytes arrive, growing the buffer by doubling
// and charging every growth to budget before it is allocated, so that neither
// a declared length nor a slow sender makes memory that the budget does not
// see. At most limit bytes are read (ErrTooLarge beyond); ErrOverloaded when the
// budget is spent. charged is what the caller must Release, also on error.
func ReadAll(r io.Reader, limit int64, budget *Inflight, buf []byte) (out []byte, charged int64, err error) {
	buf = buf[:0]
	if !budget.Acquire(int64(cap(buf))) {
		return nil, 0, ErrOverloaded
	}
	charged = int64(cap(buf))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, charged, fmt.Errorf("%w: limit %d bytes", ErrTooLarge, limit)
			}
			next := min(max(2*int64(cap(buf)), minChunk), limit+1)
			if !budget.Acquire(next) {
				return nil, charged, ErrOverloaded
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			budget.Release(charged)
			buf, charged = grown, next
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, charged, fmt.Errorf("%w: limit %d bytes", ErrTooLarge, limit)
		}
		if rerr == io.EOF {
			return buf, charged, nil
		}
		if rerr != nil {
			return nil, charged, fmt.Errorf("read body: %w", rerr)
		}
	}
}

// ReadRequest reads a request body with ReadAll. A declared Content-Length
// over max is refused before reading; otherwise the declared length is only a
// claim and allocates nothing.
func ReadRequest(r *http.Request, max int64, budget *Inflight, buf []byte) ([]byte, int64, error) {
	if r.ContentLength > max {
		return nil, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, r.ContentLength, max)
	}
	return ReadAll(r.Body, max, budget, buf)
}

// ChargedBody wraps a request body so that every byte read is charged to
// budget before the reader's caller can keep it: for decoders (connect, gRPC
// codecs) that read the body themselves. Charged returns what to Release.
type ChargedBody struct {
	io.ReadCloser
	budget  *Inflight
	charged int64
}

// NewChargedBody wraps body.
func NewChargedBody(body io.ReadCloser, budget *Inflight) *ChargedBody {
	return &ChargedBody{ReadCloser: body, budget: budget}
}

// Read reads and charges; ErrOverloaded when the budget is spent.
func (b *ChargedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if !b.budget.Acquire(int64(n)) {
			return 0, ErrOverloaded
		}
		b.charged += int64(n)
	}
	return n, err
}

// Charged is the number of bytes charged so far.
func (b *ChargedBody) Charged() int64 { return b.charged }
