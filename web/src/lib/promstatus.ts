// Prometheus's status APIs (/api/v1/targets, /api/v1/rules) read into the shapes the Targets
// and Alerts pages draw. Decoders never throw on a malformed body: a field of the wrong type
// reads as empty, so one odd target cannot blank the page.

import type { Labels } from './prom';
import { PromError } from './prom';

export type Health = 'up' | 'down' | 'unknown';

export interface Target {
  pool: string;
  url: string;
  health: Health;
  labels: Labels;
  lastScrape: number; // unix ms, 0: never scraped
  durationSec: number;
  lastError: string;
  interval: string;
}

export interface Pool {
  name: string;
  targets: Target[];
  up: number;
}

export interface Alert {
  labels: Labels;
  annotations: Labels;
  state: string; // firing | pending | inactive
  activeAt: number; // unix ms, 0 when unknown
  value: string;
}

export interface Rule {
  name: string;
  type: 'alerting' | 'recording';
  query: string;
  state: string; // alerting rules only: firing | pending | inactive
  health: string; // ok | err | unknown
  lastError: string;
  lastEvaluation: number; // unix ms, 0: not evaluated yet
  evaluationSec: number;
  durationSec: number; // the alerting rule's `for`
  labels: Labels;
  alerts: Alert[];
}

export interface RuleGroup {
  name: string;
  file: string;
  intervalSec: number;
  lastEvaluation: number;
  evaluationSec: number;
  rules: Rule[];
}

const arr = (v: unknown): any[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function labels(v: unknown): Labels {
  const out: Labels = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  }
  return out;
}

/** timeMs reads an RFC 3339 time; Go's zero time ("0001-01-01T…", never happened) is 0. */
export function timeMs(v: unknown): number {
  const t = Date.parse(str(v));
  return Number.isFinite(t) && t > 0 ? t : 0;
}

function data(body: any): any {
  if (!body || typeof body !== 'object') throw new PromError('empty response from the metrics API');
  if (body.status === 'error') throw new PromError(body.error || 'request failed', body.errorType);
  return body.data && typeof body.data === 'object' ? body.data : {};
}

function health(v: unknown): Health {
  return v === 'up' || v === 'down' ? v : 'unknown';
}

/** parseTargets groups the active targets by scrape pool, pools and targets in a stable order. */
export function parseTargets(body: any): Pool[] {
  const pools = new Map<string, Target[]>();
  for (const t of arr(data(body).activeTargets)) {
    if (!t || typeof t !== 'object') continue;
    const ls = labels(t.labels);
    const pool = str(t.scrapePool) || ls.job || '';
    const target: Target = {
      pool,
      url: str(t.scrapeUrl),
      health: health(t.health),
      labels: ls,
      lastScrape: timeMs(t.lastScrape),
      durationSec: num(t.lastScrapeDuration),
      lastError: str(t.lastError),
      interval: str(t.scrapeInterval),
    };
    if (!pools.has(pool)) pools.set(pool, []);
    pools.get(pool)!.push(target);
  }
  return [...pools.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, targets]) => ({
      name,
      targets: targets.sort((a, b) => a.url.localeCompare(b.url)),
      up: targets.filter((t) => t.health === 'up').length,
    }));
}

function parseAlert(a: any): Alert {
  return { labels: labels(a?.labels), annotations: labels(a?.annotations), state: str(a?.state), activeAt: timeMs(a?.activeAt), value: str(a?.value) };
}

function parseRule(r: any): Rule {
  return {
    name: str(r?.name),
    type: r?.type === 'alerting' ? 'alerting' : 'recording',
    query: str(r?.query),
    state: str(r?.state),
    health: str(r?.health) || 'unknown',
    lastError: str(r?.lastError),
    lastEvaluation: timeMs(r?.lastEvaluation),
    evaluationSec: num(r?.evaluationTime),
    durationSec: num(r?.duration),
    labels: labels(r?.labels),
    alerts: arr(r?.alerts).filter((a) => a && typeof a === 'object').map(parseAlert),
  };
}

/** parseRules reads the rule groups in the order the rules manager evaluates them. */
export function parseRules(body: any): RuleGroup[] {
  return arr(data(body).groups)
    .filter((g) => g && typeof g === 'object')
    .map((g) => ({
      name: str(g.name),
      file: str(g.file),
      intervalSec: num(g.interval),
      lastEvaluation: timeMs(g.lastEvaluation),
      evaluationSec: num(g.evaluationTime),
      rules: arr(g.rules).filter((r) => r && typeof r === 'object').map(parseRule),
    }));
}

export interface ActiveAlert extends Alert {
  rule: Rule;
  group: string;
}

/** activeAlerts lists the firing alerts, then the pending ones, each with the rule it came from. */
export function activeAlerts(groups: RuleGroup[]): ActiveAlert[] {
  const out: ActiveAlert[] = [];
  for (const g of groups) {
    for (const r of g.rules) {
      for (const a of r.alerts) if (a.state === 'firing' || a.state === 'pending') out.push({ ...a, rule: r, group: g.name });
    }
  }
  const rank = (s: string) => (s === 'firing' ? 0 : 1);
  return out.sort((a, b) => rank(a.state) - rank(b.state) || (a.labels.alertname ?? '').localeCompare(b.labels.alertname ?? '') || a.activeAt - b.activeAt);
}
