package logs

import (
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// tenant is one tenant's streams and the postings index over their labels:
// label name -> value -> streams.
type tenant struct {
	mu       sync.RWMutex
	streams  map[uint64][]*stream // by labels hash; collisions share the slot
	postings map[string]map[string][]*stream
	n        int
	tails    []*tailSub
}

func newTenant() *tenant {
	return &tenant{streams: map[uint64][]*stream{}, postings: map[string]map[string][]*stream{}}
}

func (t *tenant) lookup(ls labels.Labels) *stream {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.lookupLocked(ls.Hash(), ls)
}

func (t *tenant) lookupLocked(h uint64, ls labels.Labels) *stream {
	for _, s := range t.streams[h] {
		if labels.Equal(s.labels, ls) {
			return s
		}
	}
	return nil
}

// getOrCreate returns the stream of ls, creating and indexing it if new.
func (t *tenant) getOrCreate(ls labels.Labels) *stream {
	if s := t.lookup(ls); s != nil {
		return s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h := ls.Hash()
	if s := t.lookupLocked(h, ls); s != nil {
		return s
	}
	s := &stream{labels: ls}
	t.streams[h] = append(t.streams[h], s)
	t.n++
	ls.Range(func(l labels.Label) {
		vals := t.postings[l.Name]
		if vals == nil {
			vals = map[string][]*stream{}
			t.postings[l.Name] = vals
		}
		vals[l.Value] = append(vals[l.Value], s)
	})
	return s
}

// removeLocked drops a stream that holds no data any more.
func (t *tenant) removeLocked(s *stream) {
	h := s.labels.Hash()
	t.streams[h] = slices.DeleteFunc(t.streams[h], func(x *stream) bool { return x == s })
	if len(t.streams[h]) == 0 {
		delete(t.streams, h)
	}
	t.n--
	s.labels.Range(func(l labels.Label) {
		vals := t.postings[l.Name]
		vals[l.Value] = slices.DeleteFunc(vals[l.Value], func(x *stream) bool { return x == s })
		if len(vals[l.Value]) == 0 {
			delete(vals, l.Value)
		}
		if len(vals) == 0 {
			delete(t.postings, l.Name)
		}
	})
}

// all returns every stream.
func (t *tenant) all() []*stream {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*stream, 0, t.n)
	for _, ss := range t.streams {
		out = append(out, ss...)
	}
	return out
}

// selectStreams returns the streams matching every matcher. Candidates come from
// the postings of the matcher that selects the fewest streams without matching
// the empty string; the rest are checked on each candidate's labels.
func (t *tenant) selectStreams(ms []*labels.Matcher) []*stream {
	if len(ms) == 0 {
		return t.all()
	}
	t.mu.RLock()
	var cand []*stream
	best := -1
	for _, m := range ms {
		if m.Matches("") {
			continue
		}
		var c []*stream
		vals := t.postings[m.Name]
		if m.Type == labels.MatchEqual {
			c = vals[m.Value]
		} else {
			for v, ss := range vals {
				if m.Matches(v) {
					c = append(c, ss...)
				}
			}
		}
		if best < 0 || len(c) < best {
			cand, best = c, len(c)
		}
	}
	if best < 0 {
		t.mu.RUnlock()
		cand = t.all()
	} else {
		cand = slices.Clone(cand)
		t.mu.RUnlock()
	}
	return slices.DeleteFunc(cand, func(s *stream) bool {
		for _, m := range ms {
			if !m.Matches(s.labels.Get(m.Name)) {
				return true
			}
		}
		return false
	})
}

// checkSelector refuses selectors that would read every stream, as Loki does.
func checkSelector(ms []*labels.Matcher) error {
	for _, m := range ms {
		if !m.Matches("") {
			return nil
		}
	}
	return fmt.Errorf("%w: queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will", ErrInvalidQuery)
}
