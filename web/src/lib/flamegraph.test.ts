import { describe, expect, it } from 'vitest';
import { decodeFlamegraph, diffGraphs, functionTable, sandwich, stackOf } from './flamegraph';

// total(100) -> main(100) -> {work(70) -> hot(60), idle(30)} ; work self 10, hot self 60, idle self 30
const wire = {
  names: ['total', 'main', 'work', 'idle', 'hot'],
  levels: [
    { values: ['0', '100', '0', '0'] },
    { values: ['0', '100', '0', '1'] },
    { values: ['0', '70', '10', '2', '0', '30', '30', '3'] },
    { values: ['0', '60', '60', '4'] },
  ],
  total: '100',
  maxSelf: '60',
};

describe('decodeFlamegraph', () => {
  it('decodes string int64s, delta offsets and parents', () => {
    const fg = decodeFlamegraph(wire);
    expect(fg.total).toBe(100);
    expect(fg.maxSelf).toBe(60);
    expect(fg.nodes).toHaveLength(5);
    const idle = fg.nodes.find((n) => fg.names[n.name] === 'idle')!;
    expect(idle.x).toBe(70);
    expect(stackOf(fg, fg.nodes.indexOf(idle))).toEqual(['main', 'idle']);
    const hot = fg.nodes.findIndex((n) => fg.names[n.name] === 'hot');
    expect(stackOf(fg, hot)).toEqual(['main', 'work', 'hot']);
  });

  it('accepts numbers and gaps between siblings', () => {
    const fg = decodeFlamegraph({
      names: ['total', 'a', 'b', 'c'],
      levels: [{ values: [0, 10, 0, 0] }, { values: [0, 4, 0, 1, 2, 4, 4, 2] }, { values: [6, 4, 4, 3] }],
    });
    expect(fg.total).toBe(10); // from the root when total is missing
    const c = fg.nodes[fg.nodes.length - 1];
    expect(c.x).toBe(6);
    expect(fg.names[fg.nodes[c.parent].name]).toBe('b');
  });

  it('survives empty and malformed input', () => {
    expect(decodeFlamegraph(undefined).nodes).toEqual([]);
    expect(decodeFlamegraph({ levels: [{ values: ['x', '1'] }] }).nodes).toEqual([]);
  });
});

describe('functionTable', () => {
  it('sums self and counts recursion once in total', () => {
    const fg = decodeFlamegraph({
      names: ['total', 'f', 'g'],
      levels: [
        { values: [0, 10, 0, 0] },
        { values: [0, 10, 2, 1] },
        { values: [0, 8, 3, 1] }, // f -> f (recursion)
        { values: [0, 5, 5, 2] },
      ],
    });
    const rows = functionTable(fg);
    const f = rows.find((r) => r.name === 'f')!;
    expect(f.total).toBe(10);
    expect(f.self).toBe(5);
    expect(rows[0].name).toBe('f');
    expect(rows.find((r) => r.name === 'g')!.total).toBe(5);
  });
});

describe('sandwich', () => {
  it('builds callers and callees of a function', () => {
    const fg = decodeFlamegraph(wire);
    const { callers, callees } = sandwich(fg, 'work');
    expect(callees.total).toBe(70);
    expect(callees.names).toContain('hot');
    expect(callers.total).toBe(70);
    expect(callers.names).toContain('main');
  });
});

describe('diffGraphs', () => {
  it('normalises the baseline and keeps frames found in either side', () => {
    const base = decodeFlamegraph({
      names: ['total', 'a', 'b'],
      levels: [{ values: [0, 50, 0, 0] }, { values: [0, 50, 50, 1] }],
    });
    const comp = decodeFlamegraph({
      names: ['total', 'a', 'b'],
      levels: [{ values: [0, 100, 0, 0] }, { values: [0, 50, 50, 1, 0, 50, 50, 2] }],
    });
    const d = diffGraphs(base, comp);
    const a = d.nodes.find((n) => d.names[n.name] === 'a')!;
    const b = d.nodes.find((n) => d.names[n.name] === 'b')!;
    expect(a.baseTotal).toBe(100); // 50 scaled to the comparison's 100
    expect(a.total).toBe(50);
    expect(b.baseTotal).toBe(0);
    expect(b.total).toBe(50);
    expect(d.diff).toEqual({ baseTotal: 50, compTotal: 100 });
    const rows = functionTable(d);
    expect(rows.find((r) => r.name === 'a')).toMatchObject({ self: 50, baseSelf: 100 });
    expect(rows.find((r) => r.name === 'b')).toMatchObject({ self: 50, baseSelf: 0, total: 50, baseTotal: 0 });
    // children never overflow their parent's box, even when one side is larger
    for (const n of d.nodes) {
      if (n.parent < 0) continue;
      const p = d.nodes[n.parent];
      expect(n.x).toBeGreaterThanOrEqual(p.x);
      expect(n.x + (n.width ?? n.total)).toBeLessThanOrEqual(p.x + (p.width ?? p.total));
    }
  });
});

import { hueKey, shortName } from '../components/FlameGraph';

describe('frame names', () => {
  it('colours by package and shortens import paths', () => {
    expect(hueKey('github.com/vispyr/vispyr/test/ui.vispyrE2EHotLoop')).toBe('github.com/vispyr/vispyr/test/ui');
    expect(hueKey('github.com/grafana/pyroscope-go.TagWrapper')).toBe('github.com/grafana/pyroscope-go');
    expect(hueKey('runtime.main')).toBe('runtime');
    expect(hueKey('net/http.(*conn).serve')).toBe('net/http');
    expect(hueKey('./app.js:computeCheckoutTotal:27')).toBe('./app.js');
    expect(shortName('github.com/vispyr/vispyr/test/ui.vispyrE2EHotLoop')).toBe('ui.vispyrE2EHotLoop');
    expect(shortName('net/http.(*conn).serve')).toBe('http.(*conn).serve');
    expect(shortName('main')).toBe('main');
  });
});
