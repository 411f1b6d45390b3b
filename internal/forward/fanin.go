package forward

import (
	"context"
	"errors"
	"fmt"

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
	return appendRecord(queues, encodeRecord(nil, tenant, body))
}

func appendRecord(queues []Queue, rec []byte) error {
	for _, q := range queues {
		if err := q.Append(rec); err != nil {
			if errors.Is(err, ErrQueueFull) {
				return overloaded(err)
			}
			return fmt.Errorf("append to forward queue: %w", err)
		}
	}
	return nil
}
