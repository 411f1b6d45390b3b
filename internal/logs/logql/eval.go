package logql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/regexp"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
)

// stepMatrix is an intermediate metric result: series aligned on the
// query's steps, ok[i] saying whether a value exists at step i.
type stepMatrix struct {
	series []*stepSeries
	scalar bool // a number literal: one unlabelled series, no matching
	sorted bool // keep order (sort, sort_desc, topk)
}

type stepSeries struct {
	labels labels.Labels
	vals   []float64
	ok     []bool
}

type evaluator struct {
	e     *Engine
	ctx   context.Context
	p     Params
	ts    []int64 // step timestamps, Unix ms
	stats Stats
}

func (ev *evaluator) newSeries(ls labels.Labels) *stepSeries {
	return &stepSeries{labels: ls, vals: make([]float64, len(ev.ts)), ok: make([]bool, len(ev.ts))}
}

func (ev *evaluator) eval(x SampleExpr) (*stepMatrix, error) {
	switch x := x.(type) {
	case *RangeAggExpr:
		return ev.evalRange(x)
	case *VectorAggExpr:
		return ev.evalVectorAgg(x)
	case *BinOpExpr:
		return ev.evalBinOp(x)
	case *NumberExpr:
		s := ev.newSeries(labels.EmptyLabels())
		for i := range s.vals {
			s.vals[i], s.ok[i] = x.Value, true
		}
		return &stepMatrix{series: []*stepSeries{s}, scalar: true}, nil
	case *VectorExpr:
		s := ev.newSeries(labels.EmptyLabels())
		for i := range s.vals {
			s.vals[i], s.ok[i] = x.Value, true
		}
		return &stepMatrix{series: []*stepSeries{s}}, nil
	case *LabelReplaceExpr:
		return ev.evalLabelReplace(x)
	}
	return nil, fmt.Errorf("unsupported expression %T", x)
}

// rangeSamples are the samples of one output series of a range aggregation,
// in time order.
type rangeSamples struct {
	labels labels.Labels
	ts     []int64 // Unix ns
	vals   []float64
}

