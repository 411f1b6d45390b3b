package logs

import (
	"context"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// tailBuffer is how many pushes a live tail may fall behind before it drops.
const tailBuffer = 256

type tailSub struct {
	matchers []*labels.Matcher
	ch       chan Stream

	mu      sync.Mutex // serialises keep and guards dropped
	keep    TailFilter
	dropped []DroppedEntry
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
			sub.drop(s)
		}
	}
}

// drop records the entries of s the reader wanted, for the reader to
// report; only a reader that fell behind pays for keep here.
func (sub *tailSub) drop(s Stream) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, e := range s.Entries {
		if len(sub.dropped) >= MaxTailDropped {
			return
		}
		ls := s.Labels
		if sub.keep != nil {
			var ok bool
			if ls, ok = sub.keep(s.Labels, e); !ok {
				continue
			}
		}
		sub.dropped = append(sub.dropped, DroppedEntry{Labels: ls, Timestamp: e.Timestamp})
	}
}

func (sub *tailSub) takeDropped() []DroppedEntry {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	d := sub.dropped
	sub.dropped = nil
	return d
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
func (s *Store) Tail(ctx context.Context, tenantName string, matchers []*labels.Matcher, keep TailFilter) (<-chan Stream, func() []DroppedEntry, error) {
	if err := checkSelector(matchers); err != nil {
		return nil, nil, err
	}
	t := s.tenant(tenantName)
	sub := &tailSub{matchers: matchers, ch: make(chan Stream, tailBuffer), keep: keep}
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
	return sub.ch, sub.takeDropped, nil
}
