// Calls to Vispyr's own query APIs, mounted by the UI server under /prom, /tempo and
// /pyroscope on the same origin (no second data path).

import { decodeFlamegraph, type Flamegraph } from './lib/flamegraph';
import { parseExemplars, parseMatrix, parseVector, type Exemplar, type Series, type Sample } from './lib/prom';
import { parseRules, parseTargets, type Pool, type RuleGroup } from './lib/promstatus';
import { parseSearch, parseTrace, type SearchHit, type Trace } from './lib/trace';

export class ApiError extends Error {
  constructor(
    message: string,
    public status: number,
  ) {
    super(message);
  }
}

async function readError(r: Response, what: string): Promise<ApiError> {
  let msg = `${what}: HTTP ${r.status}`;
  try {
    const text = await r.text();
    try {
      const j = JSON.parse(text);
      msg = `${what}: ${j.error || j.message || text}`;
    } catch {
      if (text) msg = `${what}: ${text.slice(0, 300)}`;
    }
  } catch {
    /* keep the status line */
  }
  return new ApiError(msg, r.status);
}

async function getJSON(url: string, what: string, signal?: AbortSignal): Promise<any> {
  const r = await fetch(url, { signal, headers: { Accept: 'application/json' } });
  if (!r.ok) throw await readError(r, what);
  return r.json();
}

// --- Prometheus -----------------------------------------------------------------------

async function promPost(path: string, params: Record<string, string>, signal?: AbortSignal): Promise<any> {
  const r = await fetch('/prom/api/v1/' + path, {
    method: 'POST',
    signal,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams(params).toString(),
  });
  // The API answers errors with a JSON envelope that parseMatrix turns into a PromError.
  if (!r.ok && !(r.headers.get('content-type') ?? '').includes('json')) throw await readError(r, 'metrics query');
  return r.json();
}

export function stepFor(startSec: number, endSec: number, points = 240): number {
  return Math.max(15, Math.ceil((endSec - startSec) / points));
}

export async function queryRange(q: string, start: number, end: number, step?: number, signal?: AbortSignal): Promise<Series[]> {
  const s = step ?? stepFor(start, end);
  return parseMatrix(await promPost('query_range', { query: q, start: String(start), end: String(end), step: String(s) }, signal));
}

export async function queryInstant(q: string, time: number, signal?: AbortSignal): Promise<Sample[]> {
  return parseVector(await promPost('query', { query: q, time: String(time) }, signal));
}

export async function queryExemplars(q: string, start: number, end: number, signal?: AbortSignal): Promise<Exemplar[]> {
  return parseExemplars(await promPost('query_exemplars', { query: q, start: String(start), end: String(end) }, signal));
}

export async function labelValues(name: string, signal?: AbortSignal): Promise<string[]> {
  const j = await getJSON(`/prom/api/v1/label/${encodeURIComponent(name)}/values`, 'label values', signal);
  return j?.data ?? [];
}

export async function metricNames(signal?: AbortSignal): Promise<string[]> {
  return labelValues('__name__', signal);
}

/** scrapeTargets reads the scrape manager's active targets, grouped by scrape pool. */
export async function scrapeTargets(signal?: AbortSignal): Promise<Pool[]> {
  return parseTargets(await getJSON('/prom/api/v1/targets?state=active', 'scrape targets', signal));
}

/** ruleGroups reads the rules manager's groups, rules and their alerts. */
export async function ruleGroups(signal?: AbortSignal): Promise<RuleGroup[]> {
  return parseRules(await getJSON('/prom/api/v1/rules', 'rules', signal));
}

// --- Tempo ----------------------------------------------------------------------------

export async function searchTraces(q: string, startSec: number, endSec: number, limit = 20, signal?: AbortSignal): Promise<SearchHit[]> {
  const p = new URLSearchParams({ q, limit: String(limit), spss: '3', start: String(Math.floor(startSec)), end: String(Math.ceil(endSec)) });
  return parseSearch(await getJSON('/tempo/api/search?' + p, 'trace search', signal));
}

