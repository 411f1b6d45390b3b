package traceql

import (
	"fmt"
	"slices"
)

// sset is a spanset during evaluation: indexes into traceCtx.rows plus the
// attributes that by() and aggregates attached to it.
type sset struct {
	spans []int32
	attrs []Attribute
}

// stageFn transforms the spansets of one trace.
type stageFn func(c *traceCtx, in []sset) []sset

func compilePipeline(pl *Pipeline) (stageFn, error) {
	fns := make([]stageFn, 0, len(pl.Stages))
	for _, st := range pl.Stages {
		if _, ok := st.(*MetricsStage); ok {
			continue // metrics functions run in EvalMetrics
		}
		f, err := compileStage(st)
		if err != nil {
			return nil, err
		}
		fns = append(fns, f)
	}
	if len(fns) == 1 {
		return fns[0], nil
	}
	return func(c *traceCtx, in []sset) []sset {
		for _, f := range fns {
			if len(in) == 0 {
				return nil
			}
			in = f(c, in)
		}
		return in
	}, nil
}

func compileStage(st Stage) (stageFn, error) {
	switch st := st.(type) {
	case *Pipeline:
		return compilePipeline(st)
	case *SpansetFilter:
		return compileFilter(st)
	case *SpansetOp:
		return compileSpansetOp(st)
	case *ScalarFilter:
		return compileScalarFilter(st)
	case *ByStage:
		return compileBy(st)
	case *SelectStage:
		// The selected fields are attached to every returned span by EvalTrace.
		return func(_ *traceCtx, in []sset) []sset { return in }, nil
	case *CoalesceStage:
		return func(_ *traceCtx, in []sset) []sset {
			if len(in) <= 1 {
				return in
			}
			var all []int32
			for _, s := range in {
				all = append(all, s.spans...)
			}
			return []sset{{spans: all}}
		}, nil
	}
	return nil, fmt.Errorf("unsupported pipeline stage %s", st.String())
}

func compileFilter(f *SpansetFilter) (stageFn, error) {
	if f.Expr == nil {
		return func(_ *traceCtx, in []sset) []sset { return in }, nil
	}
	pred, err := compilePred(f.Expr)
	if err != nil {
		return nil, err
	}
	return func(c *traceCtx, in []sset) []sset {
		var out []sset
		for _, s := range in {
			var keep []int32
			for _, i := range s.spans {
				if pred(c, &c.rows[i]) {
					keep = append(keep, i)
				}
			}
			if len(keep) > 0 {
				out = append(out, sset{spans: keep, attrs: s.attrs})
			}
		}
		return out
	}, nil
}

// relation selects the spans of ys that stand in a relation to some span of xs.
type relation func(c *traceCtx, xs, ys []int32) []int32

func compileSpansetOp(o *SpansetOp) (stageFn, error) {
	lf, err := compileStage(o.L)
	if err != nil {
		return nil, err
	}
	rf, err := compileStage(o.R)
	if err != nil {
		return nil, err
	}
	combine, err := spansetCombiner(o.Op)
	if err != nil {
		return nil, err
	}
	return func(c *traceCtx, in []sset) []sset {
		var out []sset
		for i := range in {
			curr := in[i : i+1]
			lhs := lf(c, curr)
			rhs := rf(c, curr)
			if spans := combine(c, lhs, rhs); len(spans) > 0 {
				out = append(out, sset{spans: spans, attrs: in[i].attrs})
			}
		}
		return out
	}, nil
}

// spansetCombiner returns the function that merges the results of both sides
// of a spanset operator. Like Tempo, structural operators return the right-hand
// spans, union forms both sides, and negated forms the right-hand spans that
// have no such relative.
func spansetCombiner(op string) (func(c *traceCtx, lhs, rhs []sset) []int32, error) {
	switch op {
	case "&&":
		return func(c *traceCtx, lhs, rhs []sset) []int32 {
			if len(lhs) == 0 || len(rhs) == 0 {
				return nil
			}
			return unionSpans(c, flatten(lhs), flatten(rhs))
		}, nil
	case "||":
		return func(c *traceCtx, lhs, rhs []sset) []int32 {
			return unionSpans(c, flatten(lhs), flatten(rhs))
		}, nil
	}
	var rel, back relation
	negate, union := false, false
	base := op
	switch {
	case len(op) > 1 && op[0] == '!':
		negate, base = true, op[1:]
	case len(op) > 1 && op[0] == '&':
		union, base = true, op[1:]
	}
	switch base {
	case ">":
		rel, back = relChild, relParent
	case "<":
		rel, back = relParent, relChild
	case ">>":
		rel, back = relDescendant, relAncestor
	case "<<":
		rel, back = relAncestor, relDescendant
	case "~":
		rel, back = relSibling, relSibling
	default:
		return nil, fmt.Errorf("unsupported spanset operator %s", op)
	}
	return func(c *traceCtx, lhs, rhs []sset) []int32 {
		if len(rhs) == 0 {
			return nil
		}
		c.ensureParents()
		xs, ys := flatten(lhs), flatten(rhs)
		matched := rel(c, xs, ys)
		switch {
		case negate:
			return minusSpans(c, ys, matched)
		case union:
			if len(matched) == 0 {
				return nil
			}
			return unionSpans(c, matched, back(c, ys, xs))
		}
		return matched
	}, nil
}