func (ev *evaluator) evalRange(x *RangeAggExpr) (*stepMatrix, error) {
	pl, err := newPipeline(x.Log.Stages)
	if err != nil {
		return nil, err
	}
	if sq, ok := ev.e.q.(logs.SampleQuerier); ok && countOnly(x, pl) {
		m, err := ev.evalCounts(sq, x, pl)
		if !errors.Is(err, logs.ErrEntriesOnly) {
			return m, err
		}
	}
	rng, off := x.Range.Nanoseconds(), x.Offset.Nanoseconds()
	first, last := ev.ts[0]*int64(time.Millisecond), ev.ts[len(ev.ts)-1]*int64(time.Millisecond)
	it, err := ev.e.q.Select(ev.ctx, ev.p.Tenant, logs.SelectParams{
		Matchers: x.Log.Matchers, Start: first - off - rng + 1, End: last - off + 1,
		Direction: logs.Forward, LineFilters: pl.pushed,
	})
	if err != nil {
		return nil, fmt.Errorf("select: %w", err)
	}
	defer it.Close()

	var unwrapConv func(string) (float64, error)
	var post []stageFn
	if x.Unwrap != nil {
		unwrapConv = converter(x.Unwrap.Conv)
		for _, f := range x.Unwrap.PostFilters {
			fn, err := compileLabelFilter(f)
			if err != nil {
				return nil, err
			}
			post = append(post, fn)
		}
	}
	series := map[string]*rangeSamples{}
	var keyBuf []byte
	var lastStream labels.Labels
	var lastSeries *rangeSamples
	n := 0
	for it.Next() {
		if n++; n%4096 == 0 && ev.ctx.Err() != nil {
			return nil, ev.ctx.Err()
		}
		stream, ent := it.At()
		ev.stats.LinesProcessed++
		ev.stats.BytesProcessed += int64(len(ent.Line))
		v := 1.0
		if x.Op == "bytes_over_time" || x.Op == "bytes_rate" {
			v = float64(len(ent.Line))
		}
		// Fast path: no pipeline and no grouping, so the series is the stream.
		if pl.noop && x.Unwrap == nil && x.Grouping == nil && ent.Metadata.IsEmpty() {
			if lastSeries == nil || !labels.Equal(stream, lastStream) {
				keyBuf = stream.Bytes(keyBuf[:0])
				lastSeries = series[string(keyBuf)]
				if lastSeries == nil {
					lastSeries = &rangeSamples{labels: stream}
					series[string(keyBuf)] = lastSeries
				}
				lastStream = stream
			}
			lastSeries.ts = append(lastSeries.ts, ent.Timestamp)
			lastSeries.vals = append(lastSeries.vals, v)
			continue
		}
		st, ok := pl.process(stream, ent)
		if !ok {
			continue
		}
		if x.Unwrap != nil {
			raw, _ := st.labels.get(x.Unwrap.Label)
			f, err := unwrapConv(raw)
			if err != nil {
				st.labels.setErr(errSampleExtract, err.Error())
			}
			v = f
			st.labels.del(x.Unwrap.Label)
			keep := true
			for _, fn := range post {
				if !fn(st) {
					keep = false
					break
				}
			}
			if !keep {
				continue
			}
		}
		if kind, bad := st.labels.get(ErrorLabel); bad {
			ls := st.labels.labels(-1)
			return nil, errPipeline(kind, ls)
		}
		ls := st.labels.labels(-1)
		if x.Grouping != nil {
			ls = group(ls, x.Grouping)
		}
		keyBuf = ls.Bytes(keyBuf[:0])
		s := series[string(keyBuf)]
		if s == nil {
			s = &rangeSamples{labels: ls}
			series[string(keyBuf)] = s
		}
		s.ts = append(s.ts, st.ts)
		s.vals = append(s.vals, v)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	if len(series)*len(ev.ts) > ev.e.opts.MaxPoints {
		return nil, fmt.Errorf("maximum number of series (%d) reached for a single query; consider reducing query cardinality by adding more filters or aggregations", ev.e.opts.MaxSeries)
	}
	if x.Op == "absent_over_time" {
		return ev.absent(x, series), nil
	}
	out := &stepMatrix{}
	for _, rs := range series {
		s := ev.newSeries(rs.labels)
		ev.windows(rs, rng, off, x, s)
		out.series = append(out.series, s)
	}
	sortByLabels(out.series)
	return out, nil
}

// sortByLabels orders a range aggregation's series, so that aggregations over
// them add up in the same order on every run and give the same last digits.
func sortByLabels(ss []*stepSeries) {
	slices.SortFunc(ss, func(a, b *stepSeries) int { return labels.Compare(a.labels, b.labels) })
}

// errPipeline is Loki's answer when a line of a metric query kept an
// __error__ label.
func errPipeline(kind string, ls labels.Labels) error {
	return fmt.Errorf("pipeline error: '%s' for series: '%s'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"%s\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )", kind, ls.String(), kind)
}

// windows computes x.Op over the window (t-off-rng, t-off] of every step t.
func (ev *evaluator) windows(rs *rangeSamples, rng, off int64, x *RangeAggExpr, s *stepSeries) {
	lo, hi := 0, 0
	secs := float64(rng) / 1e9
	for i, t := range ev.ts {
		end := t*int64(time.Millisecond) - off
		start := end - rng
		for lo < len(rs.ts) && rs.ts[lo] <= start {
			lo++
		}
		if hi < lo {
			hi = lo
		}
		for hi < len(rs.ts) && rs.ts[hi] <= end {
			hi++
		}
		if hi == lo {
			continue
		}
		vals := rs.vals[lo:hi]
		s.ok[i] = true
		s.vals[i] = rangeFunc(x, vals, secs)
	}
}

func rangeFunc(x *RangeAggExpr, vals []float64, secs float64) float64 {
	switch x.Op {
	case "count_over_time":
		return float64(len(vals))
	case "rate":
		return float64(len(vals)) / secs
	case "bytes_over_time", "sum_over_time":
		return sum(vals)
	case "bytes_rate":
		return sum(vals) / secs
	case "avg_over_time":
		return sum(vals) / float64(len(vals))
	case "min_over_time":
		m := vals[0]
		for _, v := range vals {
			m = math.Min(m, v)
		}
		return m
	case "max_over_time":
		m := vals[0]
		for _, v := range vals {
			m = math.Max(m, v)
		}
		return m
	case "stdvar_over_time":
		return variance(vals)
	case "stddev_over_time":
		return math.Sqrt(variance(vals))
	case "quantile_over_time":
		return quantile(x.Param, vals)
	case "first_over_time":
		return vals[0]
	case "last_over_time":
		return vals[len(vals)-1]
	case "rate_counter":
		inc := 0.0
		for i := 1; i < len(vals); i++ {
			if vals[i] < vals[i-1] {
				inc += vals[i]
			} else {
				inc += vals[i] - vals[i-1]
			}
		}
		return inc / secs
	}
	return math.NaN()
}

func sum(vals []float64) float64 {
	s := 0.0
	for _, v := range vals {
		s += v
	}
	return s
}

func variance(vals []float64) float64 {
	mean := sum(vals) / float64(len(vals))
	v := 0.0
	for _, x := range vals {
		v += (x - mean) * (x - mean)
	}
	return v / float64(len(vals))
}

// quantile is Prometheus's: linear interpolation between closest ranks.
func quantile(q float64, vals []float64) float64 {
	if len(vals) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(1)
	}
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	rank := q * float64(len(s)-1)
	lo := math.Floor(rank)
	hi := math.Ceil(rank)
	w := rank - lo
	return s[int(lo)]*(1-w) + s[int(hi)]*w
}

