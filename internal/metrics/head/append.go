package head

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// errNotYet refuses what this step of the head does not store yet.
var errNotYet = errors.New("head: histograms and start timestamps are not stored yet")

// Appender returns an appender whose samples become visible, all at once,
// on Commit. Like Prometheus's head, it checks each sample against what is
// committed when it is appended, and creates series at once.
func (h *Head) Appender(ctx context.Context) storage.Appender { return &appender{head: h, ctx: ctx} }

type pending struct {
	ref  uint32
	t    int64
	v    float64
	drop bool
	lset labels.Labels // as given, to find the series again if removed before Commit
}

// pendingExemplar is an exemplar waiting for Commit.
type pendingExemplar struct {
	ref  uint32
	e    exemplar.Exemplar
	lset labels.Labels // as given, to find the series again if removed before Commit
}

type appender struct {
	head          *Head
	ctx           context.Context // bounds the wait to queue the WAL write
	samples       []pending
	exemplars     []pendingExemplar
	minValid      int64
	minValidKnown bool
	removals      uint64 // the head's removals when minValid was taken
}

func (a *appender) Append(ref storage.SeriesRef, lset labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if !a.minValidKnown {
		a.minValid, a.minValidKnown = a.head.appendableMinValidTime(), true
		a.removals = a.head.removals.Load()
	}
	if t < a.minValid {
		return 0, storage.ErrOutOfBounds
	}
	id, err := a.series(ref, lset)
	if err != nil {
		return 0, err
	}
	if err := a.head.samples.Appendable(id, t, v); err != nil {
		return 0, err
	}
	if a.samples == nil {
		a.samples = *pendingPool.Get().(*[]pending)
	}
	a.samples = append(a.samples, pending{ref: id, t: t, v: v, lset: lset})
	return storage.SeriesRef(id), nil
}

// series resolves an appender's ref, or the labels if the ref is not one
// of this head's series (or one truncation removed), to a series ref,
// creating the series if new.
func (a *appender) series(ref storage.SeriesRef, lset labels.Labels) (uint32, error) {
	if ref <= math.MaxUint32 && a.head.index.Has(uint32(ref)) {
		return uint32(ref), nil
	}
	return a.head.seriesOf(lset)
}

// errEmptyLabels is made once: a caller appending by a ref the head does
// not hold, without labels, gets it for every sample until it retries with
// them.
var errEmptyLabels = fmt.Errorf("empty labelset: %w", tsdb.ErrInvalidSample)

// seriesOf returns the ref of series lset, creating it if new.
func (h *Head) seriesOf(lset labels.Labels) (uint32, error) {
	lset = lset.WithoutEmpty()
	if lset.IsEmpty() {
		return 0, errEmptyLabels
	}
	if l, dup := lset.HasDuplicateLabelNames(); dup {
		return 0, fmt.Errorf(`label name "%s" is not unique: %w`, l, tsdb.ErrInvalidSample)
	}
	if id, ok := h.index.Lookup(lset); ok {
		return id, nil
	}
	return h.create(lset), nil
}

// Commit writes the samples to the WAL and, once they are durable, adds
// them in the order appended. A sample another appender made out of order
// since is dropped, as Prometheus's head drops it (it is in the WAL, and
// dropped again on replay).
//
// Its exemplars are written to the WAL after its samples, in the same
// commit, as the TSDB's head writes them; the head keeps none in memory
// (the caller's exemplar storage does, and Options.OnExemplar hears of
// them again at replay).
func (a *appender) Commit() error {
	release, first := a.head.settle(&a.samples, a.removals) // against truncation, before the WAL has them
	defer release()
	a.head.settleExemplars(&a.exemplars, a.removals)
	if a.head.log != nil && len(a.samples)+len(a.exemplars) > 0 {
		if err := a.head.logCommit(a.ctx, a.samples, a.exemplars); err != nil {
			a.Rollback()
			return err
		}
	}
	bt := a.head.samples.Batch()
	for _, s := range a.samples {
		bt.Add(s.ref, s.t, s.v)
	}
	bt.Flush()
	if bt.Err != nil && first == nil {
		first = fmt.Errorf("head: %w", bt.Err)
	}
	if bt.Appended > 0 {
		a.head.widen(bt.Mint, bt.Maxt)
	}
	a.head.appended.Add(uint64(bt.Appended))
	a.release()
	if first != nil && !errors.Is(first, storage.ErrOutOfOrderSample) && !errors.Is(first, storage.ErrDuplicateSampleForTimestamp) {
		return first
	}
	return nil
}

