import { describe, expect, it } from 'vitest';
import { completionAt, compareNs, isLogQuery, level, parseStreams, parseVolume, traceID, traceLogsQuery, volumeQuery } from './logs';

describe('parseStreams', () => {
  it('flattens streams newest first with categorized labels', () => {
    const rows = parseStreams([
      { stream: { service_name: 'a' }, values: [['1700000000000000001', 'old'], ['1700000000500000000', 'new', { structuredMetadata: { trace_id: 'abc' }, parsed: { k: 'v' } }]] },
      { stream: { service_name: 'b' }, values: [['999', 'oldest']] },
    ]);
    expect(rows.map((r) => r.line)).toEqual(['new', 'old', 'oldest']);
    expect(rows[0].metadata.trace_id).toBe('abc');
    expect(rows[0].parsed.k).toBe('v');
    expect(rows[0].ms).toBe(1700000000500);
    expect(rows[1].labels.service_name).toBe('a');
  });
  it('survives junk', () => {
    expect(parseStreams(null)).toEqual([]);
    expect(parseStreams([{ stream: 3, values: [[1], 'x', null] }])).toEqual([]);
  });
  it('compares nanosecond strings beyond double precision', () => {
    expect(compareNs('1700000000000000002', '1700000000000000001')).toBeGreaterThan(0);
    expect(compareNs('99', '100')).toBeLessThan(0);
  });
});

describe('trace links', () => {
  const row = (line: string, metadata = {}, labels = {}) => ({ ns: '1', ms: 0, line, labels, metadata, parsed: {} });
  it('prefers structured metadata, then the line', () => {
    expect(traceID(row('traceID=ffff000000000000', { trace_id: 'abcd' }))).toBe('abcd');
    expect(traceID(row('level=info traceID=4bf92f3577b34da6a3ce929d0e0e4736 msg=hi'))).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(traceID(row('{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}'))).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(traceID(row('no trace here, traceID=xyz'))).toBe('');
  });
  it('builds the trace and span queries', () => {
    expect(traceLogsQuery('abc')).toBe('{service_name=~".+"} | trace_id="abc"');
    expect(traceLogsQuery('abc', 'shop "x"', 'def')).toBe('{service_name="shop \\"x\\""} | span_id="def"');
  });
  it('reads the level', () => {
    expect(level(row('x', { detected_level: 'ERROR' }))).toBe('error');
    expect(level(row('x'))).toBe('unknown');
  });
});

describe('queries', () => {
  it('tells log from metric queries and wraps the volume', () => {
    expect(isLogQuery(' {app="a"} |= "x"')).toBe(true);
    expect(isLogQuery('rate({app="a"}[1m])')).toBe(false);
    expect(volumeQuery('{app="a"} |= "x"', 30)).toBe('sum by (detected_level, level) (count_over_time({app="a"} |= "x" [30s]))');
    expect(parseVolume({ result: [{ metric: { detected_level: 'warn' }, values: [[10, '2']] }] })).toEqual([{ level: 'warn', points: [[10, 2]] }]);
    expect(parseVolume({ result: [{ metric: { level: 'ERROR' }, values: [] }, { metric: {}, values: [] }] }).map((s) => s.level)).toEqual(['error', 'unknown']);
  });
});

describe('completionAt', () => {
  it('finds label names, values and stages', () => {
    expect(completionAt('{')).toEqual({ kind: 'label', prefix: '' });
    expect(completionAt('{serv')).toEqual({ kind: 'label', prefix: 'serv' });
    expect(completionAt('{app="a", lev')).toEqual({ kind: 'label', prefix: 'lev' });
    expect(completionAt('{app="ch')).toEqual({ kind: 'value', label: 'app', prefix: 'ch', quoted: true });
    expect(completionAt('{app=~')).toEqual({ kind: 'value', label: 'app', prefix: '', quoted: false });
    expect(completionAt('{app="a"')).toBe(null);
    expect(completionAt('{app="a"} | js')).toEqual({ kind: 'stage', prefix: 'js' });
    expect(completionAt('{app="a"} |= "x"')).toBe(null);
  });
});
