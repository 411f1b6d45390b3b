import { describe, expect, it } from 'vitest';
import { decodeFlamegraph, diffGraphs, functionTable, sandwich } from './flamegraph';
import { parseExemplars, parseMatrix, PromError } from './prom';
import { activeAlerts, parseRules, parseTargets } from './promstatus';
import { parseStreams, parseVolume } from './logs';
import { parseSearch, parseTrace } from './trace';

// Seeded random JSON-ish values: decoders must never throw on garbage from the wire
// (except the documented PromError for an error envelope).
function rng(seed: number) {
  return () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
}

function junk(r: () => number, depth = 0): any {
  const k = Math.floor(r() * 9);
  if (depth > 4) return k;
  switch (k) {
    case 0:
      return null;
    case 1:
      return String(Math.floor(r() * 1e6) - 5e5);
    case 2:
      return r() * 100 - 50;
    case 3:
      return ['names', 'levels', 'values', 'total', 'resourceSpans', 'spans', 'traces', 'data', 'result'][Math.floor(r() * 9)];
    case 4:
    case 5:
      return Array.from({ length: Math.floor(r() * 6) }, () => junk(r, depth + 1));
    default: {
      const keys = ['names', 'levels', 'values', 'total', 'maxSelf', 'resourceSpans', 'scopeSpans', 'spans', 'spanId', 'parentSpanId', 'startTimeUnixNano', 'traces', 'status', 'data', 'resultType', 'result', 'values', 'exemplars', 'attributes', 'activeTargets', 'labels', 'health', 'lastScrape', 'groups', 'rules', 'alerts', 'state'];
      const o: Record<string, any> = {};
      for (let i = 0; i < 4; i++) o[keys[Math.floor(r() * keys.length)]] = junk(r, depth + 1);
      if (r() < 0.3) o.resultType = ['matrix', 'vector', 'scalar'][Math.floor(r() * 3)];
      return o;
    }
  }
}

describe('decoders survive garbage', () => {
  it('flame graphs, traces, searches and PromQL answers', () => {
    const r = rng(42);
    for (let i = 0; i < 3000; i++) {
      const v = junk(r);
      const fg = decodeFlamegraph(v);
      functionTable(fg);
      if (fg.nodes.length) {
        sandwich(fg, fg.names[fg.nodes[fg.nodes.length - 1].name] ?? 'x');
        diffGraphs(fg, fg);
      }
      parseTrace(v);
      parseSearch(v);
      parseStreams(v);
      parseVolume(v);
      for (const f of [parseMatrix, parseExemplars, parseTargets, (b: any) => activeAlerts(parseRules(b))]) {
        try {
          f({ status: 'success', data: v });
        } catch (e) {
          // only a well-formed refusal is allowed, never a TypeError
          expect(e).toBeInstanceOf(PromError);
        }
      }
    }
  });
});