export async function getTrace(id: string, signal?: AbortSignal): Promise<Trace> {
  const r = await fetch(`/tempo/api/v2/traces/${encodeURIComponent(id)}`, { signal, headers: { Accept: 'application/json' } });
  if (r.status === 404) {
    // Older Tempo APIs only have v1; try it before declaring the trace missing.
    const r1 = await fetch(`/tempo/api/traces/${encodeURIComponent(id)}`, { signal, headers: { Accept: 'application/json' } });
    if (!r1.ok) throw await readError(r1, `trace ${id}`);
    return parseTrace(await r1.json());
  }
  if (!r.ok) throw await readError(r, `trace ${id}`);
  return parseTrace(await r.json());
}

export interface TagScope {
  name: string;
  tags: string[];
}

export async function searchTags(startSec: number, endSec: number, signal?: AbortSignal): Promise<TagScope[]> {
  const p = new URLSearchParams({ start: String(Math.floor(startSec)), end: String(Math.ceil(endSec)) });
  const j = await getJSON('/tempo/api/v2/search/tags?' + p, 'trace tags', signal);
  return j?.scopes ?? [];
}

export async function tagValues(tag: string, startSec: number, endSec: number, signal?: AbortSignal): Promise<{ type: string; value: string }[]> {
  const p = new URLSearchParams({ start: String(Math.floor(startSec)), end: String(Math.ceil(endSec)), limit: '100' });
  const j = await getJSON(`/tempo/api/v2/search/tag/${encodeURIComponent(tag)}/values?` + p, 'tag values', signal);
  return j?.tagValues ?? [];
}

// --- Pyroscope ------------------------------------------------------------------------

async function connect(method: string, body: unknown, signal?: AbortSignal): Promise<any> {
  const r = await fetch('/pyroscope/querier.v1.QuerierService/' + method, {
    method: 'POST',
    signal,
    headers: { 'Content-Type': 'application/json', 'Connect-Protocol-Version': '1', Accept: 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw await readError(r, method);
  return r.json();
}

export interface ProfileType {
  id: string;
  name: string;
  sampleType: string;
  sampleUnit: string;
}

export async function profileTypes(startMs: number, endMs: number, signal?: AbortSignal): Promise<ProfileType[]> {
  const j = await connect('ProfileTypes', { start: String(startMs), end: String(endMs) }, signal);
  return (j?.profileTypes ?? j?.profile_types ?? []).map((p: any) => {
    const id: string = p.ID ?? p.id ?? '';
    const parts = id.split(':');
    return { id, name: p.name ?? parts[0], sampleType: p.sampleType ?? p.sample_type ?? parts[1], sampleUnit: p.sampleUnit ?? p.sample_unit ?? parts[2] ?? '' };
  });
}

export async function profileLabelValues(name: string, typeID: string, startMs: number, endMs: number, signal?: AbortSignal): Promise<string[]> {
  const matchers = typeID ? [`{__profile_type__="${typeID}"}`] : [];
  const j = await connect('LabelValues', { name, matchers, start: String(startMs), end: String(endMs) }, signal);
  return j?.names ?? [];
}

export async function mergeStacktraces(typeID: string, selector: string, startMs: number, endMs: number, signal?: AbortSignal): Promise<Flamegraph> {
  const j = await connect(
    'SelectMergeStacktraces',
    { profileTypeID: typeID, labelSelector: selector, start: String(startMs), end: String(endMs), maxNodes: '4096' },
    signal,
  );
  return decodeFlamegraph(j?.flamegraph);
}

export async function mergeSpanProfile(typeID: string, selector: string, spanIDs: string[], startMs: number, endMs: number, signal?: AbortSignal): Promise<Flamegraph> {
  const j = await connect(
    'SelectMergeSpanProfile',
    { profileTypeID: typeID, labelSelector: selector, spanSelector: spanIDs, start: String(startMs), end: String(endMs), maxNodes: '4096' },
    signal,
  );
  return decodeFlamegraph(j?.flamegraph);
}

/** pickProfileType prefers CPU, then wall time, then whatever exists. */
export function pickProfileType(types: ProfileType[], prefer: 'cpu' | 'wall' = 'cpu'): ProfileType | undefined {
  const order = prefer === 'cpu' ? ['process_cpu:cpu', 'wall:wall', 'process_cpu', 'wall'] : ['wall:wall', 'process_cpu:cpu', 'wall', 'process_cpu'];
  for (const o of order) {
    const t = types.find((t) => t.id.startsWith(o));
    if (t) return t;
  }
  return types[0];
}
