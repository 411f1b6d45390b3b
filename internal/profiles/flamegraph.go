package profiles

import (
	"slices"

	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
)

// DefaultMaxNodes is Pyroscope's default flame graph size when a request says 0.
const DefaultMaxNodes = 8192

// MaxMaxNodes is the largest max_nodes a request may ask for (Pyroscope's default).
const MaxMaxNodes = 1 << 20

const otherName = "other"

// minValue returns the smallest total a node needs to be kept so that at most
// maxNodes nodes are drawn; 0 keeps everything.
func minValue(totals []int64, maxNodes int64) int64 {
	if maxNodes < 1 || int64(len(totals)) <= maxNodes {
		return 0
	}
	slices.SortFunc(totals, func(a, b int64) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
	return totals[maxNodes-1]
}

// FlameGraph renders the tree as Pyroscope does: names[0] is "total", level 0 is the
// root, each node is [x_offset, total, self, name_index] with x delta-encoded from
// the end of the previous node on the same level; a node's self comes before its
// children, siblings are sorted by name and those below the max_nodes threshold are
// folded into one "other" node per parent.
func (t *Tree) FlameGraph(maxNodes int64) *querierv1.FlameGraph {
	t.sum()
	totals := make([]int64, 0, len(t.nodes)-1)
	for _, n := range t.nodes[1:] {
		totals = append(totals, n.total)
	}
	minVal := minValue(totals, maxNodes)

	fg := &querierv1.FlameGraph{Names: []string{"total"}, Total: t.nodes[0].total}
	nameIdx := map[string]int64{"": 0}
	var levels [][]int64
	var ends []int64 // end of the previous node per level, for delta encoding

	var emit func(level int, x int64, name string, self, total int64, children []int32)
	emit = func(level int, x int64, name string, self, total int64, children []int32) {
		idx, ok := nameIdx[name]
		if !ok {
			idx = int64(len(fg.Names))
			nameIdx[name] = idx
			fg.Names = append(fg.Names, name)
		}
		if level == len(levels) {
			levels = append(levels, nil)
			ends = append(ends, 0)
		}
		levels[level] = append(levels[level], x-ends[level], total, self, idx)
		ends[level] = addSat(x, total)
		fg.MaxSelf = max(fg.MaxSelf, self)

		cx := addSat(x, self)
		var other int64
		for _, c := range children {
			n := &t.nodes[c]
			if n.total >= minVal && n.name != otherName {
				emit(level+1, cx, n.name, n.self, n.total, n.children)
				cx = addSat(cx, n.total)
			} else {
				other = addSat(other, n.total)
			}
		}
		if other != 0 {
			emit(level+1, cx, otherName, other, other, nil)
		}
	}
	root := &t.nodes[0]
	emit(0, 0, "", 0, root.total, root.children)
	fg.Levels = make([]*querierv1.Level, len(levels))
	for i, l := range levels {
		fg.Levels[i] = &querierv1.Level{Values: l}
	}
	return fg
}

// diffNode pairs the left and right values of one call path.
type diffNode struct {
	name          string
	lSelf, lTotal int64
	rSelf, rTotal int64
	children      []*diffNode
}

func combine(l, r *Tree, li, ri int32) *diffNode {
	d := &diffNode{}
	var lc, rc []int32
	if li >= 0 {
		n := &l.nodes[li]
		d.name, d.lSelf, d.lTotal, lc = n.name, n.self, n.total, n.children
	}
	if ri >= 0 {
		n := &r.nodes[ri]
		d.name, d.rSelf, d.rTotal, rc = n.name, n.self, n.total, n.children
	}
	// Both child lists are sorted by name: merge-join them.
	for len(lc) > 0 || len(rc) > 0 {
		switch {
		case len(rc) == 0 || (len(lc) > 0 && l.nodes[lc[0]].name < r.nodes[rc[0]].name):
			d.children = append(d.children, combine(l, r, lc[0], -1))
			lc = lc[1:]
		case len(lc) == 0 || r.nodes[rc[0]].name < l.nodes[lc[0]].name:
			d.children = append(d.children, combine(l, r, -1, rc[0]))
			rc = rc[1:]
		default:
			d.children = append(d.children, combine(l, r, lc[0], rc[0]))
			lc, rc = lc[1:], rc[1:]
		}
	}
	return d
}

// Diff renders two trees as Pyroscope's FlameGraphDiff: 7 values per node
// [x_left, left_total, left_self, x_right, right_total, right_self, name_index],
// both x columns delta-encoded per level.
func Diff(left, right *Tree, maxNodes int64) *querierv1.FlameGraphDiff {
	left.sum()
	right.sum()
	root := combine(left, right, 0, 0)
	var totals []int64
	var collect func(d *diffNode)
	collect = func(d *diffNode) {
		for _, c := range d.children {
			totals = append(totals, max(c.lTotal, c.rTotal))
			collect(c)
		}
	}
	collect(root)
	minVal := minValue(totals, maxNodes)

	res := &querierv1.FlameGraphDiff{
		Names:      []string{"total"},
		Total:      addSat(root.lTotal, root.rTotal),
		LeftTicks:  root.lTotal,
		RightTicks: root.rTotal,
	}
	nameIdx := map[string]int64{"": 0}
	var levels [][]int64
	var lEnds, rEnds []int64
	var emit func(level int, lx, rx int64, d *diffNode)
	emit = func(level int, lx, rx int64, d *diffNode) {
		idx, ok := nameIdx[d.name]
		if !ok {
			idx = int64(len(res.Names))
			nameIdx[d.name] = idx
			res.Names = append(res.Names, d.name)
		}
		if level == len(levels) {
			levels = append(levels, nil)
			lEnds, rEnds = append(lEnds, 0), append(rEnds, 0)
		}
		levels[level] = append(levels[level], lx-lEnds[level], d.lTotal, d.lSelf, rx-rEnds[level], d.rTotal, d.rSelf, idx)
		lEnds[level], rEnds[level] = addSat(lx, d.lTotal), addSat(rx, d.rTotal)
		res.MaxSelf = max(res.MaxSelf, d.lSelf, d.rSelf)
		lx, rx = addSat(lx, d.lSelf), addSat(rx, d.rSelf)
		other := &diffNode{name: otherName}
		for _, c := range d.children {
			if (c.lTotal >= minVal || c.rTotal >= minVal) && c.name != otherName {
				emit(level+1, lx, rx, c)
				lx, rx = addSat(lx, c.lTotal), addSat(rx, c.rTotal)
			} else {
				other.lTotal = addSat(other.lTotal, c.lTotal)
				other.rTotal = addSat(other.rTotal, c.rTotal)
			}
		}
		if other.lTotal != 0 || other.rTotal != 0 {
			other.lSelf, other.rSelf = other.lTotal, other.rTotal
			emit(level+1, lx, rx, other)
		}
	}
	emit(0, 0, 0, root)
	res.Levels = make([]*querierv1.Level, len(levels))
	for i, l := range levels {
		res.Levels[i] = &querierv1.Level{Values: l}
	}
	return res
}