func flatten(ss []sset) []int32 {
	switch len(ss) {
	case 0:
		return nil
	case 1:
		return ss[0].spans
	}
	var out []int32
	for _, s := range ss {
		out = append(out, s.spans...)
	}
	return out
}

func markSet(c *traceCtx, xs []int32) []bool {
	m := make([]bool, len(c.rows))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func selectMarked(ys []int32, m []bool, want bool) []int32 {
	var out []int32
	for _, y := range ys {
		if m[y] == want {
			out = append(out, y)
		}
	}
	return out
}

// relChild: ys whose parent is in xs ({x} > {y}).
func relChild(c *traceCtx, xs, ys []int32) []int32 {
	in := markSet(c, xs)
	var out []int32
	for _, y := range ys {
		if p := c.rows[y].parent; p >= 0 && in[p] {
			out = append(out, y)
		}
	}
	return out
}

// relParent: ys that are the parent of some x ({x} < {y}).
func relParent(c *traceCtx, xs, ys []int32) []int32 {
	m := make([]bool, len(c.rows))
	for _, x := range xs {
		if p := c.rows[x].parent; p >= 0 {
			m[p] = true
		}
	}
	return selectMarked(ys, m, true)
}

// relDescendant: ys with an ancestor in xs ({x} >> {y}). Whether a span has
// an ancestor in xs is memoised along each walk up, so deep traces stay linear.
func relDescendant(c *traceCtx, xs, ys []int32) []int32 {
	in := markSet(c, xs)
	const unknown, no, yes = 0, 1, 2
	memo := make([]uint8, len(c.rows)) // does row i have an ancestor in xs?
	var path []int32
	has := func(y int32) bool {
		path = path[:0]
		result := false
		for i, steps := y, 0; ; steps++ {
			if memo[i] != unknown {
				result = memo[i] == yes
				break
			}
			p := c.rows[i].parent
			if p < 0 || steps >= len(c.rows) {
				break
			}
			path = append(path, i)
			if in[p] {
				result = true
				break
			}
			i = p
		}
		state := uint8(no)
		if result {
			state = yes
		}
		for _, i := range path {
			memo[i] = state
		}
		if len(path) == 0 && memo[y] == unknown {
			memo[y] = state
		}
		return result
	}
	var out []int32
	for _, y := range ys {
		if has(y) {
			out = append(out, y)
		}
	}
	return out
}

// relAncestor: ys that are an ancestor of some x ({x} << {y}).
func relAncestor(c *traceCtx, xs, ys []int32) []int32 {
	m := make([]bool, len(c.rows))
	for _, x := range xs {
		for p, steps := c.rows[x].parent, 0; p >= 0 && !m[p] && steps < len(c.rows); p, steps = c.rows[p].parent, steps+1 {
			m[p] = true
		}
	}
	return selectMarked(ys, m, true)
}

// relSibling: ys that share a parent with some other span of xs ({x} ~ {y}).
func relSibling(c *traceCtx, xs, ys []int32) []int32 {
	counts := make(map[int32]int32, len(xs))
	in := markSet(c, xs)
	for _, x := range xs {
		if p := c.rows[x].parent; p >= 0 {
			counts[p]++
		}
	}
	var out []int32
	for _, y := range ys {
		p := c.rows[y].parent
		if p < 0 {
			continue
		}
		n := counts[p]
		if in[y] {
			n--
		}
		if n > 0 {
			out = append(out, y)
		}
	}
	return out
}

// unionSpans merges two span lists without duplicates, in trace order.
func unionSpans(c *traceCtx, a, b []int32) []int32 {
	m := make([]bool, len(c.rows))
	out := make([]int32, 0, len(a)+len(b))
	for _, list := range [][]int32{a, b} {
		for _, x := range list {
			if !m[x] {
				m[x] = true
				out = append(out, x)
			}
		}
	}
	slices.Sort(out)
	return out
}

func minusSpans(c *traceCtx, ys, drop []int32) []int32 {
	return selectMarked(ys, markSet(c, drop), false)
}
