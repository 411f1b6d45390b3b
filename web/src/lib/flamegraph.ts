// Decoding of the Pyroscope flame graph format (COMPAT §6) and the views built on it.
//
// The wire format is level-ordered: levels[i].values holds 4 numbers per node,
// [x_offset, total, self, name_index], where x_offset is relative to the end of the
// previous node on the same level. protojson encodes int64 as strings, so every number may
// arrive as a string.

export interface WireFlamegraph {
  names?: string[];
  levels?: { values?: (number | string)[] }[];
  total?: number | string;
  maxSelf?: number | string;
  max_self?: number | string;
}

/** One rectangle of the flame graph with absolute coordinates in sample units. */
export interface FlameNode {
  level: number;
  x: number; // absolute start, in samples
  total: number;
  self: number;
  name: number; // index into names
  parent: number; // index into nodes, -1 for the root
  // diff graphs only: the baseline's total/self for the same frame
  baseTotal?: number;
  baseSelf?: number;
  // diff graphs only: layout width, wide enough for both sides and all children
  width?: number;
}

export interface Flamegraph {
  names: string[];
  nodes: FlameNode[]; // sorted by level, then x
  levelStart: number[]; // index in nodes of each level's first node
  total: number;
  maxSelf: number;
  diff?: { baseTotal: number; compTotal: number };
}

export const num = (v: number | string | undefined | null): number => {
  if (v === undefined || v === null || v === '') return 0;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
};

/** decodeFlamegraph turns the wire format into absolute nodes with parent links. */
export function decodeFlamegraph(fg: WireFlamegraph | undefined | null): Flamegraph {
  const names = (Array.isArray(fg?.names) ? fg!.names : []).map(String);
  const levels = Array.isArray(fg?.levels) ? fg!.levels : [];
  const nodes: FlameNode[] = [];
  const levelStart: number[] = [];
  let prevStart = 0;
  let prevEnd = 0;
  for (let l = 0; l < levels.length; l++) {
    const vals = Array.isArray(levels[l]?.values) ? levels[l].values! : [];
    levelStart.push(nodes.length);
    const start = nodes.length;
    let x = 0;
    // Parent search walks the previous level left to right as x only grows.
    let p = prevStart;
    for (let i = 0; i + 3 < vals.length; i += 4) {
      x += num(vals[i]);
      const total = num(vals[i + 1]);
      const node: FlameNode = { level: l, x, total, self: num(vals[i + 2]), name: num(vals[i + 3]), parent: -1 };
      if (l > 0) {
        while (p < prevEnd && nodes[p].x + nodes[p].total <= x) p++;
        if (p < prevEnd && nodes[p].x <= x) node.parent = p;
      }
      nodes.push(node);
      x += total;
    }
    prevStart = start;
    prevEnd = nodes.length;
  }
  let total = num(fg?.total);
  if (!total && nodes.length) total = nodes[0].total;
  return { names, nodes, levelStart, total, maxSelf: num(fg?.maxSelf ?? fg?.max_self) };
}

/** Stacks returns the root-to-leaf frame names of a node (root "total" excluded). */
export function stackOf(fg: Flamegraph, idx: number): string[] {
  const out: string[] = [];
  for (let i = idx; i >= 0; i = fg.nodes[i].parent) {
    if (fg.nodes[i].level === 0) break;
    out.push(fg.names[fg.nodes[i].name]);
  }
  return out.reverse();
}

export interface FunctionRow {
  name: string;
  self: number;
  total: number;
  baseSelf?: number; // diff graphs: the baseline's (normalised) self
  baseTotal?: number; // diff graphs: the baseline's (normalised) total
}

/**
 * functionTable aggregates self and total time per function name. A recursive function is
 * counted once per stack for its total, so totals never exceed the graph's total.
 */
export function functionTable(fg: Flamegraph): FunctionRow[] {
  const self = new Map<number, number>();
  const baseSelf = new Map<number, number>();
  const total = new Map<number, number>();
  const baseTotal = new Map<number, number>();
  for (let i = 0; i < fg.nodes.length; i++) {
    const n = fg.nodes[i];
    if (n.level === 0) continue;
    self.set(n.name, (self.get(n.name) ?? 0) + n.self);
    if (n.baseSelf !== undefined) baseSelf.set(n.name, (baseSelf.get(n.name) ?? 0) + n.baseSelf);
    let recursive = false;
    for (let p = n.parent; p >= 0; p = fg.nodes[p].parent) {
      if (fg.nodes[p].name === n.name && fg.nodes[p].level > 0) {
        recursive = true;
        break;
      }
    }
    if (!recursive) {
      total.set(n.name, (total.get(n.name) ?? 0) + n.total);
      if (n.baseTotal !== undefined) baseTotal.set(n.name, (baseTotal.get(n.name) ?? 0) + n.baseTotal);
    }
  }
  const rows: FunctionRow[] = [];
  for (const [name, t] of total) rows.push({ name: fg.names[name], self: self.get(name) ?? 0, total: t, baseSelf: fg.diff ? baseSelf.get(name) ?? 0 : undefined, baseTotal: fg.diff ? baseTotal.get(name) ?? 0 : undefined });
  rows.sort((a, b) => b.self - a.self || b.total - a.total);
  return rows;
}

