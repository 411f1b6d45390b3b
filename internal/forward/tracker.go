package forward

import "sync"

// tracker knows which queue records still have units being sent, and so how
// far the queue's cursor may move: up to the last record before the oldest
// unfinished one. Shards finish units out of order; the cursor never skips.
type tracker struct {
	mu        sync.Mutex
	order     []uint64 // open records, oldest first
	remaining map[uint64]int
	done      uint64 // cursor may move up to here
	hasDone   bool
}

func newTracker() *tracker { return &tracker{remaining: map[uint64]int{}} }

// open registers record pos with n units outstanding.
func (t *tracker) open(pos uint64, n int) {
	t.mu.Lock()
	t.order = append(t.order, pos)
	t.remaining[pos] += n
	t.mu.Unlock()
}

// add adds n units to an open record.
func (t *tracker) add(pos uint64, n int) {
	t.mu.Lock()
	t.remaining[pos] += n
	t.mu.Unlock()
}

// finish marks n units of record pos done.
func (t *tracker) finish(pos uint64, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.remaining[pos] -= n
	for len(t.order) > 0 && t.remaining[t.order[0]] <= 0 {
		p := t.order[0]
		delete(t.remaining, p)
		t.order = t.order[1:]
		t.done, t.hasDone = p, true
	}
	if len(t.order) == 0 {
		t.order = t.order[:0:0] // let a long backlog's array go
	}
}

// committable returns the position the cursor may move to.
func (t *tracker) committable() (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done, t.hasDone
}
