package metrics

import (
	"context"
	"errors"
)

var errNoScrape = errors.New("vispyr scrapes no targets")

// queryLimiter bounds concurrent PromQL queries; it is the engine's query tracker
// without the on-disk active-query log.
type queryLimiter struct{ slots chan struct{} }

func newQueryLimiter(n int) *queryLimiter { return &queryLimiter{slots: make(chan struct{}, n)} }

func (q *queryLimiter) GetMaxConcurrent() int { return cap(q.slots) }

func (q *queryLimiter) Insert(ctx context.Context, _ string) (int, error) {
	select {
	case q.slots <- struct{}{}:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (q *queryLimiter) Delete(int) { <-q.slots }

func (q *queryLimiter) Close() error { return nil }
