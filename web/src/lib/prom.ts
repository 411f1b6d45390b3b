// Prometheus HTTP API responses (COMPAT §1) turned into the column-oriented data uPlot wants.

export type Labels = Record<string, string>;

export interface Series {
  labels: Labels;
  // parallel arrays; times in unix seconds
  t: number[];
  v: number[];
}

export interface Sample {
  labels: Labels;
  t: number;
  v: number;
}

export interface Exemplar {
  seriesLabels: Labels;
  labels: Labels;
  value: number;
  t: number; // unix seconds
  traceId: string;
}

export class PromError extends Error {
  constructor(
    message: string,
    public errorType = '',
  ) {
    super(message);
  }
}

/** promValue parses Prometheus's string sample values, including NaN and ±Inf. */
export function promValue(s: unknown): number {
  if (typeof s === 'number') return s;
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (typeof s !== 'string') return NaN;
  return Number(s);
}

const arr = (v: unknown): any[] => (Array.isArray(v) ? v : []);

function envelope(body: any): any {
  if (!body || typeof body !== 'object') throw new PromError('empty response from the metrics API');
  if (body.status === 'error') throw new PromError(body.error || 'query failed', body.errorType);
  return body.data;
}

/** parseMatrix reads a query_range answer; an instant vector or scalar also becomes series. */
export function parseMatrix(body: any): Series[] {
  const data = envelope(body);
  if (!data || typeof data !== 'object') return [];
  switch (data.resultType) {
    case 'matrix':
      return arr(data.result).map((r: any) => ({
        labels: labelsOf(r?.metric),
        t: arr(r?.values).map((p: any) => Number(arr(p)[0])),
        v: arr(r?.values).map((p: any) => promValue(arr(p)[1])),
      }));
    case 'vector':
      return arr(data.result).map((r: any) => ({
        labels: labelsOf(r?.metric),
        t: [Number(arr(r?.value)[0])],
        v: [promValue(arr(r?.value)[1])],
      }));
    case 'scalar':
    case 'string':
      return [{ labels: {}, t: [Number(arr(data.result)[0])], v: [promValue(arr(data.result)[1])] }];
    default:
      return [];
  }
}

function labelsOf(v: unknown): Labels {
  const out: Labels = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) out[k] = String(x);
  return out;
}

/** parseVector reads an instant query answer as one sample per series. */
export function parseVector(body: any): Sample[] {
  return parseMatrix(body).map((s) => ({ labels: s.labels, t: s.t[s.t.length - 1] ?? 0, v: s.v[s.v.length - 1] ?? NaN }));
}

/** parseExemplars reads /api/v1/query_exemplars. */
export function parseExemplars(body: any): Exemplar[] {
  const data = envelope(body);
  const out: Exemplar[] = [];
  for (const group of arr(data)) {
    for (const e of arr(group?.exemplars)) {
      const labels = labelsOf(e?.labels);
      out.push({
        seriesLabels: labelsOf(group?.seriesLabels),
        labels,
        value: promValue(e?.value),
        t: Number(e?.timestamp),
        traceId: labels.trace_id ?? labels.traceID ?? labels.traceId ?? '',
      });
    }
  }
  return out;
}

/**
 * align merges series onto one sorted time axis (uPlot's AlignedData); gaps become null so
 * the chart breaks the line rather than interpolating over missing data.
 */
export function align(series: Series[]): { x: number[]; ys: (number | null)[][] } {
  const ts = new Set<number>();
  for (const s of series) for (const t of s.t) ts.add(t);
  const x = [...ts].sort((a, b) => a - b);
  const pos = new Map<number, number>();
  x.forEach((t, i) => pos.set(t, i));
  const ys = series.map((s) => {
    const col: (number | null)[] = new Array(x.length).fill(null);
    s.t.forEach((t, i) => {
      const v = s.v[i];
      col[pos.get(t)!] = Number.isFinite(v) ? v : null;
    });
    return col;
  });
  return { x, ys };
}

/** seriesName renders labels the way Prometheus prints a series. */
export function seriesName(labels: Labels, keys?: string[]): string {
  const name = labels.__name__ ?? '';
  const ks = (keys ?? Object.keys(labels)).filter((k) => k !== '__name__' && labels[k] !== undefined);
  if (keys && ks.length) return ks.map((k) => labels[k]).join(' · ');
  const inner = ks.map((k) => `${k}="${labels[k]}"`).join(', ');
  return inner ? `${name}{${inner}}` : name || '{}';
}

/** last returns the last finite value of a series. */
export function last(s: Series | undefined): number {
  if (!s) return NaN;
  for (let i = s.v.length - 1; i >= 0; i--) if (Number.isFinite(s.v[i])) return s.v[i];
  return NaN;
}

/** byLabel indexes series by the first non-empty of the given label names. */
export function byLabel(series: Series[], ...names: string[]): Map<string, Series> {
  const m = new Map<string, Series>();
  for (const s of series) {
    const k = names.map((n) => s.labels[n]).find((v) => v !== undefined && v !== '');
    if (k !== undefined && !m.has(k)) m.set(k, s);
  }
  return m;
}
