package fastrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/schema"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/kahansum"
)

// errFallback says a target holds something whose answer this package does
// not reproduce (histograms, an annotation, a storage warning or error,
// the sample limit): the engine answers the whole query instead.
var errFallback = errors.New("fastrate: answered by the engine")

// grid is a range query's steps, ms.
type grid struct{ start, end, interval int64 }

func (g grid) steps() int { return int((g.end-g.start)/g.interval) + 1 }

// group is one output series of a target's sum or count: per step the
// engine's Kahan sum and its compensation, in the order its series reach
// it, or the count.
type group struct {
	labels labels.Labels
	sum, c []float64
	seen   []bool
}

// compute evaluates t over g's steps from q, as the engine's
// `sum (rate(...))` or `count (sel)` would: the groups in the order the
// engine creates them, each a series with a point at the steps it has a
// value and a staleness marker at the others (so the engine, reading it as
// a selector, sees exactly those values). samples is the engine's count of
// the samples the selector's windows held, or of its values (its
// TotalSamples).
func (t *target) compute(ctx context.Context, q storage.Querier, g grid, maxSamples int) ([]promql.Series, int64, error) {
	set := q.Select(ctx, false, t.hints(g), t.vs.LabelMatchers...)
	sums := &sums{t: t, steps: g.steps(), byKey: map[uint64]int{}}
	var (
		it      chunkenc.Iterator
		r       reader
		vr      = storage.NewMemoizedEmptyIterator(t.lookback)
		points  int // the rate matrix's or the selector's points, as the engine counts them
		samples int64
	)
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return nil, 0, contextErr(err)
		}
		s := set.At()
		it = s.Iterator(it)
		var (
			n    int
			read int64
			err  error
		)
		if t.instant {
			vr.Reset(it)
			n, err = t.values(vr, g, s.Labels(), sums)
			read = int64(n)
		} else {
			r.reset(it)
			n, read, err = t.rates(&r, g, s.Labels(), sums, maxSamples-points)
			if err == nil && n > 0 && !counterName(s.Labels()) {
				err = errFallback // the engine's info annotation
			}
		}
		if err != nil {
			return nil, 0, err
		}
		if points += n; points > maxSamples {
			return nil, 0, errFallback // the engine's sample limit
		}
		samples += read
	}
	if err := set.Err(); err != nil {
		if ctx.Err() != nil {
			return nil, 0, contextErr(ctx.Err())
		}
		return nil, 0, errFallback
	}
	if len(set.Warnings()) > 0 {
		return nil, 0, errFallback
	}
	return t.output(sums.groups, g), samples, nil
}

// hints are the engine's for t's selector: the blocks and chunks read,
// and so the samples, are the engine's.
func (t *target) hints(g grid) *storage.SelectHints {
	if t.instant {
		return &storage.SelectHints{
			Start: g.start - (t.lookback - 1) - t.offset, End: g.end - t.offset,
			Step: g.interval, Func: t.fn, By: t.by, Grouping: t.byLabels,
		}
	}
	return &storage.SelectHints{
		Start: g.start - (t.rng - 1) - t.offset, End: g.end - t.offset,
		Step: g.interval, Range: t.rng, Func: t.fn,
	}
}

// values adds one series' value at each step to its group, or counts it:
// n is the steps with a value. The value is the engine's
// vectorSelectorSingle's, read with the same calls of the same memoized
// iterator (so a merged series yields the same sample): the latest sample
// in (t − lookback, t], none if it is a staleness marker.
func (t *target) values(it *storage.MemoizedSeriesIterator, g grid, ls labels.Labels, sums *sums) (n int, err error) {
	var grp *group
	for k, ts := 0, g.start; ts <= g.end; k, ts = k+1, ts+g.interval {
		refTime := ts - t.offset
		var (
			at   int64
			v    float64
			hist bool
		)
		vt := it.Seek(refTime)
		switch vt {
		case chunkenc.ValNone:
			if it.Err() != nil {
				return 0, errFallback // the engine's own error
			}
		case chunkenc.ValFloat:
			at, v = it.At()
		default:
			at, hist = it.AtT(), true
		}
		if vt == chunkenc.ValNone || at > refTime {
			_, pt, pv, ph, ok := it.PeekPrev()
			if !ok || pt <= refTime-t.lookback {
				continue
			}
			v, hist = pv, ph != nil
		}
		if hist {
			return 0, errFallback // histograms: the engine's
		}
		if value.IsStaleNaN(v) {
			continue
		}
		n++
		if grp == nil {
			grp = sums.group(ls)
		}
		if t.count {
			grp.inc(k)
		} else {
			grp.add(k, v)
		}
	}
	return n, nil
}

