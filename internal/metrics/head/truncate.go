package head

// Truncation drops the samples blocks now hold, as Prometheus's
// Head.Truncate does. Three things run against it:
//
//   - Commits. A commit holds commitMu for reading and checks its samples
//     against minValidTime under it (settle); truncation raises
//     minValidTime first and then takes commitMu for writing (fence), so
//     once it has held it no commit can add a sample before the truncation
//     time. Commits then go on while the samples are truncated (the buffer
//     takes them beside its pass), and wait again only while the series
//     left without samples are chosen and marked removed. A
//     sample appended before the raise and committed after it is refused
//     with storage.ErrOutOfBounds instead of being added and dropped.
//     Prometheus instead waits for such appenders to commit; refusing
//     needs no registry of open appenders and cannot hang on one never
//     committed.
//   - Readers. Queriers and the compactor read chunks truncation frees, so
//     it waits, as Prometheus's does, for the index readers open on ranges
//     before the truncation time to close: those open when it starts, so
//     that a stream of queries cannot hold it off. It raises MinTime
//     first, and a reader lists no chunk before the MinTime it saw once
//     open (RangeHead.Index), so one opened later does not read what the
//     truncation drops: it is in a block by then (CompactOldest's loaded),
//     which a query sees if it takes the blocks after the head's querier.
//   - Appenders holding refs of series it removes. Refs are never given
//     twice, so a removed ref is refused by Append (which then goes by the
//     labels, as for a ref not of this head); Prometheus does the same. A
//     ref Append took before the removal is checked again at Commit, under
//     commitMu, if a removal happened since the appender's first Append
//     (Head.removals): its sample goes to the series of its labels, created
//     again (revive). Prometheus keeps series with pending samples from
//     removal instead, which costs a counter per series.
//   - Other truncations and compactions, by truncMu.

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// Truncate drops the head's samples before mint, as Prometheus's head does
// once they are in a block: appends before mint are refused from now on
// (storage.ErrOutOfBounds), chunks that end before mint are dropped with
// the head chunk files only they were in, series left without samples are
// removed, and MinTime rises to the oldest sample left. It waits for the readers open on ranges before mint.
func (h *Head) Truncate(mint int64) error {
	h.truncMu.Lock()
	defer h.truncMu.Unlock()
	return h.truncate(context.Background(), mint)
}

// truncate is Truncate with truncMu held.
func (h *Head) truncate(ctx context.Context, mint int64) error {
	h.fence(mint)
	if h.MinTime() >= mint { // nothing before mint, or empty
		return nil
	}
	raise(&h.mint, mint)
	raise(&h.maxt, mint) // as Prometheus's: MaxTime is never below MinTime
	if err := h.readers.wait(ctx, mint); err != nil {
		return fmt.Errorf("head: truncate at %d: wait for readers: %w", mint, err)
	}
	// Commits go on while the samples are truncated: fence made them add
	// none before mint, and the buffer takes the others beside its pass.
	if _, err := h.samples.Truncate(mint); err != nil {
		return fmt.Errorf("head: truncate at %d: %w", mint, err)
	}
	h.commitMu.Lock()
	unlock := sync.OnceFunc(h.commitMu.Unlock)
	defer unlock()
	gone := h.removeEmpty(unlock)
	unlock()
	// Commits run again from here: the removed series are marked, so a
	// commit holding one of their refs takes the series of its labels
	// (settle); their records are of no series a commit can reach.
	truncateHook()
	h.samples.Forget(gone)
	h.commitMu.Lock()
	h.settleMinTime()
	h.commitMu.Unlock()
	return nil
}

// truncateHook runs once a truncation lets commits through again (tests
// commit there).
var truncateHook = func() {}

// fence makes mint the oldest time a commit may add and waits for the
// commits in flight, which checked their samples against an older one.
func (h *Head) fence(mint int64) {
	raise(&h.minValidTime, mint)
	h.commitMu.Lock()
	h.commitMu.Unlock() //nolint:staticcheck // a barrier: the lock is the point
}

// settleMinTime raises MinTime, after a truncation, to the oldest sample
// left, but, as Prometheus's head, not into the window appends may still
// fill (where an empty head's MinTime goes); minValidTime rises with it so
// that later blocks do not overlap the ones written.
func (h *Head) settleMinTime() {
	oldest, ok := h.samples.Oldest()
	if !ok {
		oldest = math.MaxInt64
	}
	if oldest > h.mint.Load() {
		t := min(oldest, h.appendableMinValidTime())
		raise(&h.mint, t)
		raise(&h.minValidTime, t)
	}
}