// absent answers 1 at steps where no series had a sample, labelled with the
// selector's equality matchers, as Prometheus's absent does.
func (ev *evaluator) absent(x *RangeAggExpr, series map[string]*rangeSamples) *stepMatrix {
	b := labels.NewBuilder(labels.EmptyLabels())
	for _, m := range x.Log.Matchers {
		if m.Type == labels.MatchEqual {
			b.Set(m.Name, m.Value)
		}
	}
	out := ev.newSeries(b.Labels())
	present := ev.newSeries(labels.EmptyLabels())
	for _, rs := range series {
		ev.windows(rs, x.Range.Nanoseconds(), x.Offset.Nanoseconds(), &RangeAggExpr{Op: "count_over_time"}, present)
	}
	for i := range out.ok {
		if !present.ok[i] {
			out.ok[i], out.vals[i] = true, 1
		}
	}
	return &stepMatrix{series: []*stepSeries{out}}
}

// group keeps the `by` labels or drops the `without` ones.
func group(ls labels.Labels, g *Grouping) labels.Labels {
	if g.Without {
		return labels.NewBuilder(ls).Del(g.Labels...).Labels()
	}
	b := labels.NewScratchBuilder(len(g.Labels))
	for _, n := range g.Labels {
		if v := ls.Get(n); v != "" {
			b.Add(n, v)
		}
	}
	b.Sort()
	return b.Labels()
}

// linearRangeOps are the range aggregations whose sum over series equals the
// aggregation over the union of their lines.
var linearRangeOps = map[string]bool{"count_over_time": true, "rate": true, "bytes_over_time": true,
	"bytes_rate": true, "sum_over_time": true}

