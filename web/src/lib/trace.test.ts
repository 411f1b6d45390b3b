import { describe, expect, it } from 'vitest';
import { normID, parseSearch, parseTrace, profileSpanID } from './trace';
import { fmtMs } from './format';

const kv = (key: string, v: string) => ({ key, value: { stringValue: v } });

const body = {
  trace: {
    resourceSpans: [
      {
        resource: { attributes: [kv('service.name', 'frontend')] },
        scopeSpans: [
          {
            scope: { name: 'lib' },
            spans: [
              { traceId: 'AAAAAAAAAAAAAAAAAAAAAQ==', spanId: 'AAAAAAAAAAE=', name: 'GET /', kind: 'SPAN_KIND_SERVER', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000', attributes: [kv('pyroscope.profile.id', '0000000000000001')] },
              { traceId: 'AAAAAAAAAAAAAAAAAAAAAQ==', spanId: 'AAAAAAAAAAM=', parentSpanId: 'AAAAAAAAAAE=', name: 'late child', kind: 3, startTimeUnixNano: '1700000000050000000', endTimeUnixNano: '1700000000060000000' },
            ],
          },
        ],
      },
      {
        resource: { attributes: [kv('service.name', 'backend')] },
        instrumentationLibrarySpans: [
          {
            spans: [
              { traceId: '00000000000000000000000000000001', spanId: '0000000000000002', parentSpanId: '0000000000000001', name: 'db', kind: 2, status: { code: 2, message: 'boom' }, startTimeUnixNano: '1700000000010000000', endTimeUnixNano: '1700000000040000000', events: [{ name: 'exception', timeUnixNano: '1700000000020000000', attributes: [kv('exception.message', 'boom')] }], attributes: [{ key: 'n', value: { intValue: '42' } }] },
              { spanId: '0000000000000009', parentSpanId: '00000000000000ff', name: 'orphan', startTimeUnixNano: '1700000000000500000', endTimeUnixNano: '1700000000001000000' },
            ],
          },
        ],
      },
    ],
  },
};

describe('parseTrace', () => {
  const t = parseTrace(body);
  it('normalises IDs and enums from both OTLP JSON variants', () => {
    expect(t.traceId).toBe('00000000000000000000000000000001');
    expect(t.spans.map((s) => s.kind)).toEqual(['server', 'client', 'server', 'unspecified']);
    expect(t.services).toEqual(['frontend', 'backend']);
    expect(t.errorCount).toBe(1);
  });
  it('orders the waterfall depth-first with children by start time', () => {
    expect(t.rows.map((r) => [r.span.name, r.depth])).toEqual([
      ['GET /', 0],
      ['db', 1],
      ['late child', 1],
      ['orphan', 0],
    ]);
    expect(t.rows[3].orphan).toBe(true);
    expect(t.rows[0].childCount).toBe(2);
  });
  it('keeps times, attributes, events and the profile link', () => {
    const db = t.spans.find((s) => s.name === 'db')!;
    expect(db.duration).toBeCloseTo(30, 6);
    expect(db.attributes.n).toBe(42);
    expect(db.events[0].attributes['exception.message']).toBe('boom');
    expect(db.statusMessage).toBe('boom');
    expect(t.end - t.start).toBeCloseTo(100, 6);
    expect(profileSpanID(t.spans[0])).toBe('0000000000000001');
  });
  it('accepts the v1 shape and survives garbage', () => {
    expect(parseTrace({ batches: body.trace.resourceSpans }).spans).toHaveLength(4);
    expect(parseTrace(null).rows).toEqual([]);
    expect(parseTrace({ resourceSpans: [{ scopeSpans: [{ spans: [{}] }] }] }).spans).toHaveLength(1);
  });
  it('does not loop on a parent cycle', () => {
    const cyc = parseTrace({
      resourceSpans: [{ scopeSpans: [{ spans: [
        { spanId: '0000000000000001', parentSpanId: '0000000000000002', name: 'a' },
        { spanId: '0000000000000002', parentSpanId: '0000000000000001', name: 'b' },
      ] }] }],
    });
    expect(cyc.rows).toHaveLength(2);
  });
});

describe('normID', () => {
  it('pads hex with dropped leading zeros and decodes base64', () => {
    expect(normID('abc')).toBe('0000000000000abc');
    expect(normID('1234567890abcdef1')).toBe('0000000000000001234567890abcdef1');
    expect(normID('AAAAAAAAAAE=')).toBe('0000000000000001');
    expect(normID('')).toBe('');
  });
});

describe('parseSearch', () => {
  it('reads Tempo search results newest first', () => {
    const hits = parseSearch({
      traces: [
        { traceID: '1', rootServiceName: 'a', rootTraceName: 'x', startTimeUnixNano: '1000000000', durationMs: 5, serviceStats: { a: { spanCount: 3, errorCount: 1 } } },
        { traceID: '2', rootServiceName: 'b', startTimeUnixNano: '2000000000', spanSets: [{ matched: 2 }] },
      ],
    });
    expect(hits.map((h) => h.rootServiceName)).toEqual(['b', 'a']);
    expect(hits[1]).toMatchObject({ start: 1000, durationMs: 5, spanCount: 3, errorCount: 1 });
    expect(hits[0].spanCount).toBe(2);
    expect(hits[0].durationMs).toBe(0);
  });

  it('keeps sub-millisecond durations that Tempo rounds to 0 ms', () => {
    const [hit] = parseSearch({
      traces: [
        {
          traceID: '3', startTimeUnixNano: '1000000000',
          spanSets: [{ spans: [{ startTimeUnixNano: '1000000000', durationNanos: '850000' }, { startTimeUnixNano: '1000100000', durationNanos: '20000' }] }],
        },
      ],
    });
    expect(hit.durationMs).toBeCloseTo(0.85);
    expect(fmtMs(hit.durationMs)).toBe('850µs');
  });

  it('reads microsecond spans exactly at today\'s timestamps, where float ms are ~0.24µs coarse', () => {
    // 1796567683123456789 ns: as float ms its last digits are lost, so end − start came out 85.2µs.
    const t0 = 1796567683123456789n;
    const ns = (d: bigint) => String(t0 + d);
    const tr = parseTrace({
      batches: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'fast' } }] },
          scopeSpans: [
            {
              spans: [
                { traceId: 'AAAAAAAAAAAAAAAAAAAAAQ==', spanId: 'AAAAAAAAAAE=', name: 'root', startTimeUnixNano: ns(0n), endTimeUnixNano: ns(85_000n) },
                { traceId: 'AAAAAAAAAAAAAAAAAAAAAQ==', spanId: 'AAAAAAAAAAI=', parentSpanId: 'AAAAAAAAAAE=', name: 'child', startTimeUnixNano: ns(100n), endTimeUnixNano: ns(85_100n - 36_000n) },
              ],
            },
          ],
        },
      ],
    });
    expect(tr.spans.map((s) => fmtMs(s.duration))).toEqual(['85µs', '49µs']);
    expect(fmtMs(tr.duration)).toBe('85µs');
    const [hit] = parseSearch({
      traces: [{ traceID: '4', startTimeUnixNano: ns(0n), spanSets: [{ spans: [{ startTimeUnixNano: ns(100n), durationNanos: '84900' }] }] }],
    });
    expect(fmtMs(hit.durationMs)).toBe('85µs');
  });
});