// ---------------------------------------------------------------------------
// Tree form, used to build sandwich views and client-side diffs.

export interface TreeNode {
  name: string;
  total: number;
  self: number;
  base?: number; // diff: baseline total
  baseSelf?: number;
  children: TreeNode[];
}

function newTree(name: string): TreeNode {
  return { name, total: 0, self: 0, children: [] };
}

function child(t: TreeNode, name: string): TreeNode {
  let c = t.children.find((c) => c.name === name);
  if (!c) {
    c = newTree(name);
    t.children.push(c);
  }
  return c;
}

/** toTree converts a decoded graph to a nested tree rooted at "total". */
export function toTree(fg: Flamegraph): TreeNode {
  const trees: TreeNode[] = [];
  let root = newTree('total');
  for (let i = 0; i < fg.nodes.length; i++) {
    const n = fg.nodes[i];
    const t: TreeNode = { name: fg.names[n.name] ?? '?', total: n.total, self: n.self, children: [] };
    trees.push(t);
    if (n.parent >= 0) trees[n.parent].children.push(t);
    else if (n.level === 0) root = t;
  }
  return root;
}

/** fromTree lays a tree out as a Flamegraph (children sorted by name for stable diffs). */
export function fromTree(root: TreeNode): Flamegraph {
  const names: string[] = [];
  const index = new Map<string, number>();
  const nameIdx = (s: string) => {
    let i = index.get(s);
    if (i === undefined) {
      i = names.length;
      names.push(s);
      index.set(s, i);
    }
    return i;
  };
  nameIdx('total');
  // Layout width: in a diff a frame must fit both periods and its children's boxes.
  const widths = new Map<TreeNode, number>();
  const measure = (t: TreeNode): number => {
    let sum = 0;
    for (const c of t.children) sum += measure(c);
    const w = Math.max(t.total, t.base ?? 0, sum);
    widths.set(t, w);
    return w;
  };
  measure(root);
  const nodes: FlameNode[] = [];
  const levelStart: number[] = [];
  let maxSelf = 0;
  type Item = { t: TreeNode; x: number; parent: number };
  let level: Item[] = [{ t: root, x: 0, parent: -1 }];
  for (let l = 0; level.length; l++) {
    levelStart.push(nodes.length);
    const next: Item[] = [];
    for (const it of level) {
      const idx = nodes.length;
      nodes.push({
        level: l,
        x: it.x,
        total: it.t.total,
        self: it.t.self,
        name: l === 0 ? 0 : nameIdx(it.t.name),
        parent: it.parent,
        baseTotal: it.t.base,
        baseSelf: it.t.baseSelf,
        width: widths.get(it.t),
      });
      maxSelf = Math.max(maxSelf, it.t.self);
      let x = it.x;
      const kids = [...it.t.children].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const c of kids) {
        next.push({ t: c, x, parent: idx });
        x += widths.get(c)!;
      }
    }
    level = next;
  }
  return { names, nodes, levelStart, total: root.total, maxSelf };
}

/**
 * diffTrees merges a baseline and a comparison tree. Values are normalised to the
 * comparison's total so that the two periods compare by share, not by absolute samples.
 */
export function diffGraphs(base: Flamegraph, comp: Flamegraph): Flamegraph {
  const b = toTree(base);
  const c = toTree(comp);
  const scale = b.total > 0 ? c.total / b.total : 1;
  const merge = (into: TreeNode, from: TreeNode) => {
    into.base = (into.base ?? 0) + Math.round(from.total * scale);
    into.baseSelf = (into.baseSelf ?? 0) + Math.round(from.self * scale);
    for (const fc of from.children) merge(child(into, fc.name), fc);
  };
  const zero = (t: TreeNode) => {
    t.base = t.base ?? 0;
    t.baseSelf = t.baseSelf ?? 0;
    t.children.forEach(zero);
  };
  merge(c, b);
  zero(c);
  c.name = 'total';
  const out = fromTree(c);
  out.diff = { baseTotal: b.total, compTotal: c.total };
  return out;
}

/**
 * sandwich builds the callers (inverted, leaf = fn) and callees trees of one function.
 * Only the outermost occurrence in each stack counts, as in functionTable.
 */
export function sandwich(fg: Flamegraph, fn: string): { callers: Flamegraph; callees: Flamegraph } {
  const callees = newTree(fn);
  const callers = newTree(fn);
  const tree = toTree(fg);
  const walk = (t: TreeNode, path: string[]) => {
    if (t.name === fn && path.length > 0) {
      addInto(callees, t);
      // callers: the path reversed, weighted by this occurrence's total
      let cur = callers;
      cur.total += t.total;
      cur.self += t.total;
      for (let i = path.length - 1; i >= 1; i--) {
        cur.self -= t.total;
        cur = child(cur, path[i]);
        cur.total += t.total;
        cur.self += t.total;
      }
      return;
    }
    for (const c of t.children) walk(c, [...path, t.name]);
  };
  walk(tree, []);
  // walk passes the path excluding the node itself; include "total" at index 0 which we skip.
  return { callers: fromTree(callers), callees: fromTree(callees) };
}

function addInto(into: TreeNode, from: TreeNode) {
  into.total += from.total;
  into.self += from.self;
  for (const c of from.children) addInto(child(into, c.name), c);
}