// pushGrouping rewrites sum by (g) (f(log [r])) for a linear f as f grouped by
// g: lines are counted into their group directly, so a pipeline that yields
// many label sets (a parser over request IDs) does not build a series per
// label set only to add them up.
func pushGrouping(x *VectorAggExpr) SampleExpr {
	r, ok := x.Inner.(*RangeAggExpr)
	if x.Op != "sum" || !ok || r.Grouping != nil || !linearRangeOps[r.Op] {
		return x.Inner
	}
	g := x.Grouping
	if g == nil {
		g = &Grouping{}
	}
	pushed := *r
	pushed.Grouping = g
	return &pushed
}

func (ev *evaluator) evalVectorAgg(x *VectorAggExpr) (*stepMatrix, error) {
	in, err := ev.eval(pushGrouping(x))
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case "sort", "sort_desc":
		return ev.sortSeries(in, x.Op == "sort_desc"), nil
	case "topk", "bottomk":
		return ev.topk(in, x), nil
	}
	g := x.Grouping
	if g == nil {
		g = &Grouping{}
	}
	groups := map[string]*stepSeries{}
	counts := map[string][]float64{}
	sq := map[string][]float64{} // sums of squares for stddev/stdvar
	var order []string
	for _, s := range in.series {
		ls := group(s.labels, g)
		key := string(ls.Bytes(nil))
		out := groups[key]
		if out == nil {
			out = ev.newSeries(ls)
			groups[key] = out
			counts[key] = make([]float64, len(ev.ts))
			sq[key] = make([]float64, len(ev.ts))
			order = append(order, key)
		}
		c, q := counts[key], sq[key]
		for i, ok := range s.ok {
			if !ok {
				continue
			}
			v := s.vals[i]
			if !out.ok[i] {
				out.ok[i] = true
				switch x.Op {
				case "min", "max":
					out.vals[i] = v
				}
			}
			c[i]++
			switch x.Op {
			case "sum", "avg", "stddev", "stdvar":
				out.vals[i] += v
				q[i] += v * v
			case "min":
				out.vals[i] = math.Min(out.vals[i], v)
			case "max":
				out.vals[i] = math.Max(out.vals[i], v)
			}
		}
	}
	res := &stepMatrix{}
	for _, key := range order {
		out, c, q := groups[key], counts[key], sq[key]
		for i := range out.vals {
			if !out.ok[i] {
				continue
			}
			switch x.Op {
			case "count":
				out.vals[i] = c[i]
			case "avg":
				out.vals[i] /= c[i]
			case "stdvar", "stddev":
				mean := out.vals[i] / c[i]
				v := math.Max(q[i]/c[i]-mean*mean, 0)
				if x.Op == "stddev" {
					v = math.Sqrt(v)
				}
				out.vals[i] = v
			}
		}
		res.series = append(res.series, out)
	}
	return res, nil
}

func (ev *evaluator) topk(in *stepMatrix, x *VectorAggExpr) *stepMatrix {
	g := x.Grouping
	if g == nil {
		g = &Grouping{}
	}
	k := int(x.Param)
	out := make([]*stepSeries, len(in.series))
	for i, s := range in.series {
		out[i] = ev.newSeries(s.labels)
	}
	for step := range ev.ts {
		byGroup := map[string][]int{}
		for i, s := range in.series {
			if s.ok[step] {
				key := string(group(s.labels, g).Bytes(nil))
				byGroup[key] = append(byGroup[key], i)
			}
		}
		for _, idx := range byGroup {
			sort.SliceStable(idx, func(a, b int) bool {
				va, vb := in.series[idx[a]].vals[step], in.series[idx[b]].vals[step]
				if x.Op == "topk" {
					return va > vb
				}
				return va < vb
			})
			for _, i := range idx[:min(k, len(idx))] {
				out[i].vals[step], out[i].ok[step] = in.series[i].vals[step], true
			}
		}
	}
	res := &stepMatrix{sorted: len(ev.ts) == 1}
	for _, s := range out {
		res.series = append(res.series, s)
	}
	if res.sorted {
		sort.SliceStable(res.series, func(a, b int) bool {
			va, vb := res.series[a].vals[0], res.series[b].vals[0]
			if x.Op == "topk" {
				return va > vb
			}
			return va < vb
		})
	}
	return res
}

