// Pure helpers of the Logs page: Loki's answers turned into rows, trace IDs found in a line,
// what LogQL is being typed at the cursor, and the queries the page derives from the user's.

export type Labels = Record<string, string>;

export interface LogLine {
  ns: string; // Loki's nanosecond timestamp, as sent (a string: it overflows a double)
  ms: number;
  line: string;
  labels: Labels; // the stream's labels
  metadata: Labels; // structured metadata (trace_id, span_id, detected_level, …)
  parsed: Labels; // labels the query's parsers added
}

export interface VolumeSeries {
  level: string;
  points: [number, number][]; // [unix seconds, count]
}

const obj = (v: unknown): Labels => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Labels) : {});

/**
 * parseStreams flattens the streams of a Loki log query or tail message into lines, newest first.
 * With categorize-labels each value carries a third element {structuredMetadata, parsed}; without
 * it those are folded into the stream's labels, as Loki's default encoding does.
 */
export function parseStreams(streams: unknown): LogLine[] {
  const out: LogLine[] = [];
  for (const s of Array.isArray(streams) ? streams : []) {
    const labels = obj(s?.stream);
    for (const v of Array.isArray(s?.values) ? s.values : []) {
      if (!Array.isArray(v) || v.length < 2) continue;
      const ns = String(v[0]);
      const extra = obj(v[2]);
      out.push({ ns, ms: nsToMs(ns), line: String(v[1]), labels, metadata: obj(extra.structuredMetadata), parsed: obj(extra.parsed) });
    }
  }
  return out.sort((a, b) => compareNs(b.ns, a.ns));
}

/** compareNs orders decimal nanosecond strings without losing precision. */
export function compareNs(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function nsToMs(ns: string): number {
  return ns.length > 6 ? Number(ns.slice(0, -6)) : 0;
}

const traceInLine = /\b(?:trace_?id|traceID)["']?\s*[=:]\s*["']?([0-9a-fA-F]{16,32})\b/i;

/** traceID finds a line's trace: its structured metadata first, then labels, then the text. */
export function traceID(l: LogLine): string {
  for (const src of [l.metadata, l.parsed, l.labels]) {
    for (const k of ['trace_id', 'traceID', 'traceId', 'traceid']) {
      if (src[k]) return src[k];
    }
  }
  return traceInLine.exec(l.line)?.[1] ?? '';
}

/** level is the line's severity as Loki 3 detects it, for colouring. */
export function level(l: LogLine): string {
  return (l.metadata.detected_level ?? l.labels.detected_level ?? l.parsed.level ?? l.labels.level ?? l.metadata.level ?? 'unknown').toLowerCase();
}

/** isLogQuery tells a log query (which returns lines) from a metric query (which returns series). */
export function isLogQuery(q: string): boolean {
  return q.trim().startsWith('{');
}

/**
 * volumeQuery counts a log query's lines per step and level: the histogram over the lines.
 * detected_level is the structured metadata Loki 3 (and Vispyr) sets on ingest, unless the
 * stream has a level label of its own.
 */
export function volumeQuery(q: string, stepSec: number): string {
  return `sum by (detected_level, level) (count_over_time(${q.trim()} [${stepSec}s]))`;
}

export function volumeStep(startSec: number, endSec: number, bars = 60): number {
  const raw = Math.max(1, Math.ceil((endSec - startSec) / bars));
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400]) {
    if (s >= raw) return s;
  }
  return raw;
}

/** parseVolume reads a query_range matrix of volumeQuery into series by level. */
export function parseVolume(data: any): VolumeSeries[] {
  const res = Array.isArray(data?.result) ? data.result : [];
  return res.map((r: any) => ({
    level: String(r?.metric?.detected_level ?? r?.metric?.level ?? 'unknown').toLowerCase(),
    points: (Array.isArray(r?.values) ? r.values : []).map((p: any) => [Number(p[0]), Number(p[1])] as [number, number]),
  }));
}

export type Completion = { kind: 'label'; prefix: string } | { kind: 'value'; label: string; prefix: string; quoted: boolean } | { kind: 'stage'; prefix: string } | null;

/** completionAt says what is typed before the cursor: a label name or value inside {}, or a pipeline stage after |. */
export function completionAt(text: string): Completion {
  const open = text.lastIndexOf('{');
  const inSelector = open >= 0 && open > text.lastIndexOf('}');
  if (inSelector) {
    const v = /([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*("?)([^"]*)$/.exec(text);
    if (v && !v[4].includes('"')) return { kind: 'value', label: v[1], prefix: v[4], quoted: v[3] === '"' };
    const l = /(?:^|[{,\s])([A-Za-z_]\w*)?$/.exec(text);
    if (l) return { kind: 'label', prefix: l[1] ?? '' };
    return null;
  }
  const st = /\|\s*([a-z_]*)$/.exec(text);
  if (st && open >= 0) return { kind: 'stage', prefix: st[1] };
  return null;
}

export const STAGES = ['json', 'logfmt', 'pattern', 'regexp', 'line_format', 'label_format', 'drop', 'keep', 'unwrap', 'decolorize', '= ', '~ '];

/** escapeValue quotes a label value for a LogQL string literal. */
export function escapeValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

/** traceLogsQuery is the LogQL of a trace's (or one span's) lines, by their structured metadata. */
export function traceLogsQuery(traceId: string, service?: string, spanId?: string): string {
  const sel = service ? `{service_name="${escapeValue(service)}"}` : '{service_name=~".+"}';
  return spanId ? `${sel} | span_id="${spanId}"` : `${sel} | trace_id="${traceId}"`;
}
