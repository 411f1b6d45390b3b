// Parsing of OTLP-JSON traces as Tempo's trace-by-ID API returns them, and the span tree the
// waterfall draws. Tempo and OTLP disagree in small ways (hex vs base64 IDs, numeric vs named
// enums, "batches" vs "resourceSpans", "scopeSpans" vs "instrumentationLibrarySpans"), so every
// variant is accepted.

export type AttrValue = string | number | boolean | null | AttrValue[] | { [k: string]: AttrValue };

export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  service: string;
  kind: string; // server, client, producer, consumer, internal, unspecified
  start: number; // unix ms (float)
  end: number; // unix ms (float)
  duration: number; // ms
  // exact wire times, for durations across spans (float ms of today's time are only ~0.24µs precise)
  startNs?: bigint;
  endNs?: bigint;
  error: boolean;
  statusMessage: string;
  attributes: Record<string, AttrValue>;
  resource: Record<string, AttrValue>;
  events: { time: number; name: string; attributes: Record<string, AttrValue> }[];
  scope: string;
}

export interface WaterfallRow {
  span: Span;
  depth: number;
  childCount: number;
  // true when the span's parent is not in the trace (an orphan shown as a root)
  orphan: boolean;
}

export interface Trace {
  traceId: string;
  spans: Span[];
  rows: WaterfallRow[];
  start: number;
  end: number;
  duration: number; // ms, from the exact wire times when every span has them
  services: string[];
  errorCount: number;
}

/** arr returns v when it is an array: wire data is untrusted and may have any shape. */
export const arr = (v: unknown): any[] => (Array.isArray(v) ? v : []);

const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

/** normID turns a hex or base64 ID into lowercase hex; empty stays empty. */
export function normID(id: unknown): string {
  if (typeof id !== 'string' || id === '') return '';
  // Hex, possibly with leading zeros dropped (Tempo's search does that): pad to 16 or 32.
  if (/^[0-9a-fA-F]+$/.test(id) && id.length <= 32) {
    const h = id.toLowerCase();
    return /^0+$/.test(h) ? '' : h.padStart(h.length <= 16 ? 16 : 32, '0');
  }
  try {
    const bin = atob(id);
    let hex = '';
    for (let i = 0; i < bin.length; i++) hex += bin.charCodeAt(i).toString(16).padStart(2, '0');
    return /^0+$/.test(hex) ? '' : hex;
  } catch {
    return id.toLowerCase();
  }
}

/** nanoToMs converts a nanosecond timestamp given as a string or number to float ms. */
export function nanoToMs(v: unknown): number {
  if (typeof v === 'number') return v / 1e6;
  if (typeof v !== 'string' || v === '') return 0;
  // Split to keep precision: the last 6 digits are sub-millisecond.
  if (v.length > 6) return Number(v.slice(0, -6)) + Number(v.slice(-6)) / 1e6;
  return Number(v) / 1e6;
}

/** toNanos reads a nanosecond timestamp or duration exactly (a float ms of a 2026 time is only ~0.24µs precise). */
function toNanos(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return 0n;
}

/** nanoSpanMs is end − start in ms, subtracted in whole nanoseconds so that an 85µs span reads 85µs, not 85.2µs. */
export function nanoSpanMs(start: unknown, end: unknown): number {
  const d = toNanos(end) - toNanos(start);
  return d > 0n ? Number(d) / 1e6 : 0;
}

export function attrValue(v: any): AttrValue {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') return v;
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('boolValue' in v) return Boolean(v.boolValue);
  if ('bytesValue' in v) return String(v.bytesValue);
  if ('arrayValue' in v) return arr(v.arrayValue?.values).map(attrValue);
  if ('kvlistValue' in v) return attrs(v.kvlistValue?.values);
  return null;
}

export function attrs(list: any): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  if (!Array.isArray(list)) return out;
  for (const kv of list) if (kv && typeof kv === 'object' && typeof kv.key === 'string') out[kv.key] = attrValue(kv.value);
  return out;
}

function kindName(k: unknown): string {
  if (typeof k === 'number') return KINDS[k] ?? 'unspecified';
  if (typeof k === 'string') {
    const s = k.replace(/^SPAN_KIND_/, '').toLowerCase();
    return KINDS.includes(s) ? s : 'unspecified';
  }
  return 'unspecified';
}

function isError(status: any): boolean {
  if (!status) return false;
  const c = status.code;
  return c === 2 || c === 'STATUS_CODE_ERROR' || c === 'ERROR';
}

/** parseTrace accepts any of the JSON shapes of /api/v2/traces/<id> and /api/traces/<id>. */
export function parseTrace(body: any): Trace {
  const t = body?.trace ?? body ?? {};
  const batches = arr(t.resourceSpans ?? t.batches);
  const spans: Span[] = [];
  for (const rs of batches) {
    const resource = attrs(rs?.resource?.attributes);
    const service = typeof resource['service.name'] === 'string' ? (resource['service.name'] as string) : 'unknown';
    const scopes = arr(rs?.scopeSpans ?? rs?.instrumentationLibrarySpans);
    for (const ss of scopes) {
      const scope = ss?.scope?.name ?? ss?.instrumentationLibrary?.name ?? '';
      for (const s of arr(ss?.spans)) {
        if (!s || typeof s !== 'object') continue;
        const startNs = toNanos(s.startTimeUnixNano);
        const rawEnd = toNanos(s.endTimeUnixNano);
        const endNs = rawEnd > startNs ? rawEnd : startNs; // an end before the start is an instant
        const start = nanoToMs(s.startTimeUnixNano);
        const duration = nanoSpanMs(startNs, endNs);
        const end = start + duration;
        spans.push({
          traceId: normID(s.traceId),
          spanId: normID(s.spanId),
          parentSpanId: normID(s.parentSpanId),
          name: String(s.name ?? ''),
          service,
          kind: kindName(s.kind),
          start,
          end,
          duration,
          startNs,
          endNs,
          error: isError(s.status),
          statusMessage: String(s.status?.message ?? ''),
          attributes: attrs(s.attributes),
          resource,
          events: arr(s.events).map((e: any) => ({
            time: nanoToMs(e?.timeUnixNano),
            name: String(e?.name ?? ''),
            attributes: attrs(e?.attributes),
          })),
          scope: String(scope),
        });
      }
    }
  }
  return buildTrace(spans);
}

