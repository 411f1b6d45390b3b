package logs

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
)

// tailBuffer is how many pushes a live tail may fall behind before it drops.
const tailBuffer = 256

type tailSub struct {
	matchers []*labels.Matcher
	ch       chan Stream
	dropped  atomic.Uint64
}

func (t *tenant) notifyTails(s Stream) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, sub := range t.tails {
		if !matchesAll(sub.matchers, s.Labels) {
			continue
		}
		select {
		case sub.ch <- s:
		default:
			sub.dropped.Add(uint64(len(s.Entries)))
		}
	}
}

func matchesAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// Tail implements Querier.
func (s *Store) Tail(ctx context.Context, tenantName string, matchers []*labels.Matcher) (<-chan Stream, func() uint64, error) {
	if err := checkSelector(matchers); err != nil {
		return nil, nil, err
	}
	t := s.tenant(tenantName)
	sub := &tailSub{matchers: matchers, ch: make(chan Stream, tailBuffer)}
	t.mu.Lock()
	t.tails = append(t.tails, sub)
	t.mu.Unlock()
	go func() {
		<-ctx.Done()
		t.mu.Lock()
		t.tails = slices.DeleteFunc(t.tails, func(x *tailSub) bool { return x == sub })
		t.mu.Unlock()
		// notifyTails sends under the read lock, so no send can follow this close.
		close(sub.ch)
	}()
	return sub.ch, sub.dropped.Load, nil
}