func (ev *evaluator) sortSeries(in *stepMatrix, desc bool) *stepMatrix {
	sort.SliceStable(in.series, func(a, b int) bool {
		va, vb := in.series[a].vals[len(ev.ts)-1], in.series[b].vals[len(ev.ts)-1]
		if desc {
			return va > vb
		}
		return va < vb
	})
	in.sorted = true
	return in
}

func (ev *evaluator) evalLabelReplace(x *LabelReplaceExpr) (*stepMatrix, error) {
	in, err := ev.eval(x.Inner)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile("^(?:" + x.Regexp + ")$")
	if err != nil {
		return nil, fmt.Errorf("invalid regex in label_replace: %w", err)
	}
	for _, s := range in.series {
		src := s.labels.Get(x.Src)
		idx := re.FindStringSubmatchIndex(src)
		if idx == nil {
			continue
		}
		v := string(re.ExpandString(nil, x.Repl, src, idx))
		b := labels.NewBuilder(s.labels)
		if v == "" {
			b.Del(x.Dst)
		} else {
			b.Set(x.Dst, v)
		}
		s.labels = b.Labels()
	}
	return in, nil
}

func (ev *evaluator) evalBinOp(x *BinOpExpr) (*stepMatrix, error) {
	l, err := ev.eval(x.LHS)
	if err != nil {
		return nil, err
	}
	r, err := ev.eval(x.RHS)
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case "and", "or", "unless":
		if l.scalar || r.scalar {
			return nil, fmt.Errorf("unexpected literal for right leg of logical/set binary operation (%s)", x.Op)
		}
		return ev.setOp(x, l, r), nil
	}
	if l.scalar && r.scalar {
		if isComparison(x.Op) && !x.ReturnBool {
			return nil, fmt.Errorf("comparisons between scalars must use BOOL modifier")
		}
		s := ev.newSeries(labels.EmptyLabels())
		for i := range s.vals {
			s.vals[i], s.ok[i] = binArith(x, l.series[0].vals[i], r.series[0].vals[i])
		}
		return &stepMatrix{series: []*stepSeries{s}, scalar: true}, nil
	}
	if l.scalar || r.scalar {
		vec, sc, scalarLeft := l, r, false
		if l.scalar {
			vec, sc, scalarLeft = r, l, true
		}
		out := &stepMatrix{}
		for _, s := range vec.series {
			o := ev.newSeries(s.labels)
			for i, ok := range s.ok {
				if !ok {
					continue
				}
				a, b := s.vals[i], sc.series[0].vals[i]
				if scalarLeft {
					a, b = b, a
				}
				v, keep := binArith(x, a, b)
				if keep && isComparison(x.Op) && !x.ReturnBool {
					v = s.vals[i] // a filter keeps the vector's value
				}
				o.vals[i], o.ok[i] = v, keep
			}
			out.series = append(out.series, o)
		}
		return out, nil
	}
	return ev.vectorBinOp(x, l, r)
}

// binArith applies an arithmetic or comparison operator; ok is false when a
// comparison without bool filters the value out.
func binArith(x *BinOpExpr, a, b float64) (float64, bool) {
	cmp := func(c bool) (float64, bool) {
		if x.ReturnBool {
			if c {
				return 1, true
			}
			return 0, true
		}
		return a, c
	}
	switch x.Op {
	case "+":
		return a + b, true
	case "-":
		return a - b, true
	case "*":
		return a * b, true
	case "/":
		return a / b, true
	case "%":
		return math.Mod(a, b), true
	case "^":
		return math.Pow(a, b), true
	case "==":
		return cmp(a == b)
	case "!=":
		return cmp(a != b)
	case ">":
		return cmp(a > b)
	case ">=":
		return cmp(a >= b)
	case "<":
		return cmp(a < b)
	case "<=":
		return cmp(a <= b)
	}
	return math.NaN(), false
}

