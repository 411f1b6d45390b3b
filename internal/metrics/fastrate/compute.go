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
	"github.com/prometheus/prometheus/util/annotations"
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
	steps  []step
}

// step is a group's sum at one step: together, as each addition reads
// and writes all three.
type step struct {
	sum, c float64
	seen   bool
}

// computed is a target's series and what the engine would have counted
// reading it.
type computed struct {
	series []promql.Series
	// samples is the engine's count of the samples the selector's windows
	// held, or of its values (its TotalSamples); peak the most it held at
	// once for the target (under its sample limit).
	samples int64
	peak    int
	chunks  bool // a rate target read whole chunks
}

// compute evaluates t over g's steps from q, as the engine's
// `sum (rate(...))` or `count (sel)` would: the groups in the order the
// engine creates them, each a series with a point at the steps it has a
// value and a staleness marker at the others (so the engine, reading it as
// a selector, sees exactly those values). A rate target reads whole chunks
// from cq when it can (nil: never), the series' iterators of q otherwise.
func (t *target) compute(ctx context.Context, q storage.Querier, cq storage.ChunkQuerier, g grid, maxSamples int) (computed, error) {
	if cq != nil && !t.instant {
		c, err := t.computeChunks(ctx, cq, g, maxSamples)
		if !errors.Is(err, errNotPlain) {
			c.chunks = true
			return c, err
		}
	}
	return t.computeIterators(ctx, q, g, maxSamples)
}

// computeIterators is compute reading each series through its iterator.
func (t *target) computeIterators(ctx context.Context, q storage.Querier, g grid, maxSamples int) (computed, error) {
	set := q.Select(ctx, false, t.hints(g), t.vs.LabelMatchers...)
	sums := t.newSums(g, maxSamples)
	var (
		it chunkenc.Iterator
		r  reader
		vr = storage.NewMemoizedEmptyIterator(t.lookback)
	)
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return computed{}, contextErr(err)
		}
		s := set.At()
		it = s.Iterator(it)
		var err error
		if t.instant {
			vr.Reset(it)
			var n int
			if n, err = t.values(vr, g, s.Labels(), sums); err == nil {
				sums.samples += int64(n)
				err = sums.hold(n, 0)
			}
		} else {
			r.reset(it)
			err = sums.rates(&r, s.Labels())
		}
		if err != nil {
			return computed{}, err
		}
	}
	return sums.finish(ctx, set.Err(), set.Warnings())
}

func (t *target) newSums(g grid, maxSamples int) *sums {
	return &sums{t: t, g: g, steps: g.steps(), max: maxSamples, byKey: map[uint64]int{}}
}

// rates adds the rates of the series of labels ls, read by r, to its
// group.
func (s *sums) rates(r *reader, ls labels.Labels) error {
	sr, err := s.t.rates(r, s.g, ls, s, s.max-s.points)
	if err == nil && sr.n > 0 && !counterName(ls) {
		err = errFallback // the engine's info annotation
	}
	if err != nil {
		return err
	}
	s.samples += sr.read
	s.peak = max(s.peak, s.points+sr.widest)
	if sr.n == 0 {
		return nil
	}
	// The engine adds a series' rates while it still holds the samples of
	// its last window.
	return s.hold(sr.n, sr.last)
}

// hold counts n more points the engine keeps (rates or values), beside
// extra samples it holds at that moment: errFallback past its limit.
func (s *sums) hold(n, extra int) error {
	if s.points+n+extra > s.max {
		return errFallback // the engine's sample limit
	}
	s.peak = max(s.peak, s.points+n+extra)
	s.points += n
	return nil
}

