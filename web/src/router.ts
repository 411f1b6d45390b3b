// A tiny history router and the global time range, both kept in the URL so that every view
// can be shared by copying the address bar.

import { useEffect, useState } from 'preact/hooks';
import { parseDuration } from './lib/format';

const listeners = new Set<() => void>();

export function navigate(url: string, replace = false) {
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((l) => l());
}

window.addEventListener('popstate', () => listeners.forEach((l) => l()));

/** useLocation re-renders on navigation and returns the path and query. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const [, set] = useState(0);
  useEffect(() => {
    const l = () => set((n) => n + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

/** setQuery updates some query parameters, keeping the others (and the time range). */
export function setQuery(changes: Record<string, string | undefined | null>, replace = false) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === '') q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  navigate(location.pathname + (s ? '?' + s : ''), replace);
}

/** link builds a URL for path that carries the current time range and refresh over. */
export function link(path: string, params: Record<string, string> = {}): string {
  const cur = new URLSearchParams(location.search);
  const q = new URLSearchParams();
  for (const k of ['from', 'to', 'refresh']) {
    const v = cur.get(k);
    if (v) q.set(k, v);
  }
  for (const [k, v] of Object.entries(params)) q.set(k, v);
  const s = q.toString();
  return path + (s ? '?' + s : '');
}

export interface TimeRange {
  start: number; // unix seconds
  end: number;
  label: string;
  relative: boolean;
}

export const DEFAULT_FROM = '15m';

/** timeRange resolves the URL's from/to: relative ("15m") or absolute unix ms. */
export function timeRange(query: URLSearchParams, now = Date.now()): TimeRange {
  const from = query.get('from') ?? DEFAULT_FROM;
  const to = query.get('to') ?? 'now';
  const rel = parseDuration(from);
  if (Number.isFinite(rel) && to === 'now') {
    return { start: now / 1000 - rel, end: now / 1000, label: `Last ${from}`, relative: true };
  }
  const f = Number(from);
  const t = to === 'now' ? now : Number(to);
  if (Number.isFinite(f) && Number.isFinite(t) && t > f) {
    return { start: f / 1000, end: t / 1000, label: `${new Date(f).toLocaleString()} → ${to === 'now' ? 'now' : new Date(t).toLocaleTimeString()}`, relative: to === 'now' };
  }
  return { start: now / 1000 - 900, end: now / 1000, label: 'Last 15m', relative: true };
}
