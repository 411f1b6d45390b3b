package profiles

import (
	"slices"
	"strings"
)

// Tree is a merged call tree keyed by function name, the result of a query before it
// becomes a flame graph or pprof. Node 0 is the root; parents precede children.
type Tree struct {
	nodes  []treeNode
	index  map[treeKey]int32
	summed bool
}

type treeNode struct {
	name        string
	parent      int32
	children    []int32
	self, total int64
}

type treeKey struct {
	parent int32
	name   string
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	return &Tree{nodes: []treeNode{{parent: -1}}, index: map[treeKey]int32{}}
}

func (t *Tree) child(parent int32, name string) int32 {
	k := treeKey{parent, name}
	if id, ok := t.index[k]; ok {
		return id
	}
	id := int32(len(t.nodes))
	t.nodes = append(t.nodes, treeNode{name: name, parent: parent})
	t.nodes[parent].children = append(t.nodes[parent].children, id)
	t.index[k] = id
	return id
}

// Insert adds v as the self value of the root-first stack.
func (t *Tree) Insert(stack []string, v int64) {
	id := int32(0)
	for _, n := range stack {
		id = t.child(id, n)
	}
	t.nodes[id].self = addSat(t.nodes[id].self, v)
	t.summed = false
}

// sum computes totals bottom-up (parents have lower IDs) and sorts children by name,
// the order Pyroscope lays out siblings in.
func (t *Tree) sum() {
	if t.summed {
		return
	}
	for i := range t.nodes {
		t.nodes[i].total = t.nodes[i].self
	}
	for i := len(t.nodes) - 1; i > 0; i-- {
		p := &t.nodes[t.nodes[i].parent]
		p.total = addSat(p.total, t.nodes[i].total)
	}
	for i := range t.nodes {
		slices.SortFunc(t.nodes[i].children, func(a, b int32) int { return strings.Compare(t.nodes[a].name, t.nodes[b].name) })
	}
	t.summed = true
}

// Total is the sum of all values in the tree.
func (t *Tree) Total() int64 {
	t.sum()
	return t.nodes[0].total
}

// Walk calls fn for every node with a self value, with its root-first stack.
func (t *Tree) Walk(fn func(stack []string, self int64)) {
	var stack []string
	var visit func(id int32)
	visit = func(id int32) {
		n := &t.nodes[id]
		if id != 0 {
			stack = append(stack, n.name)
			if n.self != 0 {
				fn(stack, n.self)
			}
		}
		for _, c := range n.children {
			visit(c)
		}
		if id != 0 {
			stack = stack[:len(stack)-1]
		}
	}
	t.sum()
	visit(0)
}

// FunctionTotal returns the summed total of every node named name (counting nested
// recursion once per outermost frame), for tests and the UI's "top functions".
func (t *Tree) FunctionTotal(name string) int64 {
	t.sum()
	var sum int64
	var visit func(id int32, inside bool)
	visit = func(id int32, inside bool) {
		n := &t.nodes[id]
		if !inside && id != 0 && n.name == name {
			sum = addSat(sum, n.total)
			inside = true
		}
		for _, c := range n.children {
			visit(c, inside)
		}
	}
	visit(0, false)
	return sum
}

// tableMerger folds the samples of one table into a Tree, touching only the nodes
// that carry values.
type tableMerger struct {
	tree  *Tree
	tb    *table
	self  map[uint32]int64
	memo  map[uint32]int32
	stack []uint32
}

func newTableMerger(tree *Tree, tb *table) *tableMerger {
	return &tableMerger{tree: tree, tb: tb, self: map[uint32]int64{}, memo: map[uint32]int32{0: 0}}
}

func (m *tableMerger) add(node uint32, v int64) { m.self[node] = addSat(m.self[node], v) }

// flush maps each touched table node to a tree node (walking up to the first
// already-mapped ancestor) and adds its value.
func (m *tableMerger) flush() {
	for id, v := range m.self {
		n := &m.tree.nodes[m.treeNode(id)]
		n.self = addSat(n.self, v)
	}
	m.tree.summed = false
	clear(m.self)
}

func (m *tableMerger) treeNode(id uint32) int32 {
	if t, ok := m.memo[id]; ok {
		return t
	}
	m.stack = m.stack[:0]
	for {
		if _, ok := m.memo[id]; ok {
			break
		}
		m.stack = append(m.stack, id)
		id = m.tb.nodes[id].parent
	}
	parent := m.memo[id]
	for i := len(m.stack) - 1; i >= 0; i-- {
		n := m.stack[i]
		parent = m.tree.child(parent, m.tb.names[m.tb.nodes[n].name])
		m.memo[n] = parent
	}
	return parent
}
