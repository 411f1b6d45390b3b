package traceql

import (
	"cmp"
	"encoding/hex"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vispyr/vispyr/internal/limits"
)

// compareAcc implements compare({selection}, topN, start, end): for every
// span matched by the query it counts each attribute value, separately for
// spans inside the selection and the rest (the baseline), like Tempo's
// MetricsCompare. Output series are labelled __meta_type=baseline|selection
// plus the attribute, and __meta_type=baseline_total|selection_total plus the
// attribute with value "nil" for the per-attribute totals.
type compareAcc struct {
	iv              intervals
	sel             predFn
	topN            int
	start, end      int64
	exemplars       int
	base, selection map[string]map[groupKey]*cmpCounts
	baseTot, selTot map[string][]float64
	baseEx, selEx   []cmpExemplar
	// label names for raw attribute keys, so the hot loop does not build strings.
	spanKeys, resKeys map[string]string
	mem               *limits.QueryMemory
}

func cachedKey(cache map[string]string, scope, k string) string {
	if s, ok := cache[k]; ok {
		return s
	}
	s := attrText(scope, k)
	cache[k] = s
	return s
}

type cmpCounts struct {
	v      value
	counts []float64
}

type cmpExemplar struct {
	ex   Exemplar
	keys []string
}

func newCompareAcc(iv intervals, sel predFn, ms *MetricsStage, exemplars int, mem *limits.QueryMemory) *compareAcc {
	return &compareAcc{mem: mem,
		iv: iv, sel: sel, topN: ms.TopN, start: ms.CompareStart, end: ms.CompareEnd, exemplars: exemplars,
		base: map[string]map[groupKey]*cmpCounts{}, selection: map[string]map[groupKey]*cmpCounts{},
		baseTot: map[string][]float64{}, selTot: map[string][]float64{},
		spanKeys: map[string]string{}, resKeys: map[string]string{},
	}
}

// countsBytes is what one more attribute value (or total) costs: its counts
// and its share of the answer.
func (a *compareAcc) countsBytes() int64 { return int64(a.iv.n)*bytesPerSlot + seriesOverhead }

func (a *compareAcc) observe(c *traceCtx, r *spanRow, slot int) error {
	ts := int64(r.start)
	isSel := (a.start == 0 && a.end == 0 || ts > a.start && ts <= a.end) && a.sel(c, r)
	dest, tot := a.base, a.baseTot
	if isSel {
		dest, tot = a.selection, a.selTot
	}
	var keys []string
	var err error
	add := func(key string, v value) {
		if err != nil || v.t == vNil || v.t == vArr || v.t == vDur {
			return // no useful grouping on these, as in Tempo
		}
		vals := dest[key]
		if vals == nil {
			vals = map[groupKey]*cmpCounts{}
			dest[key] = vals
		}
		k := keyOf(v)
		cc := vals[k]
		if cc == nil {
			if err = a.mem.Charge(a.countsBytes()); err != nil {
				return
			}
			cc = &cmpCounts{v: v, counts: make([]float64, a.iv.n)}
			vals[k] = cc
		}
		cc.counts[slot]++
		t := tot[key]
		if t == nil {
			if err = a.mem.Charge(a.countsBytes()); err != nil {
				return
			}
			t = make([]float64, a.iv.n)
			tot[key] = t
		}
		t[slot]++
		if a.exemplars > 0 {
			keys = append(keys, key)
		}
	}
	for k, v := range r.span.Attributes().All() {
		add(cachedKey(a.spanKeys, "span", k), fromPcommon(v))
	}
	for k, v := range r.res.Attributes().All() {
		add(cachedKey(a.resKeys, "resource", k), fromPcommon(v))
	}
	add("name", strValue(r.span.Name()))
	add("status", statusValue(r.span.Status().Code()))
	add("kind", kindValue(r.span.Kind()))
	if msg := r.span.Status().Message(); msg != "" {
		add("statusMessage", strValue(msg))
	}
	c.ensureTraceInfo()
	add("rootName", c.rootName)
	add("rootServiceName", c.rootService)
	if err != nil {
		return err
	}
	if a.exemplars > 0 {
		exs := &a.baseEx
		if isSel {
			exs = &a.selEx
		}
		if len(*exs) < a.exemplars {
			tid, sid := r.span.TraceID(), r.span.SpanID()
			*exs = append(*exs, cmpExemplar{keys: keys, ex: Exemplar{
				TraceID: hex.EncodeToString(tid[:]), SpanID: hex.EncodeToString(sid[:]),
				Value: math.NaN(), TimestampMs: ts / int64(time.Millisecond),
			}})
		}
	}
	return nil
}

func (a *compareAcc) result() *MetricsResult {
	out := &MetricsResult{}
	fin := &metricsAgg{iv: a.iv}
	addValues := func(metaType string, data map[string]map[groupKey]*cmpCounts) {
		for key, vals := range data {
			list := make([]*cmpCounts, 0, len(vals))
			for _, cc := range vals {
				list = append(list, cc)
			}
			// Keep the topN values with the highest total count.
			slices.SortFunc(list, func(x, y *cmpCounts) int {
				if c := cmp.Compare(sum(y.counts), sum(x.counts)); c != 0 {
					return c
				}
				return cmp.Compare(x.v.text(), y.v.text())
			})
			if len(list) > a.topN {
				list = list[:a.topN]
			}
			for _, cc := range list {
				labels := []Attribute{
					{Key: "__meta_type", Value: pcommon.NewValueStr(metaType)},
					{Key: key, Value: cc.v.toPcommon()},
				}
				if s, ok := fin.finish(labels, cc.counts, nil); ok {
					out.Series = append(out.Series, s)
				}
			}
		}
	}
	addValues("baseline", a.base)
	addValues("selection", a.selection)
	addTotals := func(metaType string, data map[string][]float64, exs []cmpExemplar) {
		for key, counts := range data {
			var ex []Exemplar
			for _, e := range exs {
				if slices.Contains(e.keys, key) {
					ex = append(ex, e.ex)
				}
			}
			labels := []Attribute{
				{Key: "__meta_type", Value: pcommon.NewValueStr(metaType)},
				{Key: key, Value: pcommon.NewValueStr("nil")},
			}
			if s, ok := fin.finish(labels, counts, ex); ok {
				out.Series = append(out.Series, s)
			}
		}
	}
	addTotals("baseline_total", a.baseTot, a.baseEx)
	addTotals("selection_total", a.selTot, a.selEx)
	sortSeries(out.Series)
	return out
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}