// rates adds one series' rate at each step to its group: n is the steps
// with a rate, read the samples its windows held; a window over room
// (the engine's sample limit less the rates of the series before) falls
// back.
func (t *target) rates(r *reader, g grid, ls labels.Labels, sums *sums, room int) (n int, read int64, err error) {
	var grp *group
	for k, ts := 0, g.start; ts <= g.end; k, ts = k+1, ts+g.interval {
		maxt := ts - t.offset
		lo, hi, err := r.window(maxt-t.rng, maxt)
		if err != nil {
			return 0, 0, err
		}
		if hi == lo {
			continue
		}
		read += int64(hi - lo)
		if hi-lo > room {
			return 0, 0, errFallback
		}
		if hi-lo < 2 {
			continue // no rate from one sample
		}
		v := t.extrapolate(r.increase(lo, hi), r.pts[lo], r.pts[hi-1], hi-lo, ts)
		n++
		if grp == nil {
			grp = sums.group(ls)
		}
		grp.add(k, v)
	}
	return n, read, nil
}

// sums are a target's groups, in the order the engine makes them.
type sums struct {
	t      *target
	steps  int
	groups []*group
	byKey  map[uint64]int
	buf    []byte
}

// group is the group of a series with labels ls, made on its first
// point: the engine makes a group when the first series with points in it
// reaches the aggregation, and tells groups apart by the same hash.
func (s *sums) group(ls labels.Labels) *group {
	var key uint64
	switch {
	case s.t.without:
		key, s.buf = ls.HashWithoutLabels(s.buf, s.t.grouping...)
	case len(s.t.grouping) > 0:
		key, s.buf = ls.HashForLabels(s.buf, s.t.grouping...)
	}
	if i, ok := s.byKey[key]; ok {
		return s.groups[i]
	}
	lb := labels.NewBuilder(ls)
	switch {
	case s.t.without:
		lb.Del(s.t.grouping...)
		schema.Metadata{}.SetToLabels(lb)
	case len(s.t.grouping) > 0:
		lb.Keep(s.t.grouping...)
	default:
		lb.Reset(labels.EmptyLabels())
	}
	grp := &group{labels: lb.Labels(), sum: make([]float64, s.steps), c: make([]float64, s.steps), seen: make([]bool, s.steps)}
	s.byKey[key] = len(s.groups)
	s.groups = append(s.groups, grp)
	return grp
}

// inc counts a value at step k as the engine's count does.
func (grp *group) inc(k int) {
	grp.sum[k]++
	grp.seen[k] = true
}

// add adds v at step k as the engine's sum does: the first value as is,
// the next ones by Kahan summation.
func (grp *group) add(k int, v float64) {
	if !grp.seen[k] {
		grp.sum[k], grp.c[k], grp.seen[k] = v, 0, true
		return
	}
	grp.sum[k], grp.c[k] = kahansum.Inc(v, grp.sum[k], grp.c[k])
}

// output is the groups as series: the engine's final `sum + c` at each
// step with a value, a staleness marker at the others.
func (t *target) output(groups []*group, g grid) []promql.Series {
	out := make([]promql.Series, len(groups))
	for i, grp := range groups {
		fs := make([]promql.FPoint, 0, len(grp.sum))
		for k, seen := range grp.seen {
			ts := g.start + int64(k)*g.interval
			if seen {
				fs = append(fs, promql.FPoint{T: ts, F: grp.sum[k] + grp.c[k]})
			} else {
				fs = append(fs, promql.FPoint{T: ts, F: math.Float64frombits(value.StaleNaN)})
			}
		}
		out[i] = promql.Series{Metric: grp.labels, Floats: fs}
	}
	return out
}

// extrapolate is the engine's extrapolatedRate for a counter's float
// window of n ≥ 2 samples from first to last whose increase is result,
// evaluated at ts: the same expressions in the same order, so the floats
// round the same.
func (t *target) extrapolate(result float64, first, last promql.FPoint, n int, ts int64) float64 {
	rangeStart := ts - t.rangeOffset
	rangeEnd := ts - t.offset
	durationToStart := float64(first.T-rangeStart) / 1000
	durationToEnd := float64(rangeEnd-last.T) / 1000
	sampledInterval := float64(last.T-first.T) / 1000
	averageDurationBetweenSamples := sampledInterval / float64(n-1)
	extrapolationThreshold := averageDurationBetweenSamples * 1.1
	if durationToStart >= extrapolationThreshold {
		durationToStart = averageDurationBetweenSamples / 2
	}
	// Counters cannot be negative: the zero point clamps the start.
	durationToZero := durationToStart
	if result > 0 && first.F >= 0 {
		durationToZero = sampledInterval * (first.F / result)
	}
	if durationToZero < durationToStart {
		durationToStart = durationToZero
	}
	if durationToEnd >= extrapolationThreshold {
		durationToEnd = averageDurationBetweenSamples / 2
	}
	factor := 1.0
	if sampledInterval != 0 {
		factor = (sampledInterval + durationToStart + durationToEnd) / sampledInterval
	}
	if t.isRate {
		factor /= t.rangeDur
	}
	return result * factor
}

// counterName reports whether rate over a series of this name raises no
// info annotation: the engine's suffix check.
func counterName(ls labels.Labels) bool {
	name := ls.Get(model.MetricNameLabel)
	return name == "" || strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_sum") ||
		strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_bucket")
}

// contextErr is the engine's error for a query ended by its context.
func contextErr(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return promql.ErrQueryCanceled("expression evaluation")
	case errors.Is(err, context.DeadlineExceeded):
		return promql.ErrQueryTimeout("expression evaluation")
	}
	return fmt.Errorf("fastrate: %w", err)
}