/** buildTrace orders spans depth-first, children by start time, for the waterfall. */
export function buildTrace(spans: Span[]): Trace {
  const byId = new Map<string, Span>();
  for (const s of spans) byId.set(s.spanId, s);
  const children = new Map<string, Span[]>();
  const roots: Span[] = [];
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId) && s.parentSpanId !== s.spanId) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const byStart = (a: Span, b: Span) => a.start - b.start || a.name.localeCompare(b.name);
  roots.sort(byStart);
  const rows: WaterfallRow[] = [];
  const seen = new Set<string>();
  // Iterative DFS: traces can be deep, and a cycle in bad data must not loop forever.
  const stack: { s: Span; depth: number }[] = roots.map((s) => ({ s, depth: 0 })).reverse();
  while (stack.length) {
    const { s, depth } = stack.pop()!;
    if (seen.has(s.spanId)) continue;
    seen.add(s.spanId);
    const kids = (children.get(s.spanId) ?? []).sort(byStart);
    rows.push({ span: s, depth, childCount: kids.length, orphan: depth === 0 && s.parentSpanId !== '' });
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ s: kids[i], depth: depth + 1 });
  }
  // Spans caught in a parent cycle are never reached from a root; show them at the end.
  for (const s of spans) if (!seen.has(s.spanId)) rows.push({ span: s, depth: 0, childCount: 0, orphan: true });
  let start = Infinity;
  let end = -Infinity;
  for (const s of spans) {
    start = Math.min(start, s.start);
    end = Math.max(end, s.end);
  }
  if (!spans.length) start = end = 0;
  return {
    duration: exactDuration(spans) ?? Math.max(end - start, 0),
    traceId: spans[0]?.traceId ?? '',
    spans,
    rows,
    start,
    end,
    services: [...new Set(spans.map((s) => s.service))],
    errorCount: spans.filter((s) => s.error).length,
  };
}

/** exactDuration is the trace's span in ms from the spans' wire nanoseconds, or undefined without them. */
function exactDuration(spans: Span[]): number | undefined {
  let lo: bigint | undefined;
  let hi: bigint | undefined;
  for (const s of spans) {
    if (s.startNs === undefined || s.endNs === undefined) return undefined;
    if (lo === undefined || s.startNs < lo) lo = s.startNs;
    if (hi === undefined || s.endNs > hi) hi = s.endNs;
  }
  return lo === undefined || hi === undefined ? undefined : nanoSpanMs(lo, hi);
}

/** profileSpanID returns the span's profile link ID (pyroscope.profile.id), if any. */
export function profileSpanID(s: Span): string {
  const v = s.attributes['pyroscope.profile.id'];
  return typeof v === 'string' ? v : '';
}

export interface SearchHit {
  traceID: string;
  rootServiceName: string;
  rootTraceName: string;
  start: number; // unix ms
  durationMs: number;
  spanCount: number;
  errorCount: number;
}

/**
 * subMillisecond estimates a trace's duration when Tempo's whole-millisecond durationMs is 0:
 * the latest end among its returned spans, from the trace's start (0 when none came back).
 */
function subMillisecond(t: any): number {
  const start = toNanos(t.startTimeUnixNano);
  let end = start;
  for (const ss of arr(t.spanSets ?? (t.spanSet ? [t.spanSet] : []))) {
    for (const sp of arr(ss?.spans)) {
      const e = toNanos(sp?.startTimeUnixNano) + toNanos(sp?.durationNanos);
      if (e > end) end = e;
    }
  }
  return nanoSpanMs(start, end);
}

/** parseSearch reads Tempo's /api/search response. */
export function parseSearch(body: any): SearchHit[] {
  const out: SearchHit[] = [];
  for (const t of arr(body?.traces)) {
    if (!t || typeof t !== 'object') continue;
    let spanCount = 0;
    let errorCount = 0;
    for (const st of Object.values<any>(t.serviceStats && typeof t.serviceStats === 'object' ? t.serviceStats : {})) {
      spanCount += Number(st?.spanCount ?? 0);
      errorCount += Number(st?.errorCount ?? 0);
    }
    if (!spanCount) for (const ss of arr(t.spanSets ?? (t.spanSet ? [t.spanSet] : []))) spanCount = Math.max(spanCount, Number(ss?.matched ?? 0) || 0);
    out.push({
      traceID: normID(t.traceID) || String(t.traceID ?? ''),
      rootServiceName: String(t.rootServiceName ?? '<root span not yet received>'),
      rootTraceName: String(t.rootTraceName ?? ''),
      start: nanoToMs(t.startTimeUnixNano),
      durationMs: Number(t.durationMs ?? 0) || subMillisecond(t),
      spanCount,
      errorCount,
    });
  }
  out.sort((a, b) => b.start - a.start);
  return out;
}
