package metrics

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// appendWait is how long a remote-write request waits for a free append slot
// before it is answered 503: long enough to ride out a burst, short enough
// that requests do not pile up holding their decoded bodies.
const appendWait = 500 * time.Millisecond

// appendGate bounds the remote-write requests appending to the TSDBs at
// once. The in-flight byte budget bounds what requests hold while decoded,
// but not the work behind it: an out-of-order storm makes each append slow
// (the head's out-of-order chunks, series lock contention), so requests pile
// up in the append path with their memory until the process runs out. Over
// the bound a request is refused with pipeline.ErrOverloaded, which remote
// write answers 503 with Retry-After, as Prometheus's receiver does when its
// storage is unavailable.
type appendGate struct {
	slots   chan struct{}
	wait    time.Duration
	refused prometheus.Counter
}

// newAppendGate allows max appends at once (0: four per CPU).
func newAppendGate(max int, reg prometheus.Registerer) *appendGate {
	if max <= 0 {
		max = 4 * runtime.GOMAXPROCS(0)
	}
	g := &appendGate{slots: make(chan struct{}, max), wait: appendWait}
	g.refused = promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "vispyr_remote_write_append_saturated_total",
		Help: "Remote-write requests refused with 503 because limits.max_concurrent_appends requests were already appending.",
	})
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vispyr_remote_write_appends_in_flight",
		Help: "Remote-write requests appending to the metrics store now.",
	}, func() float64 { return float64(len(g.slots)) })
	return g
}

// enter takes a slot, waiting at most g.wait; the caller must call leave
// when it returns nil.
func (g *appendGate) enter(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		g.refused.Inc()
		return fmt.Errorf("the metrics store's append path is saturated (%d remote-write requests appending, limits.max_concurrent_appends): %w",
			cap(g.slots), pipeline.ErrOverloaded)
	}
}

func (g *appendGate) leave() { <-g.slots }
