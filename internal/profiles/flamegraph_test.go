package profiles

import (
	"math"
	"reflect"
	"testing"

	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
)

func treeOf(stacks map[string]int64) *Tree {
	t := NewTree()
	for s, v := range stacks {
		t.Insert(splitStack(s), v)
	}
	return t
}

func levels(ls []*querierv1.Level) [][]int64 {
	out := make([][]int64, len(ls))
	for i, l := range ls {
		out[i] = l.Values
	}
	return out
}

// TestFlameGraphEncoding pins the exact layout Grafana decodes: names[0] "total",
// level 0 [0,total,0,0], [x_delta, total, self, name] per node, self before
// children, siblings by name, small nodes folded into "other".
func TestFlameGraphEncoding(t *testing.T) {
	f := func(name string, stacks map[string]int64, maxNodes int64, wantNames []string, wantLevels [][]int64, wantTotal, wantMaxSelf int64) {
		t.Helper()
		fg := treeOf(stacks).FlameGraph(maxNodes)
		if !reflect.DeepEqual(fg.Names, wantNames) {
			t.Errorf("%s: names = %v, want %v", name, fg.Names, wantNames)
		}
		if got := levels(fg.Levels); !reflect.DeepEqual(got, wantLevels) {
			t.Errorf("%s: levels = %v, want %v", name, got, wantLevels)
		}
		if fg.Total != wantTotal || fg.MaxSelf != wantMaxSelf {
			t.Errorf("%s: total, max_self = %d, %d, want %d, %d", name, fg.Total, fg.MaxSelf, wantTotal, wantMaxSelf)
		}
	}
	stacks := map[string]int64{"a;b": 3, "a;c": 2, "a": 1, "d": 4}
	f("full", stacks, 0,
		[]string{"total", "a", "b", "c", "d"},
		[][]int64{{0, 10, 0, 0}, {0, 6, 1, 1, 0, 4, 4, 4}, {1, 3, 3, 2, 0, 2, 2, 3}},
		10, 4)
	f("max_nodes=2 folds b and c into other", stacks, 2,
		[]string{"total", "a", "other", "d"},
		[][]int64{{0, 10, 0, 0}, {0, 6, 1, 1, 0, 4, 4, 3}, {1, 5, 5, 2}},
		10, 5)
	f("gap between cousins is delta-encoded", map[string]int64{"a;x": 1, "b": 5, "c;x": 2}, 0,
		[]string{"total", "a", "x", "b", "c"},
		[][]int64{{0, 8, 0, 0}, {0, 1, 0, 1, 0, 5, 5, 3, 0, 2, 0, 4}, {0, 1, 1, 2, 5, 2, 2, 2}},
		8, 5)
	f("empty", nil, 0, []string{"total"}, [][]int64{{0, 0, 0, 0}}, 0, 0)
}

func TestDiffEncoding(t *testing.T) {
	left := treeOf(map[string]int64{"a;b": 1})
	right := treeOf(map[string]int64{"a;b": 2, "c": 1})
	d := Diff(left, right, 0)
	if want := []string{"total", "a", "b", "c"}; !reflect.DeepEqual(d.Names, want) {
		t.Errorf("names = %v, want %v", d.Names, want)
	}
	want := [][]int64{
		{0, 1, 0, 0, 3, 0, 0},
		{0, 1, 0, 0, 2, 0, 1, 0, 0, 0, 0, 1, 1, 3},
		{0, 1, 1, 0, 2, 2, 2},
	}
	if got := levels(d.Levels); !reflect.DeepEqual(got, want) {
		t.Errorf("levels = %v, want %v", got, want)
	}
	if d.LeftTicks != 1 || d.RightTicks != 3 || d.Total != 4 || d.MaxSelf != 2 {
		t.Errorf("ticks %d/%d total %d max_self %d", d.LeftTicks, d.RightTicks, d.Total, d.MaxSelf)
	}
}

// TestMergeAcrossTables merges the same stacks from two tables with different
// symbol IDs into one tree.
func TestMergeAcrossTables(t *testing.T) {
	t1, t2 := newTable(), newTable()
	t1.append(testBatch("s", timeZero, map[string]int64{"main;f": 2, "main;g": 1}, 0))
	t2.append(testBatch("s", timeZero, map[string]int64{"other;x": 5, "main;f": 3}, 0))
	tree := NewTree()
	for _, tb := range []*table{t1, t2} {
		m := newTableMerger(tree, tb)
		for _, s := range tb.series {
			for _, p := range s.profiles {
				for _, x := range p.samples {
					m.add(x.node, x.value)
				}
			}
		}
		m.flush()
	}
	if got := tree.FunctionTotal("f"); got != 5 {
		t.Errorf("f = %d, want 5", got)
	}
	if got := tree.Total(); got != 11 {
		t.Errorf("total = %d, want 11", got)
	}
}

// Profiles that are each valid can still sum past int64 when merged: the
// flame graph then shows full bars, never negative totals.
func TestFlameGraphSaturatesInsteadOfWrapping(t *testing.T) {
	big := int64(math.MaxInt64/2 + 1)
	tr := NewTree()
	tr.Insert([]string{"main", "a"}, big)
	tr.Insert([]string{"main", "b"}, big)
	tr.Insert([]string{"main", "a"}, big)
	fg := tr.FlameGraph(0)
	if fg.Total != math.MaxInt64 {
		t.Errorf("total = %d, want %d (saturated)", fg.Total, int64(math.MaxInt64))
	}
	for l, lv := range fg.Levels {
		for i := 0; i+3 < len(lv.Values); i += 4 {
			if lv.Values[i] < 0 || lv.Values[i+1] < 0 || lv.Values[i+2] < 0 {
				t.Errorf("level %d node %d has a negative offset, total or self: %v", l, i/4, lv.Values[i:i+4])
			}
		}
	}
	d := Diff(tr, tr, 0)
	if d.Total != math.MaxInt64 || d.LeftTicks != math.MaxInt64 {
		t.Errorf("diff total %d left %d, want saturated", d.Total, d.LeftTicks)
	}
}