// matchKey is the identity two series are matched on.
func matchKey(ls labels.Labels, m *VectorMatching) string {
	if m == nil {
		return string(ls.Bytes(nil))
	}
	if m.On {
		return string(group(ls, &Grouping{Labels: m.Labels}).Bytes(nil))
	}
	return string(group(ls, &Grouping{Without: true, Labels: m.Labels}).Bytes(nil))
}

func (ev *evaluator) vectorBinOp(x *BinOpExpr, l, r *stepMatrix) (*stepMatrix, error) {
	one, many := r, l // group_left: many on the left, one on the right
	if x.Matching != nil && x.Matching.Card == "group_right" {
		one, many = l, r
	}
	ones := map[string]*stepSeries{}
	for _, s := range one.series {
		k := matchKey(s.labels, x.Matching)
		if _, dup := ones[k]; dup {
			return nil, fmt.Errorf("found duplicate series for the match group %s on the right hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side", k)
		}
		ones[k] = s
	}
	out := &stepMatrix{}
	for _, s := range many.series {
		o2 := ones[matchKey(s.labels, x.Matching)]
		if o2 == nil {
			continue
		}
		ls := resultLabels(s.labels, o2.labels, x)
		o := ev.newSeries(ls)
		for i := range o.vals {
			if !s.ok[i] || !o2.ok[i] {
				continue
			}
			a, b := s.vals[i], o2.vals[i]
			if many == r {
				a, b = b, a
			}
			o.vals[i], o.ok[i] = binArith(x, a, b)
		}
		out.series = append(out.series, o)
	}
	return out, nil
}

func resultLabels(manyLs, oneLs labels.Labels, x *BinOpExpr) labels.Labels {
	m := x.Matching
	if isComparison(x.Op) && !x.ReturnBool {
		return manyLs
	}
	if m == nil {
		return manyLs
	}
	if m.Card == "" {
		if m.On {
			return group(manyLs, &Grouping{Labels: m.Labels})
		}
		return group(manyLs, &Grouping{Without: true, Labels: m.Labels})
	}
	b := labels.NewBuilder(manyLs)
	for _, n := range m.Include {
		if v := oneLs.Get(n); v != "" {
			b.Set(n, v)
		} else {
			b.Del(n)
		}
	}
	return b.Labels()
}

func (ev *evaluator) setOp(x *BinOpExpr, l, r *stepMatrix) *stepMatrix {
	rk := map[string][]bool{}
	for _, s := range r.series {
		k := matchKey(s.labels, x.Matching)
		ok := rk[k]
		if ok == nil {
			ok = make([]bool, len(ev.ts))
			rk[k] = ok
		}
		for i := range ok {
			ok[i] = ok[i] || s.ok[i]
		}
	}
	out := &stepMatrix{}
	lk := map[string][]bool{}
	for _, s := range l.series {
		k := matchKey(s.labels, x.Matching)
		o := ev.newSeries(s.labels)
		present := rk[k]
		lp := lk[k]
		if lp == nil {
			lp = make([]bool, len(ev.ts))
			lk[k] = lp
		}
		for i := range o.vals {
			if !s.ok[i] {
				continue
			}
			lp[i] = true
			in := present != nil && present[i]
			keep := x.Op == "or" || x.Op == "and" && in || x.Op == "unless" && !in
			o.vals[i], o.ok[i] = s.vals[i], keep
		}
		out.series = append(out.series, o)
	}
	if x.Op == "or" {
		for _, s := range r.series {
			lp := lk[matchKey(s.labels, x.Matching)]
			o := ev.newSeries(s.labels)
			for i := range o.vals {
				if s.ok[i] && (lp == nil || !lp[i]) {
					o.vals[i], o.ok[i] = s.vals[i], true
				}
			}
			out.series = append(out.series, o)
		}
	}
	return out
}

// FormatValue prints a sample value as Loki and Prometheus do.
func FormatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', -1, 64), ".0")
}
