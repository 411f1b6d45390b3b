package metrics

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/metrics/head"
)

// appender is the tenant's V1 appender (the span-metrics generator's): the
// TSDB's, or, with an own head, the split appender behind the V1 interface,
// so that V1 appends take the route V2 ones take. Prometheus's storage
// package has no full adapter from AppenderV2 to V1 (AppenderV2AsLimitedV1
// has neither exemplars, start timestamps, metadata nor options).
func (t *tenantDB) appender(ctx context.Context) storage.Appender {
	if t.own == nil {
		return t.db.Appender(ctx)
	}
	return &splitAppenderV1{s: t.split(ctx), head: t.own.head, oooWindow: t.oooWindow > 0}
}

// splitAppenderV1 gives each V1 call the answer the TSDB's V1 appender
// gives it, over splitAppender: floats and their exemplars to the own head,
// histograms and floats the own head refuses as out of order to the TSDB.
//
// Metadata is not kept (UpdateMetadata takes it and drops it): the own
// head keeps none yet, and the TSDB's V2 appender takes metadata only with
// a sample, while a V1 caller updates it after the sample.
type splitAppenderV1 struct {
	s         *splitAppender
	head      *head.Head
	oooWindow bool                 // out-of-order samples are accepted
	opts      storage.AOptions     // RejectOutOfOrder, from SetOptions
	one       [1]exemplar.Exemplar // AppendExemplar's, without an allocation a call
}

var _ storage.Appender = (*splitAppenderV1)(nil)

// SetOptions takes DiscardOutOfOrder: such an appender refuses out-of-order
// floats rather than send them to the TSDB.
func (a *splitAppenderV1) SetOptions(opts *storage.AppendOptions) {
	a.opts.RejectOutOfOrder = opts != nil && opts.DiscardOutOfOrder
}

func (a *splitAppenderV1) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	return a.s.Append(ref, l, 0, t, v, nil, nil, a.opts)
}

func (a *splitAppenderV1) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return a.s.Append(ref, l, 0, t, 0, h, fh, a.opts)
}

// AppendExemplar adds e to the series' exemplars at Commit: the own head's
// for its series, the TSDB's for the others. As with the TSDB's, a
// duplicate is dropped quietly, any other refusal is the error itself (not
// V2's AppendPartialError), and a series neither head holds is an error.
func (a *splitAppenderV1) AppendExemplar(ref storage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	a.one[0] = e
	defer func() { a.one[0] = exemplar.Exemplar{} }()
	var got storage.SeriesRef
	var err error
	if ref == 0 && !a.head.HasSeries(l.WithoutEmpty()) {
		// Not the own head's: the TSDB's looks the labels up.
		ea, ok := a.s.db.(storage.ExemplarAppenderV2)
		if !ok {
			return 0, fmt.Errorf("append exemplar: the TSDB's appender %T takes none", a.s.db)
		}
		got, err = ea.AppendExemplars(0, l, a.one[:])
	} else {
		got, err = a.s.AppendExemplars(ref, l, a.one[:])
	}
	var partial *storage.AppendPartialError
	if errors.As(err, &partial) && len(partial.ExemplarErrors) > 0 {
		return 0, partial.ExemplarErrors[0].Err
	}
	if err != nil {
		return 0, err
	}
	return got, nil
}

// AppendSTZeroSample appends a zero at st before a float sample at t, to
// the head that holds the series: the own head unless the series' floats
// went to the TSDB's. A zero out of order is refused, never sent on as an
// out-of-order sample (the TSDB's appender refuses it too: series started
// long ago would otherwise get one at every append), with the TSDB's
// errors: ErrOutOfOrderST when an out-of-order window is set, else the
// refusal itself.
func (a *splitAppenderV1) AppendSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64) (storage.SeriesRef, error) {
	if st >= t {
		return 0, storage.ErrSTNewerThanSample
	}
	var got storage.SeriesRef
	var err error
	if ref != 0 && ref&ownRef == 0 {
		got, err = a.s.db.Append(ref, l, 0, st, 0, nil, nil, storage.AOptions{RejectOutOfOrder: true})
	} else {
		got, err = a.s.own.Append(ownRefOf(ref), l, st, 0)
		got |= ownRef
	}
	if err == nil {
		return got, nil
	}
	if a.oooWindow && (errors.Is(err, storage.ErrOutOfOrderSample) || errors.Is(err, storage.ErrOutOfBounds)) {
		return 0, storage.ErrOutOfOrderST
	}
	return 0, err
}

// AppendHistogramSTZeroSample appends a zero histogram at st (a counter
// reset, of h's or fh's schema, as the TSDB's appender makes it) to the
// TSDB, which holds the histograms. A zero out of order is refused with
// ErrOutOfOrderST, as the TSDB's appender refuses it.
func (a *splitAppenderV1) AppendHistogramSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if st >= t {
		return 0, storage.ErrSTNewerThanSample
	}
	var zh *histogram.Histogram
	var zfh *histogram.FloatHistogram
	switch {
	case h != nil:
		zh = &histogram.Histogram{CounterResetHint: histogram.CounterReset, Schema: h.Schema, ZeroThreshold: h.ZeroThreshold, CustomValues: h.CustomValues}
	case fh != nil:
		zfh = &histogram.FloatHistogram{CounterResetHint: histogram.CounterReset, Schema: fh.Schema, ZeroThreshold: fh.ZeroThreshold, CustomValues: fh.CustomValues}
	default:
		return ref, nil // nothing to take the zero's shape from; the TSDB appends none either
	}
	got, err := a.s.db.Append(dbRef(ref), l, 0, st, 0, zh, zfh, storage.AOptions{RejectOutOfOrder: true})
	if errors.Is(err, storage.ErrOutOfOrderSample) {
		return 0, storage.ErrOutOfOrderST
	}
	return got, err
}

// UpdateMetadata drops m (see splitAppenderV1).
func (a *splitAppenderV1) UpdateMetadata(ref storage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return ref, nil
}

func (a *splitAppenderV1) Commit() error   { return a.s.Commit() }
func (a *splitAppenderV1) Rollback() error { return a.s.Rollback() }
