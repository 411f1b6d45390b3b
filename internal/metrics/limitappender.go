package metrics

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/storage"
)

// maxAhead is how far in the future a sample may be, as in Prometheus's
// receiver: later ones are refused as out of bounds.
const maxAhead = 10 * time.Minute

// limitedAppender applies the stock receiver's rules in front of the head
// appender: no samples or exemplars too far in the future, and histogram
// schemas above the maximum reduced to it.
type limitedAppender struct {
	app     storage.ExemplarAppenderV2
	maxTime int64
	// minTime refuses samples older than the retention: an empty TSDB takes
	// any timestamp (a sample at -1e12 ms would cut a block dated 1938 that
	// the next retention pass deletes), so the sender is told instead.
	minTime   int64
	retention time.Duration
}

// newLimitedAppender bounds timestamps to (now-retention, now+maxAhead];
// retention 0 leaves the past open.
func newLimitedAppender(app storage.ExemplarAppenderV2, now time.Time, retention time.Duration) limitedAppender {
	a := limitedAppender{app: app, maxTime: timestamp.FromTime(now.Add(maxAhead)), minTime: math.MinInt64, retention: retention}
	if retention > 0 {
		a.minTime = timestamp.FromTime(now.Add(-retention))
	}
	return a
}

func errFuture() error {
	return fmt.Errorf("%w: timestamp is too far in the future", storage.ErrOutOfBounds)
}

func (a limitedAppender) errPast() error {
	return fmt.Errorf("%w: timestamp is too far in the past, older than the %s of metrics.retention", storage.ErrOutOfBounds, model.Duration(a.retention))
}

// checkTime refuses t outside the appender's bounds.
func (a limitedAppender) checkTime(t int64) error {
	switch {
	case t > a.maxTime:
		return errFuture()
	case t < a.minTime:
		return a.errPast()
	}
	return nil
}

func (a limitedAppender) appendFloat(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, opts storage.AOptions) (storage.SeriesRef, error) {
	if err := a.checkTime(t); err != nil {
		return 0, err
	}
	return a.app.Append(ref, ls, st, t, v, nil, nil, opts)
}

func (a limitedAppender) appendHistogram(ref storage.SeriesRef, ls labels.Labels, st, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if err := a.checkTime(t); err != nil {
		return 0, err
	}
	if h != nil && histogram.IsExponentialSchemaReserved(h.Schema) && h.Schema > histogram.ExponentialSchemaMax {
		if err := h.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return 0, err
		}
	}
	if fh != nil && histogram.IsExponentialSchemaReserved(fh.Schema) && fh.Schema > histogram.ExponentialSchemaMax {
		if err := fh.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return 0, err
		}
	}
	return a.app.Append(ref, ls, st, t, 0, h, fh, opts)
}

// appendExemplars appends exemplars sorted by time; those too far in the future
// are reported in an AppendPartialError with their indexes.
func (a limitedAppender) appendExemplars(ref storage.SeriesRef, ls labels.Labels, exs []exemplar.Exemplar) (storage.SeriesRef, error) {
	var partial *storage.AppendPartialError
	valid := exs
	for i, e := range exs {
		if e.Ts <= a.maxTime {
			continue
		}
		// Sorted by time: everything from here on is too late.
		valid = exs[:i]
		partial = &storage.AppendPartialError{}
		for j := i; j < len(exs); j++ {
			partial.ExemplarErrors = append(partial.ExemplarErrors, storage.ExemplarError{Index: j, Err: errFuture()})
		}
		break
	}
	if len(valid) == 0 {
		return ref, partial.ToError()
	}
	ref, err := a.app.AppendExemplars(ref, ls, valid)
	partial, err = partial.Handle(err)
	if err != nil {
		return ref, err
	}
	return ref, partial.ToError()
}
