package traceql

import (
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/limits"
)

// MetricsRequest is the time range of a metrics query. Like Tempo's
// query_range, Start is rounded down and End up to a multiple of Step, one
// extra step is added before Start, and each sample covers the step ending at
// its timestamp: (t-Step, t]. Spans are placed by their start time. Pass
// Step = End-Start for an instant query (/api/metrics/query): one sample at
// End covering [Start, End]. Step 0 picks Tempo's default (about 240 points).
type MetricsRequest struct {
	Start, End time.Time
	Step       time.Duration
	Exemplars  int // maximum exemplars per series; 0 = none
	// Memory is charged before every series, histogram and exemplar is
	// built; the query ends with its refusal. nil: no bound.
	Memory *limits.QueryMemory
}

// MetricsResult is the answer to a metrics query, series sorted by labels.
type MetricsResult struct{ Series []Series }

// Series is one time series. Labels are keyed as Tempo returns them: the by()
// field text ("resource.service.name"), "__name__" for an ungrouped series,
// "p" for quantiles, "__bucket" for histogram buckets, "__meta_type" for compare().
type Series struct {
	Labels    []Attribute
	Samples   []Sample
	Exemplars []Exemplar
}

// Sample is one point; intervals without data are omitted for min, max, avg
// and sum, and are 0 for counts and rates, as in Tempo.
type Sample struct {
	TimestampMs int64
	Value       float64
}

// Exemplar points at a span that contributed to a series.
type Exemplar struct {
	TraceID     string // hex
	SpanID      string // hex
	Value       float64
	TimestampMs int64
}

// ErrTooManySeries is returned when a query would produce more than MaxSeries series.
var ErrTooManySeries = errors.New("too many series")

// MaxSeries bounds the number of series (before quantile expansion) a metrics query may build.
const MaxSeries = 10000

// EvalMetrics runs a metrics query. The caller feeds every trace that may
// have spans starting in [Start, End] through traces (Hints apply as for
// searches); spans outside the range are ignored. Quantiles are computed like
// Tempo from power-of-two buckets, so they are approximations within a factor
// of two, interpolated exponentially inside the bucket.
func (q *Query) EvalMetrics(req MetricsRequest, traces iter.Seq[ptrace.Traces]) (*MetricsResult, error) {
	if q.math != nil {
		return q.evalMath(req, traces)
	}
	if q.metrics == nil {
		return nil, errors.New("not a metrics query: add a metrics function such as | rate()")
	}
	if !req.End.After(req.Start) {
		return nil, fmt.Errorf("end %s must be after start %s", req.End.Format(time.RFC3339), req.Start.Format(time.RFC3339))
	}
	m := newIntervals(req)
	agg, err := newMetricsAgg(q.metrics, m, req)
	if err != nil {
		return nil, err
	}
	for td := range traces {
		if err := q.observeTrace(td, agg); err != nil {
			return nil, err
		}
	}
	return agg.result(), nil
}

