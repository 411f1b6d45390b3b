package forward

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// tenantOf is the sender's X-Scope-OrgID, "" when it sent none.
func tenantOf(ctx context.Context) string {
	if t := pipeline.Tenant(ctx); t != pipeline.DefaultTenant {
		return t
	}
	return ""
}

// overloaded marks err so that receivers answer 429 / RESOURCE_EXHAUSTED
// (503 for remote write) with Retry-After.
func overloaded(err error) error {
	return fmt.Errorf("%w: %w", pipeline.ErrOverloaded, err)
}

// appendAll writes one record to every queue. When a queue turned full
// between the check and the append, the sender retries and the queues that
// took the record get it twice; destinations merge such duplicates (same
// series and timestamp, same span ID).
func appendAll(queues []Queue, tenant string, body []byte) error {
	bp := recPool.Get().(*[]byte)
	defer recPool.Put(bp)
	*bp = encodeRecord(*bp, tenant, body)
	return appendRecord(queues, *bp)
}

// appendCounted is appendAll of a body counted by appendCountedBody, built
// in one buffer.
func appendCounted(queues []Queue, tenant string, items int, raw []byte) error {
	bp := recPool.Get().(*[]byte)
	defer recPool.Put(bp)
	*bp = appendCountedBody(encodeRecord(*bp, tenant, nil), items, raw)
	return appendRecord(queues, *bp)
}

// appendRecord appends rec to every queue at once: each queue syncs on its
// own, so destinations cost one sync's wait, not one each.
func appendRecord(queues []Queue, rec []byte) error {
	if len(queues) == 1 {
		return appendOne(queues[0], rec)
	}
	errs := make([]error, len(queues))
	var wg sync.WaitGroup
	for i, q := range queues {
		wg.Go(func() { errs[i] = appendOne(q, rec) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the first queue's error first: an overload before a failure
		}
	}
	return nil
}

func appendOne(q Queue, rec []byte) error {
	if err := q.Append(rec); err != nil {
		if errors.Is(err, ErrQueueFull) {
			return overloaded(err)
		}
		return fmt.Errorf("append to forward queue: %w", err)
	}
	return nil
}
