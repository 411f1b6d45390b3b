package metrics

import (
	"context"
	"errors"
	"sync"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

var errNoScrape = errors.New("vispyr scrapes no targets")

// queryLimiter bounds concurrent PromQL queries, overall and per tenant
// (limits.tenant.max_concurrent_queries); it is the engine's query tracker
// without the on-disk active-query log. A query over either bound waits.
type queryLimiter struct {
	slots  chan struct{}
	limits config.Limits

	mu      sync.Mutex
	tenants map[string]chan struct{}
	held    map[int]chan struct{} // query index -> tenant slots it holds
	next    int
}

func newQueryLimiter(n int, lim config.Limits) *queryLimiter {
	return &queryLimiter{slots: make(chan struct{}, n), limits: lim,
		tenants: map[string]chan struct{}{}, held: map[int]chan struct{}{}}
}

func (q *queryLimiter) GetMaxConcurrent() int { return cap(q.slots) }

func (q *queryLimiter) Insert(ctx context.Context, _ string) (int, error) {
	tenant := q.tenantSlots(pipeline.Tenant(ctx))
	if tenant != nil {
		select {
		case tenant <- struct{}{}:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	select {
	case q.slots <- struct{}{}:
	case <-ctx.Done():
		if tenant != nil {
			<-tenant
		}
		return 0, ctx.Err()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.next++
	if tenant != nil {
		q.held[q.next] = tenant
	}
	return q.next, nil
}

// tenantSlots is the tenant's own semaphore, nil when it has no limit.
func (q *queryLimiter) tenantSlots(id string) chan struct{} {
	n := q.limits.ForTenant(id).MaxConcurrentQueries
	if n <= 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.tenants[id]
	if c == nil {
		c = make(chan struct{}, n)
		q.tenants[id] = c
	}
	return c
}

func (q *queryLimiter) Delete(i int) {
	<-q.slots
	q.mu.Lock()
	tenant := q.held[i]
	delete(q.held, i)
	q.mu.Unlock()
	if tenant != nil {
		<-tenant
	}
}

func (q *queryLimiter) Close() error { return nil }