func (q *Query) observeTrace(td ptrace.Traces, agg *metricsAgg) error {
	c := newTraceCtx(td)
	defer c.release()
	if len(c.rows) == 0 {
		return nil
	}
	res := q.run(c, c.allSpans())
	var seen []bool
	if len(res) > 1 {
		seen = make([]bool, len(c.rows)) // a span in several spansets counts once
	}
	for _, s := range res {
		for _, i := range s.spans {
			if seen != nil {
				if seen[i] {
					continue
				}
				seen[i] = true
			}
			if err := agg.observe(c, &c.rows[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// intervals maps span start times to sample slots, following Tempo's
// IntervalMapper: slot i covers (start+i*step, start+(i+1)*step].
type intervals struct {
	start, end, step int64
	n                int
	instant          bool
}

func newIntervals(req MetricsRequest) intervals {
	start, end := req.Start.UnixNano(), req.End.UnixNano()
	step := int64(req.Step)
	if step <= 0 {
		step = int64(defaultStep(time.Duration(end - start)))
	}
	if end-start == step {
		return intervals{start: start, end: end, step: step, n: 1, instant: true}
	}
	start -= start % step
	if r := end % step; r != 0 {
		end += step - r
	}
	if start > step {
		start -= step // an extra leading slot, as Tempo's AlignRequest does
	}
	return intervals{start: start, end: end, step: step, n: int((end - start) / step)}
}

// defaultStep mirrors Tempo: about 240 points, rounded down to a common granularity.
func defaultStep(d time.Duration) time.Duration {
	base := d / 240
	if d < time.Minute {
		g := 50 * time.Millisecond
		if base > g {
			return base / g * g
		}
		return g
	}
	for _, g := range []time.Duration{time.Hour, 5 * time.Minute, time.Minute, 15 * time.Second, 5 * time.Second, time.Second} {
		if base > g {
			return base / g * g
		}
	}
	return time.Second
}

func (m intervals) slot(ts int64) int {
	if m.instant {
		if ts < m.start || ts > m.end {
			return -1
		}
		return 0
	}
	if ts <= m.start || ts > m.end {
		return -1
	}
	off := ts - m.start
	i := off / m.step
	if off%m.step == 0 {
		i-- // a timestamp on a boundary belongs to the slot that ends there
	}
	return int(i)
}

func (m intervals) timestampMs(i int) int64 {
	if m.instant {
		return m.end / int64(time.Millisecond)
	}
	return (m.start + int64(i+1)*m.step) / int64(time.Millisecond)
}

// metricsAgg accumulates series for one metrics function.
type metricsAgg struct {
	fn        string
	iv        intervals
	by        []compiledBy
	attr      evalFn // argument of *_over_time
	isDur     bool   // attr is the duration intrinsic: values in seconds
	quantiles []float64
	exemplars int
	series    map[string]*seriesAcc
	keyBuf    []byte
	compare   *compareAcc
	second    []SecondStage
	mem       *limits.QueryMemory
}

type compiledBy struct {
	key  string
	eval evalFn
}

// seriesAcc is the state of one output series (before quantile expansion).
type seriesAcc struct {
	labels    []Attribute
	vals      []float64             // count, sum, min or max per slot
	counts    []float64             // avg_over_time: number of values per slot
	hist      []map[float64]float64 // quantile_over_time: bucket -> count per slot
	exemplars []Exemplar
	exSlots   map[int]bool
}

// Memory estimates: what one slot of one series costs from accumulation to
// the answer (the accumulator's float, the result's Sample and its JSON), a
// series' labels and map entry, a quantile slot's bucket map and one bucket
// in it, and one exemplar.
const (
	bytesPerSlot    = 8 + 16 + 48
	seriesOverhead  = 256
	histMapBytes    = 256
	histBucketBytes = 32
	exemplarBytes   = 160
)

// seriesBytes is what one more series costs before any histogram bucket.
func (a *metricsAgg) seriesBytes() int64 {
	per := bytesPerSlot
	switch a.fn {
	case "avg_over_time":
		per += 8
	case "quantile_over_time":
		per += 8 + (len(a.quantiles)-1)*(bytesPerSlot-8)
	}
	return int64(a.iv.n)*int64(per) + seriesOverhead
}

// newMetricsAgg charges the first series up front, so that a step grid
// whose single series passes the query's memory bound is refused before any
// trace is read.
func newMetricsAgg(ms *MetricsStage, iv intervals, req MetricsRequest) (*metricsAgg, error) {
	a := &metricsAgg{fn: ms.Fn, iv: iv, quantiles: ms.Quantiles, exemplars: req.Exemplars, series: map[string]*seriesAcc{}, second: ms.Second, mem: req.Memory}
	if err := a.mem.Charge(a.seriesBytes()); err != nil {
		return nil, err
	}
	for _, b := range ms.By {
		cf, err := compileField(b)
		if err != nil {
			return nil, err
		}
		a.by = append(a.by, compiledBy{key: b.String(), eval: cf.eval})
	}
	if ms.Attr != nil {
		cf, err := compileField(ms.Attr)
		if err != nil {
			return nil, err
		}
		a.attr = cf.eval
		if ir, ok := ms.Attr.(IntrinsicRef); ok && (ir.Name == "duration" || ir.Name == "traceDuration") {
			a.isDur = true
		}
	}
	if ms.Fn == "compare" {
		sel, err := compilePred(ms.Selection.exprOrTrue())
		if err != nil {
			return nil, err
		}
		a.compare = newCompareAcc(iv, sel, ms, req.Exemplars, req.Memory)
	}
	return a, nil
}

func (f *SpansetFilter) exprOrTrue() FieldExpr {
	if f.Expr == nil {
		return Literal{V: trueValue}
	}
	return f.Expr
}

// number returns the *_over_time argument as a float: durations in seconds.
func (a *metricsAgg) number(c *traceCtx, r *spanRow) (float64, bool) {
	v := a.attr(c, r)
	switch v.t {
	case vDur:
		return float64(v.n) / float64(time.Second), true
	case vInt:
		return float64(v.n), true
	case vFloat:
		if math.IsNaN(v.f) {
			return 0, false
		}
		return v.f, true
	}
	return 0, false
}

// bucket returns the power-of-two bucket of the span's value (seconds for
// durations), or false when the value is missing or below 2 (Tempo drops those).
func (a *metricsAgg) bucket(c *traceCtx, r *spanRow) (float64, bool) {
	v := a.attr(c, r)
	var n uint64
	switch v.t {
	case vDur, vInt:
		if v.n < 2 {
			return 0, false
		}
		n = uint64(v.n)
	case vFloat:
		if !(v.f >= 2) || v.f > math.MaxInt64 {
			return 0, false
		}
		n = uint64(math.Ceil(v.f))
	default:
		return 0, false
	}
	b := log2Bucket(n)
	if v.t == vDur {
		b /= float64(time.Second)
	}
	return b, true
}

// log2Bucket rounds v up to a power of two.
func log2Bucket(v uint64) float64 {
	return float64(uint64(1) << (64 - bits.LeadingZeros64(v-1)))
}

func (a *metricsAgg) observe(c *traceCtx, r *spanRow) error {
	slot := a.iv.slot(int64(r.start))
	if slot < 0 {
		return nil
	}
	if a.compare != nil {
		return a.compare.observe(c, r, slot)
	}
	var hbucket float64
	var num float64
	switch a.fn {
	case "histogram_over_time", "quantile_over_time":
		b, ok := a.bucket(c, r)
		if !ok {
			return nil
		}
		hbucket = b
	case "min_over_time", "max_over_time", "sum_over_time", "avg_over_time":
		n, ok := a.number(c, r)
		if !ok {
			return nil
		}
		num = n
	}
	s, err := a.seriesFor(c, r, hbucket)
	if err != nil {
		return err
	}
	switch a.fn {
	case "rate", "count_over_time", "histogram_over_time":
		s.vals[slot]++
	case "quantile_over_time":
		if err := a.chargeBucket(s, slot, hbucket); err != nil {
			return err
		}
		if s.hist[slot] == nil {
			s.hist[slot] = map[float64]float64{}
		}
		s.hist[slot][hbucket]++
	case "sum_over_time", "avg_over_time":
		if math.IsNaN(s.vals[slot]) {
			s.vals[slot] = 0
		}
		s.vals[slot] += num
		if s.counts != nil {
			s.counts[slot]++
		}
	case "min_over_time":
		if math.IsNaN(s.vals[slot]) || num < s.vals[slot] {
			s.vals[slot] = num
		}
	case "max_over_time":
		if math.IsNaN(s.vals[slot]) || num > s.vals[slot] {
			s.vals[slot] = num
		}
	}
	if a.exemplars > 0 {
		exValue := math.NaN() // filled with the sample value at the end, as Tempo does
		switch a.fn {
		case "quantile_over_time", "min_over_time", "max_over_time", "sum_over_time", "avg_over_time":
			if n, ok := a.number(c, r); ok {
				exValue = n
			}
		}
		return s.addExemplar(r, slot, exValue, a.exemplars, a.iv, a.mem)
	}
	return nil
}

// chargeBucket charges a quantile slot's bucket map and a bucket new to it.
func (a *metricsAgg) chargeBucket(s *seriesAcc, slot int, b float64) error {
	if a.mem == nil {
		return nil
	}
	if s.hist[slot] == nil {
		return a.mem.Charge(histMapBytes + histBucketBytes)
	}
	if _, ok := s.hist[slot][b]; !ok {
		return a.mem.Charge(histBucketBytes)
	}
	return nil
}

// seriesFor finds or creates the series for the span's by() values (plus the
// histogram bucket for histogram_over_time).
func (a *metricsAgg) seriesFor(c *traceCtx, r *spanRow, hbucket float64) (*seriesAcc, error) {
	buf := a.keyBuf[:0]
	var vals [8]value
	vs := vals[:0]
	for _, b := range a.by {
		v := b.eval(c, r)
		vs = append(vs, v)
		buf = append(buf, byte(v.t))
		buf = append(buf, v.text()...)
		buf = append(buf, 0)
	}
	if a.fn == "histogram_over_time" {
		buf = fmt.Appendf(buf, "%g", hbucket)
	}
	a.keyBuf = buf
	if s, ok := a.series[string(buf)]; ok {
		return s, nil
	}
	if len(a.series) >= MaxSeries {
		return nil, fmt.Errorf("%w: the query builds more than %d series, narrow the filter or the by() fields", ErrTooManySeries, MaxSeries)
	}
	if len(a.series) > 0 { // the first was charged by newMetricsAgg
		if err := a.mem.Charge(a.seriesBytes()); err != nil {
			return nil, err
		}
	}
	s := &seriesAcc{labels: a.labelsFor(vs, hbucket), vals: make([]float64, a.iv.n)}
	switch a.fn {
	case "min_over_time", "max_over_time", "sum_over_time", "avg_over_time":
		for i := range s.vals {
			s.vals[i] = math.NaN()
		}
		if a.fn == "avg_over_time" {
			s.counts = make([]float64, a.iv.n)
		}
	case "quantile_over_time":
		s.hist = make([]map[float64]float64, a.iv.n)
	}
	a.series[string(buf)] = s
	return s, nil
}

// labelsFor follows Tempo: nil by() values are dropped, all-nil keeps the
// first label with value "nil", and no by() at all gives __name__=<function>.
func (a *metricsAgg) labelsFor(vs []value, hbucket float64) []Attribute {
	var ls []Attribute
	for i, v := range vs {
		if v.t != vNil {
			ls = append(ls, Attribute{Key: a.by[i].key, Value: v.toPcommon()})
		}
	}
	if len(vs) > 0 && len(ls) == 0 {
		ls = append(ls, Attribute{Key: a.by[0].key, Value: pcommon.NewValueStr("nil")})
	}
	switch a.fn {
	case "histogram_over_time":
		ls = append(ls, Attribute{Key: "__bucket", Value: pcommon.NewValueDouble(hbucket)})
	case "quantile_over_time":
	default:
		if len(vs) == 0 {
			ls = append(ls, Attribute{Key: "__name__", Value: pcommon.NewValueStr(a.fn)})
		}
	}
	return ls
}

// addExemplar keeps at most one exemplar per time bucket, spreading up to
// limit exemplars over the range.
func (s *seriesAcc) addExemplar(r *spanRow, slot int, v float64, limit int, iv intervals, mem *limits.QueryMemory) error {
	if len(s.exemplars) >= limit {
		return nil
	}
	b := slot
	if iv.n > limit {
		b = slot * limit / iv.n
	}
	if s.exSlots == nil {
		s.exSlots = map[int]bool{}
	}
	if s.exSlots[b] {
		return nil
	}
	if err := mem.Charge(exemplarBytes); err != nil {
		return err
	}
	s.exSlots[b] = true
	tid, sid := r.span.TraceID(), r.span.SpanID()
	s.exemplars = append(s.exemplars, Exemplar{
		TraceID: hex.EncodeToString(tid[:]), SpanID: hex.EncodeToString(sid[:]),
		Value: v, TimestampMs: int64(r.start) / int64(time.Millisecond),
	})
	return nil
}

// rawSeries is a series before NaN slots are dropped.
type rawSeries struct {
	labels    []Attribute
	vals      []float64
	exemplars []Exemplar
	scalar    bool // a number in metrics arithmetic, not a series
}

func (a *metricsAgg) result() *MetricsResult {
	if a.compare != nil {
		return a.compare.result()
	}
	return a.finishAll(a.rawResult())
}

// rawResult returns the series with this function's own second stages applied.
func (a *metricsAgg) rawResult() []rawSeries {
	var raw []rawSeries
	for _, s := range a.series {
		if a.fn == "quantile_over_time" {
			raw = append(raw, a.quantileSeries(s)...)
			continue
		}
		vals := s.vals
		switch a.fn {
		case "rate":
			for i := range vals {
				vals[i] /= float64(a.iv.step) / float64(time.Second)
			}
		case "avg_over_time":
			for i := range vals {
				vals[i] /= s.counts[i] // NaN when there was no value
			}
		}
		raw = append(raw, rawSeries{labels: s.labels, vals: vals, exemplars: s.exemplars})
	}
	for _, st := range a.second {
		raw = applySecondStage(st, raw, a.iv.n)
	}
	return raw
}

func (a *metricsAgg) finishAll(raw []rawSeries) *MetricsResult {
	out := &MetricsResult{}
	for _, r := range raw {
		if ser, ok := a.finish(r.labels, r.vals, r.exemplars); ok {
			out.Series = append(out.Series, ser)
		}
	}
	sortSeries(out.Series)
	return out
}

// applySecondStage runs topk/bottomk (per timestamp, like Tempo and
// Prometheus: series outside the top N at a timestamp get no sample there) or
// a sample filter (failing samples are dropped).
func applySecondStage(st SecondStage, in []rawSeries, n int) []rawSeries {
	if st.Op != "topk" && st.Op != "bottomk" {
		op := cmpOps[st.Op]
		for _, r := range in {
			for i, v := range r.vals {
				if !math.IsNaN(v) && !compare(op, floatValue(v), floatValue(st.Value)) {
					r.vals[i] = math.NaN()
				}
			}
		}
		return in
	}
	if len(in) <= st.N {
		return in
	}
	out := make([]rawSeries, len(in))
	for i, r := range in {
		out[i] = rawSeries{labels: r.labels, vals: make([]float64, len(r.vals)), exemplars: r.exemplars}
		for j := range out[i].vals {
			out[i].vals[j] = math.NaN()
		}
	}
	keys := make([]string, len(in))
	for i, r := range in {
		keys[i] = labelKey(r.labels)
	}
	idx := make([]int, 0, len(in))
	for slot := 0; slot < n; slot++ {
		idx = idx[:0]
		for i, r := range in {
			if !math.IsNaN(r.vals[slot]) {
				idx = append(idx, i)
			}
		}
		slices.SortFunc(idx, func(x, y int) int {
			c := cmpFloat(in[y].vals[slot], in[x].vals[slot]) // descending for topk
			if st.Op == "bottomk" {
				c = -c
			}
			if c != 0 {
				return c
			}
			return strings.Compare(keys[x], keys[y])
		})
		for _, i := range idx[:min(st.N, len(idx))] {
			out[i].vals[slot] = in[i].vals[slot]
		}
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// finish turns slot values into samples (skipping NaN), fills placeholder
// exemplar values with the sample of their slot, and drops empty series.
func (a *metricsAgg) finish(labels []Attribute, vals []float64, exemplars []Exemplar) (Series, bool) {
	s := Series{Labels: labels}
	for i, v := range vals {
		if !math.IsNaN(v) {
			s.Samples = append(s.Samples, Sample{TimestampMs: a.iv.timestampMs(i), Value: v})
		}
	}
	if len(s.Samples) == 0 {
		return s, false
	}
	for _, e := range exemplars {
		slot := a.iv.slot(e.TimestampMs * int64(time.Millisecond))
		if slot < 0 || math.IsNaN(vals[slot]) {
			continue
		}
		if math.IsNaN(e.Value) {
			e.Value = vals[slot]
		}
		s.Exemplars = append(s.Exemplars, e)
	}
	slices.SortFunc(s.Exemplars, func(x, y Exemplar) int { return int(x.TimestampMs - y.TimestampMs) })
	return s, true
}

// quantileSeries expands one series into one per requested quantile, labelled
// p=<quantile>; slots without data are 0, as in Tempo.
func (a *metricsAgg) quantileSeries(s *seriesAcc) []rawSeries {
	var out []rawSeries
	// Overall distribution, to give each exemplar to the nearest quantile series.
	total := map[float64]float64{}
	for _, h := range s.hist {
		for b, n := range h {
			total[b] += n
		}
	}
	overall := make([]float64, len(a.quantiles))
	for i, q := range a.quantiles {
		overall[i] = log2Quantile(q, total)
	}
	for qi, q := range a.quantiles {
		labels := append(slices.Clone(s.labels), Attribute{Key: "p", Value: pcommon.NewValueDouble(q)})
		vals := make([]float64, len(s.hist))
		for i, h := range s.hist {
			vals[i] = log2Quantile(q, h)
		}
		var ex []Exemplar
		for _, e := range s.exemplars {
			if nearest(e.Value, overall) == qi {
				ex = append(ex, e)
			}
		}
		out = append(out, rawSeries{labels: labels, vals: vals, exemplars: ex})
	}
	return out
}

func nearest(v float64, targets []float64) int {
	best, bestDiff := -1, math.Inf(1)
	for i, t := range targets {
		if d := math.Abs(v - t); d < bestDiff {
			best, bestDiff = i, d
		}
	}
	return best
}

// log2Quantile estimates quantile p from power-of-two buckets (upper bound ->
// count): find the bucket holding the p-th sample and interpolate
// exponentially between the previous bucket's bound and this one's.
func log2Quantile(p float64, hist map[float64]float64) float64 {
	if math.IsNaN(p) || p < 0 || p > 1 || len(hist) == 0 {
		return 0
	}
	bounds := make([]float64, 0, len(hist))
	var totalCount float64
	for b, n := range hist {
		bounds = append(bounds, b)
		totalCount += n
	}
	slices.Sort(bounds)
	if totalCount == 0 {
		return 0
	}
	maxSamples := math.Max(1, math.Ceil(p*totalCount))
	var total float64
	bucket := 0
	for i, b := range bounds {
		bucket = i
		if total+hist[b] > maxSamples {
			break
		}
		total += hist[b]
		if total == maxSamples {
			return b
		}
	}
	interp := (maxSamples - total) / hist[bounds[bucket]]
	maxV := math.Log2(bounds[bucket])
	minV := maxV - 1
	if bucket > 0 {
		minV = math.Log2(bounds[bucket-1])
	}
	return math.Pow(2, minV+(maxV-minV)*interp)
}

// sortSeries orders series by their labels so results are stable.
func sortSeries(ss []Series) {
	slices.SortStableFunc(ss, func(a, b Series) int { return strings.Compare(labelKey(a.Labels), labelKey(b.Labels)) })
}

func labelKey(ls []Attribute) string {
	var sb strings.Builder
	for _, l := range ls {
		sb.WriteString(l.Key)
		sb.WriteByte(0)
		sb.WriteString(l.Value.AsString())
		sb.WriteByte(0)
	}
	return sb.String()
}
