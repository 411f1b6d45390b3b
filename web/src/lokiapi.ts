// Calls to Vispyr's Loki query API, which the UI server serves on the same origin under
// Loki's own /loki/api/v1/ paths (read paths only).

import { ApiError } from './api';
import { currentTenant } from './session';
import { parseStreams, parseVolume, type LogLine, type VolumeSeries } from './lib/logs';

const BASE = '/loki/api/v1/';
const ns = (sec: number) => String(Math.round(sec * 1000)) + '000000';

async function get(path: string, params: Record<string, string>, what: string, signal?: AbortSignal): Promise<any> {
  const r = await fetch(BASE + path + '?' + new URLSearchParams(params), {
    signal,
    // Structured metadata and parsed labels come apart from the stream labels, as Grafana asks.
    headers: { Accept: 'application/json', 'X-Loki-Response-Encoding-Flags': 'categorize-labels' },
  });
  const text = await r.text();
  if (!r.ok) {
    // Loki answers errors in plain text (JSON from the UI server when logs are off).
    let msg = text.trim();
    try {
      const j = JSON.parse(text);
      msg = j.error || j.message || msg;
    } catch {
      /* plain text */
    }
    throw new ApiError(`${what}: ${msg || 'HTTP ' + r.status}`, r.status);
  }
  return JSON.parse(text);
}

export async function queryLogs(q: string, start: number, end: number, limit: number, signal?: AbortSignal): Promise<LogLine[]> {
  const j = await get('query_range', { query: q, start: ns(start), end: ns(end), limit: String(limit), direction: 'backward' }, 'log query', signal);
  return parseStreams(j?.data?.result);
}

export async function queryVolume(q: string, start: number, end: number, step: number, signal?: AbortSignal): Promise<VolumeSeries[]> {
  const j = await get('query_range', { query: q, start: ns(start), end: ns(end), step: String(step) }, 'log volume', signal);
  return parseVolume(j?.data);
}

/** queryMetric runs a LogQL metric query: one series per label set. */
export async function queryMetric(q: string, start: number, end: number, step: number, signal?: AbortSignal): Promise<{ metric: Record<string, string>; values: [number, number][] }[]> {
  const j = await get('query_range', { query: q, start: ns(start), end: ns(end), step: String(step) }, 'metric query', signal);
  return (j?.data?.result ?? []).map((r: any) => ({ metric: r.metric ?? {}, values: (r.values ?? []).map((p: any) => [Number(p[0]), Number(p[1])]) }));
}

export async function labelNames(start: number, end: number, signal?: AbortSignal): Promise<string[]> {
  const j = await get('labels', { start: ns(start), end: ns(end) }, 'labels', signal);
  return j?.data ?? [];
}

export async function labelValues(name: string, start: number, end: number, signal?: AbortSignal): Promise<string[]> {
  const j = await get(`label/${encodeURIComponent(name)}/values`, { start: ns(start), end: ns(end) }, 'label values', signal);
  return j?.data ?? [];
}

/**
 * tail opens Loki's live tail websocket: onLines gets each batch, onEnd the reason it stopped.
 * The returned function closes it.
 */
export function tail(q: string, startSec: number, onLines: (l: LogLine[]) => void, onEnd: (reason: string) => void): () => void {
  const p = new URLSearchParams({ query: q, start: ns(startSec), limit: '100' });
  // A WebSocket carries no headers: the tenant the user switched to goes in the URL, which the
  // UI server checks against the session and turns back into X-Scope-OrgID.
  const t = currentTenant();
  if (t) p.set('X-Scope-OrgID', t);
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${BASE}tail?${p}`);
  let closed = false;
  ws.onmessage = (e) => {
    try {
      onLines(parseStreams(JSON.parse(String(e.data))?.streams));
    } catch {
      /* a malformed frame is skipped */
    }
  };
  ws.onclose = (e) => {
    if (!closed) onEnd(e.reason || `live tail closed (code ${e.code})`);
  };
  return () => {
    closed = true;
    ws.close();
  };
}