func (a *appender) Rollback() error {
	a.release()
	return nil
}

// pendingPool keeps appenders' sample lists: a remote-write request's
// thousands of samples would otherwise grow a new one each time.
var pendingPool = sync.Pool{New: func() any { s := make([]pending, 0, 512); return &s }}

// exemplarPool keeps appenders' exemplar lists, as pendingPool their
// samples: a request with an exemplar a sample grew one of a megabyte.
var exemplarPool = sync.Pool{New: func() any { var s []pendingExemplar; return &s }}

// release gives the sample and exemplar lists back (the appender takes
// others if used again) and forgets the minimum valid time.
func (a *appender) release() {
	if a.samples != nil {
		clear(a.samples) // the labels
		s := a.samples[:0]
		pendingPool.Put(&s)
		a.samples = nil
	}
	if a.exemplars != nil {
		clear(a.exemplars) // the labels
		e := a.exemplars[:0]
		exemplarPool.Put(&e)
		a.exemplars = nil
	}
	a.minValidKnown = false
}

var _ storage.Appender = (*appender)(nil)

func (a *appender) SetOptions(*storage.AppendOptions) {}

// AppendExemplar logs e with the commit's samples, for a series the head
// holds (by ref, else by labels). It takes e as given: the caller's
// exemplar storage checks it (ValidateExemplar) and keeps it once Commit
// returns, as the TSDB's head checks and keeps its own.
func (a *appender) AppendExemplar(ref storage.SeriesRef, lset labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	id, ok := uint32(0), false
	if ref <= math.MaxUint32 && a.head.index.Has(uint32(ref)) {
		id, ok = uint32(ref), true
	} else {
		id, ok = a.head.index.Lookup(lset.WithoutEmpty())
	}
	if !ok {
		return 0, fmt.Errorf("head: exemplar of a series the head does not hold (ref %d): %w", ref, storage.ErrNotFound)
	}
	if !a.minValidKnown { // for settle: a removal since is checked at Commit
		a.minValid, a.minValidKnown = a.head.appendableMinValidTime(), true
		a.removals = a.head.removals.Load()
	}
	e.Labels = e.Labels.WithoutEmpty()
	if a.exemplars == nil {
		a.exemplars = *exemplarPool.Get().(*[]pendingExemplar)
	}
	a.exemplars = append(a.exemplars, pendingExemplar{ref: id, e: e, lset: lset})
	return storage.SeriesRef(id), nil
}

func (a *appender) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errNotYet
}

func (a *appender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errNotYet
}

func (a *appender) UpdateMetadata(ref storage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return ref, nil // metadata is kept by the WAL's step
}

func (a *appender) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, errNotYet
}

// settleExemplars finds again, by their labels, the series of exemplars
// that truncation removed since they were appended (see settle). An
// exemplar whose series is gone, with no sample of this commit to bring it
// back, is left out of the WAL: its series has nothing left in the head.
// The caller holds commitMu for reading (settle's).
func (h *Head) settleExemplars(es *[]pendingExemplar, removals uint64) {
	if len(*es) == 0 || h.removals.Load() == removals {
		return
	}
	kept := (*es)[:0]
	for _, p := range *es {
		if !h.index.Has(p.ref) {
			ref, ok := h.index.Lookup(p.lset.WithoutEmpty())
			if !ok {
				continue
			}
			p.ref = ref
		}
		kept = append(kept, p)
	}
	clear((*es)[len(kept):])
	*es = kept
}