// settle holds truncation off while a commit adds samples (release lets
// it go), and readies ps, appended when the head had had removals
// truncations removing series: it drops from ps the samples before
// minValidTime, which a truncation may have raised since they were
// appended, and moves those of series removed since to the series of their
// labels (revive); err is about the first sample dropped.
func (h *Head) settle(ps *[]pending, removals uint64) (release func(), err error) {
	h.commitMu.RLock()
	minValid := h.minValidTime.Load()
	removed := h.removals.Load() != removals
	kept := (*ps)[:0]
	for _, p := range *ps {
		var perr error
		if p.t < minValid {
			perr = fmt.Errorf("head: series %d at %d: truncated to %d since appended: %w", p.ref, p.t, minValid, storage.ErrOutOfBounds)
		} else if removed && !h.index.Has(p.ref) {
			p.ref, perr = h.revive(p)
		}
		if perr == nil {
			kept = append(kept, p)
		} else if err == nil {
			err = perr
		}
	}
	*ps = kept
	return h.commitMu.RUnlock, err
}

// revive returns the ref of the live series of a pending sample's labels,
// creating it, when a truncation removed the series the sample was
// appended to: as in Prometheus's head (lockForAppend), the sample goes to
// the series of its labels instead of one no query finds. A sample
// appended by ref alone is refused: its labels are gone.
func (h *Head) revive(p pending) (uint32, error) {
	if p.lset.IsEmpty() {
		return 0, fmt.Errorf("head: series %d was removed before the commit and its sample came without labels: %w", p.ref, storage.ErrNotFound)
	}
	ref, err := h.seriesOf(p.lset)
	if err != nil {
		return 0, fmt.Errorf("head: find series %d again by labels: %w", p.ref, err)
	}
	return ref, nil
}

// removeEmpty removes from the index the series holding no sample: those
// the truncation dropped every chunk of, and those created and never
// given one; their records in the samples go too (Forget). The caller
// holds commitMu for writing, so no commit gives them a sample meanwhile.
//
// Commits wait (the caller holds commitMu) until the series are marked
// removed; then removals counts them and release lets commits go while
// the index takes them out of its tables, which at a million series takes
// seconds. It returns the series removed, whose records the caller
// forgets.
func (h *Head) removeEmpty(release func()) []uint32 {
	var gone []uint32
	h.index.DeleteThen(func(ref uint32) bool {
		if h.samples.Holds(ref) {
			return false
		}
		gone = append(gone, ref)
		return true
	}, func() {
		h.removals.Add(1)
		release()
	})
	return gone
}

// raise sets v to t if t is greater.
func raise(v *atomic.Int64, t int64) {
	for old := v.Load(); t > old && !v.CompareAndSwap(old, t); old = v.Load() {
	}
}

// readers are the index readers open on the head, by the mint of their
// range, so that truncation waits for those that may read what it drops.
type readers struct {
	mu      sync.Mutex
	open    map[*indexReader]int64
	changed chan struct{} // closed when a reader closes; nil while none waits
}

func (r *readers) add(ir *indexReader, mint int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open == nil {
		r.open = map[*indexReader]int64{}
	}
	r.open[ir] = mint
}

func (r *readers) remove(ir *indexReader) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.open, ir)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// wait returns once the readers open now on ranges starting before mint
// have closed. Readers opened later are not waited for (so a stream of
// queries cannot hold truncation off): MinTime was raised before, so
// Querier's and ChunkQuerier's readers start after what is dropped.
func (r *readers) wait(ctx context.Context, mint int64) error {
	waitFor := r.overlapping(mint)
	for {
		ch := r.stillOpen(waitFor)
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// overlapping returns the readers open on ranges starting before mint.
func (r *readers) overlapping(mint int64) []*indexReader {
	r.mu.Lock()
	defer r.mu.Unlock()
	var irs []*indexReader
	for ir, m := range r.open {
		if m < mint {
			irs = append(irs, ir)
		}
	}
	return irs
}

// stillOpen returns a channel closed when a reader next closes if one of
// irs is still open, else nil.
func (r *readers) stillOpen(irs []*indexReader) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ir := range irs {
		if _, ok := r.open[ir]; ok {
			if r.changed == nil {
				r.changed = make(chan struct{})
			}
			return r.changed
		}
	}
	return nil
}

// Close lets truncation drop what the reader's range holds.
func (ir *indexReader) Close() error {
	ir.head.readers.remove(ir)
	return nil
}

// Querier queries the head's samples in [mint, maxt], as
// tsdb.NewBlockQuerier(h.Range(mint, maxt), mint, maxt) does: what a
// truncation drops meanwhile is read from the head if the querier was
// open before it started, and else not at all (it is in a block). Merged
// with the blocks' queriers, it is to be taken before them.
func (h *Head) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := tsdb.NewBlockQuerier(h.Range(mint, maxt), mint, maxt)
	if err != nil {
		return nil, fmt.Errorf("head: querier [%d, %d]: %w", mint, maxt, err)
	}
	return q, nil
}

// ChunkQuerier is Querier for chunks.
func (h *Head) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, err := tsdb.NewBlockChunkQuerier(h.Range(mint, maxt), mint, maxt)
	if err != nil {
		return nil, fmt.Errorf("head: chunk querier [%d, %d]: %w", mint, maxt, err)
	}
	return q, nil
}
