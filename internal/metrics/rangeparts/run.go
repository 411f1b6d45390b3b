package rangeparts

import (
	"context"
	"sync"

	"github.com/prometheus/prometheus/util/stats"
)

// Run is what a range query that runs engine queries of its own (the
// results cache's, the parallel parts') shares with the API while it runs:
// the cancel of its Exec and the statistics of the engine queries that
// answered it. The zero value is ready.
type Run struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	stats  *stats.Statistics
}

// Start derives Exec's context, which Cancel ends.
func (r *Run) Start(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	return ctx, cancel
}

// Cancel stops the engine queries running, if Exec has started.
func (r *Run) Cancel() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
}

// SetStats records the statistics the query reports.
func (r *Run) SetStats(s *stats.Statistics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats = s
}

// Stats are the statistics set last, or none's when nothing was set.
func (r *Run) Stats(none func() *stats.Statistics) *stats.Statistics {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stats != nil {
		return r.stats
	}
	return none()
}
