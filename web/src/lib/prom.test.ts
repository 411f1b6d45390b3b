import { describe, expect, it } from 'vitest';
import { align, byLabel, last, parseExemplars, parseMatrix, parseVector, PromError, seriesName } from './prom';

describe('parseMatrix', () => {
  it('parses matrix values including NaN and Inf', () => {
    const s = parseMatrix({
      status: 'success',
      data: { resultType: 'matrix', result: [{ metric: { job: 'a' }, values: [[1, '1.5'], [2, 'NaN'], [3, '+Inf']] }] },
    });
    expect(s[0].t).toEqual([1, 2, 3]);
    expect(s[0].v[0]).toBe(1.5);
    expect(Number.isNaN(s[0].v[1])).toBe(true);
    expect(s[0].v[2]).toBe(Infinity);
    expect(last(s[0])).toBe(1.5);
  });
  it('parses vectors and scalars', () => {
    expect(parseVector({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [10, '2'] }] } })[0]).toEqual({ labels: {}, t: 10, v: 2 });
    expect(parseVector({ status: 'success', data: { resultType: 'scalar', result: [4, '2'] } })[0].v).toBe(2);
  });
  it('throws the API error message', () => {
    expect(() => parseMatrix({ status: 'error', errorType: 'bad_data', error: 'parse error at char 3' })).toThrowError(PromError);
    expect(() => parseMatrix({ status: 'error', error: 'parse error at char 3' })).toThrow(/char 3/);
  });
});

describe('align', () => {
  it('puts series on a shared axis with nulls for gaps', () => {
    const { x, ys } = align([
      { labels: {}, t: [1, 3], v: [1, 3] },
      { labels: {}, t: [2, 3], v: [NaN, 6] },
    ]);
    expect(x).toEqual([1, 2, 3]);
    expect(ys).toEqual([[1, null, 3], [null, null, 6]]);
  });
});

describe('parseExemplars', () => {
  it('reads trace ids, string values and float timestamps', () => {
    const ex = parseExemplars({
      status: 'success',
      data: [{ seriesLabels: { service: 'a' }, exemplars: [{ labels: { trace_id: 'abc' }, value: '0.25', timestamp: 1600096945.479 }] }],
    });
    expect(ex).toEqual([{ seriesLabels: { service: 'a' }, labels: { trace_id: 'abc' }, value: 0.25, t: 1600096945.479, traceId: 'abc' }]);
  });
});

describe('names', () => {
  it('renders series names and indexes by label', () => {
    expect(seriesName({ __name__: 'up', job: 'x' })).toBe('up{job="x"}');
    expect(seriesName({ a: '1', b: '2' }, ['b'])).toBe('2');
    const m = byLabel([{ labels: { service_name: 's1' }, t: [], v: [] }, { labels: { service: 's2' }, t: [], v: [] }], 'service', 'service_name');
    expect([...m.keys()]).toEqual(['s1', 's2']);
  });
});