// finish is the groups as series once the selector's set ended with err
// and warnings.
func (s *sums) finish(ctx context.Context, err error, warnings annotations.Annotations) (computed, error) {
	if err != nil {
		if ctx.Err() != nil {
			return computed{}, contextErr(ctx.Err())
		}
		return computed{}, errFallback
	}
	if len(warnings) > 0 {
		return computed{}, errFallback
	}
	return computed{series: s.t.output(s.groups, s.g), samples: s.samples, peak: s.peak}, nil
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

// seriesRates is what rates read of one series: the steps with a rate,
// the samples its windows held, those of its last and of its widest.
type seriesRates struct {
	n            int
	read         int64
	last, widest int
}

// rates adds one series' rate at each step to its group; a window over
// room (the engine's sample limit less the rates of the series before)
// falls back.
func (t *target) rates(r *reader, g grid, ls labels.Labels, sums *sums, room int) (seriesRates, error) {
	var (
		grp *group
		sr  seriesRates
	)
	for k, ts := 0, g.start; ts <= g.end; k, ts = k+1, ts+g.interval {
		maxt := ts - t.offset
		lo, hi, err := r.window(maxt-t.rng, maxt)
		if err != nil {
			return sr, err
		}
		sr.last = hi - lo
		if hi == lo {
			continue
		}
		sr.read += int64(hi - lo)
		if hi-lo > room {
			return sr, errFallback
		}
		sr.widest = max(sr.widest, hi-lo)
		if hi-lo < 2 {
			continue // no rate from one sample
		}
		v := t.extrapolate(r.increase(lo, hi), r.pts[lo], r.pts[hi-1], hi-lo, ts, &sums.memo)
		sr.n++
		if grp == nil {
			grp = sums.group(ls)
		}
		grp.add(k, v)
	}
	return sr, nil
}

// sums are a target's groups, in the order the engine makes them.
type sums struct {
	t       *target
	g       grid
	steps   int
	samples int64 // the engine's count of the samples read
	points  int   // the rate matrix's or the selector's points, as the engine counts them
	peak    int   // the most samples the engine held at once
	max     int   // the engine's sample limit
	groups  []*group
	byKey   map[uint64]int
	buf     []byte
	memo    factorMemo // rates' last extrapolation factor
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
	grp := &group{labels: lb.Labels(), steps: make([]step, s.steps)}
	s.byKey[key] = len(s.groups)
	s.groups = append(s.groups, grp)
	return grp
}

// inc counts a value at step k as the engine's count does.
func (grp *group) inc(k int) {
	st := &grp.steps[k]
	st.sum++
	st.seen = true
}

// add adds v at step k as the engine's sum does: the first value as is,
// the next ones by Kahan summation.
func (grp *group) add(k int, v float64) {
	st := &grp.steps[k]
	if !st.seen {
		*st = step{sum: v, seen: true}
		return
	}
	st.sum, st.c = kahansum.Inc(v, st.sum, st.c)
}

// output is the groups as series: the engine's final `sum + c` at each
// step with a value, a staleness marker at the others.
func (t *target) output(groups []*group, g grid) []promql.Series {
	out := make([]promql.Series, len(groups))
	for i, grp := range groups {
		fs := make([]promql.FPoint, 0, len(grp.steps))
		for k, st := range grp.steps {
			ts := g.start + int64(k)*g.interval
			if st.seen {
				fs = append(fs, promql.FPoint{T: ts, F: st.sum + st.c})
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
// evaluated at ts: result times the factor that factor computes with the
// engine's expressions in its order, so the floats round the same.
//
// Unless the counter's zero point clamps the start, the factor depends on
// the window's times and n alone, which are the same from step to step
// of a series scraped at the step's interval: m keeps the last one, and
// the engine's six divisions are skipped while the key repeats (the
// factor is the very float they give, so the product is the engine's).
func (t *target) extrapolate(result float64, first, last promql.FPoint, n int, ts int64, m *factorMemo) float64 {
	// When first.F ≥ 2·result the zero point lies at least
	// 2·sampledInterval back (each rounding is monotonic), beyond
	// durationToStart (under 1.1·averageDurationBetweenSamples ≤
	// 1.1·sampledInterval): the engine's division changes nothing then,
	// and most windows of a counter that has run a while skip it.
	if result > 0 && first.F >= 0 && first.F < 2*result {
		return result * t.factor(first, last, n, ts, result)
	}
	key := factorKey{first: first.T - ts, last: last.T - ts, n: n}
	if !m.ok || m.key != key {
		m.key, m.f, m.ok = key, t.factor(first, last, n, ts, 0), true
	}
	return result * m.f
}

// factorKey is what the factor depends on when no zero point clamps it:
// the window's first and last times relative to its step, and n.
type factorKey struct {
	first, last int64
	n           int
}

// factorMemo is the last factor computed without a zero-point clamp.
type factorMemo struct {
	key factorKey
	f   float64
	ok  bool
}

// factor is extrapolatedRate's factor for the window: with result > 0, the
// counter's zero point may clamp its start; with result 0 it does not.
func (t *target) factor(first, last promql.FPoint, n int, ts int64, result float64) float64 {
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
	if result > 0 {
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
	return factor
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
