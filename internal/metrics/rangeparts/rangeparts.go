// Package rangeparts evaluates a PromQL range query's steps in parts and
// joins them: the results cache answers from cached steps plus computed
// ones, the parallel engine computes consecutive runs of steps at once.
// Both rely on the same fact: in a step-safe query each step's value
// depends only on the data around that step.
package rangeparts

import (
	"sort"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// StepSafe reports whether every step of a range query equals the instant
// query at that step: `@` pins selectors to one time (or to the request's
// start or end), so a query using it is not. Offsets and subqueries (whose
// inner grid is aligned to absolute time) are step-safe.
func StepSafe(expr parser.Expr) bool {
	safe := true
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			if n.Timestamp != nil || n.StartOrEnd != 0 {
				safe = false
			}
		case *parser.SubqueryExpr:
			if n.Timestamp != nil || n.StartOrEnd != 0 {
				safe = false
			}
		}
		return nil
	})
	return safe
}

// Slice returns the points of m from..to (inclusive), sharing m's slices
// (capped, so an append never writes into them); series left without
// points are dropped.
func Slice(m promql.Matrix, from, to int64) promql.Matrix {
	out := make(promql.Matrix, 0, len(m))
	for _, s := range m {
		i := sort.Search(len(s.Floats), func(i int) bool { return s.Floats[i].T >= from })
		j := sort.Search(len(s.Floats), func(i int) bool { return s.Floats[i].T > to })
		k := sort.Search(len(s.Histograms), func(i int) bool { return s.Histograms[i].T >= from })
		l := sort.Search(len(s.Histograms), func(i int) bool { return s.Histograms[i].T > to })
		if i == j && k == l {
			continue
		}
		ns := promql.Series{Metric: s.Metric, DropName: s.DropName}
		if i < j {
			ns.Floats = s.Floats[i:j:j]
		}
		if k < l {
			ns.Histograms = s.Histograms[k:l:l]
		}
		out = append(out, ns)
	}
	return out
}

// Copy copies an engine result out of the engine's pooled memory, which
// the query's Close hands back.
func Copy(m promql.Matrix) promql.Matrix {
	out := make(promql.Matrix, len(m))
	for i, s := range m {
		out[i] = promql.Series{Metric: s.Metric, DropName: s.DropName}
		if len(s.Floats) > 0 {
			out[i].Floats = append([]promql.FPoint(nil), s.Floats...)
		}
		if len(s.Histograms) > 0 {
			out[i].Histograms = make([]promql.HPoint, len(s.Histograms))
			for j, h := range s.Histograms {
				out[i].Histograms[j] = promql.HPoint{T: h.T, H: h.H.Copy()}
			}
		}
	}
	return out
}

// Join joins results over consecutive, disjoint step ranges (in time
// order) into one, series sorted by labels as the engine sorts a range
// query's result.
func Join(parts []promql.Matrix) promql.Matrix {
	var nonEmpty []promql.Matrix
	for _, p := range parts {
		if len(p) > 0 {
			nonEmpty = append(nonEmpty, p)
		}
	}
	switch len(nonEmpty) {
	case 0:
		return promql.Matrix{}
	case 1:
		return nonEmpty[0]
	}
	idx := map[string]int{}
	var out promql.Matrix
	var buf []byte
	for _, p := range nonEmpty {
		for _, s := range p {
			buf = s.Metric.Bytes(buf)
			i, ok := idx[string(buf)]
			if !ok {
				i = len(out)
				idx[string(buf)] = i
				out = append(out, promql.Series{Metric: s.Metric, DropName: s.DropName})
			}
			o := &out[i]
			if len(s.Floats) > 0 {
				o.Floats = append(o.Floats[:len(o.Floats):len(o.Floats)], s.Floats...)
			}
			if len(s.Histograms) > 0 {
				o.Histograms = append(o.Histograms[:len(o.Histograms):len(o.Histograms)], s.Histograms...)
			}
		}
	}
	sort.Sort(out)
	return out
}
