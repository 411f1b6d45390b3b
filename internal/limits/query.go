package limits

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrQueryMemory is wrapped by the error of a query whose memory would pass
// its own bound: the client must narrow it (400/422, or invalid_argument).
var ErrQueryMemory = errors.New("query exceeds its memory limit")

// ErrQueriesBusy is wrapped by the error of a query that fits its own bound
// but not what the queries running now leave of the shared budget: the
// client may retry (429/503 with Retry-After, or resource_exhausted).
var ErrQueriesBusy = errors.New("running queries hold the shared query memory")

// QueryMemory charges the memory one query is about to build to the query's
// own bound and to the budget every running query shares (PromQL, TraceQL
// metrics, Pyroscope merges), before the memory is allocated: a query is
// refused at the allocation that would pass either, not after. A nil
// QueryMemory charges nothing. Release returns everything once the answer is
// written.
type QueryMemory struct {
	max, sharedMax int64
	shared         *Inflight
	used           atomic.Int64
	// setting names the per-query bound in refusals (e.g.
	// "traces.query_max_memory_bytes").
	setting string
}

// NewQueryMemory returns a charge of at most max bytes, drawn from shared
// (which may be nil: no shared budget).
func NewQueryMemory(max int64, setting string, shared *Inflight) *QueryMemory {
	q := &QueryMemory{max: max, shared: shared, setting: setting}
	if shared != nil {
		q.sharedMax = shared.max
	}
	return q
}

// Charge reserves n more bytes, or says which bound refuses them.
func (q *QueryMemory) Charge(n int64) error {
	if q == nil || n <= 0 {
		return nil
	}
	if used := q.used.Add(n); used > q.max {
		q.used.Add(-n)
		return fmt.Errorf("%w: an estimated %d bytes, over %s (%d)", ErrQueryMemory, used, q.setting, q.max)
	}
	if !q.shared.Acquire(n) {
		q.used.Add(-n)
		return fmt.Errorf("%w (%d bytes); this query needs %d more: retry later", ErrQueriesBusy, q.sharedMax, n)
	}
	return nil
}

// Used is what the query holds now.
func (q *QueryMemory) Used() int64 {
	if q == nil {
		return 0
	}
	return q.used.Load()
}

// Release returns all the query holds to the shared budget.
func (q *QueryMemory) Release() {
	if q != nil {
		q.shared.Release(q.used.Swap(0))
	}
}
