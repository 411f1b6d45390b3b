import { describe, expect, it } from 'vitest';
import { PromError } from './prom';
import { activeAlerts, parseRules, parseTargets, timeMs } from './promstatus';

// Trimmed answers of a running `vispyr serve` (Prometheus's own API code).
const targets = {
  status: 'success',
  data: {
    activeTargets: [
      { labels: { instance: '127.0.0.1:19101', job: 'junk' }, scrapePool: 'junk', scrapeUrl: 'http://127.0.0.1:19101/metrics', lastError: 'strconv.ParseFloat: parsing "is": invalid syntax while parsing: "this is"', lastScrape: '2026-12-06T02:51:13.125316288Z', lastScrapeDuration: 0.028, health: 'down', scrapeInterval: '2s' },
      { labels: { instance: '127.0.0.1:19100', job: 'node' }, scrapePool: 'node', scrapeUrl: 'http://127.0.0.1:19100/metrics', lastError: '', lastScrape: '0001-01-01T00:00:00Z', lastScrapeDuration: 0, health: 'unknown', scrapeInterval: '2s' },
      { labels: { instance: '127.0.0.1:19099', job: 'node' }, scrapePool: 'node', scrapeUrl: 'http://127.0.0.1:19099/metrics', lastError: '', lastScrape: '2026-12-06T02:51:12Z', lastScrapeDuration: 0.02, health: 'up', scrapeInterval: '2s' },
    ],
    droppedTargets: [],
  },
};

const rules = {
  status: 'success',
  data: {
    groups: [
      {
        name: 'demo',
        file: '/etc/rules.yml',
        interval: 2,
        evaluationTime: 0.002,
        lastEvaluation: '2026-12-06T02:51:05.283812653Z',
        rules: [
          { state: 'pending', name: 'SlowPending', query: 'vector(1)', duration: 3600, labels: {}, annotations: {}, alerts: [{ labels: { alertname: 'SlowPending' }, annotations: {}, state: 'pending', activeAt: '2026-12-06T02:51:01Z', value: '1e+00' }], health: 'ok', evaluationTime: 0.0001, lastEvaluation: '2026-12-06T02:51:05Z', type: 'alerting' },
          { state: 'firing', name: 'AlwaysFiring', query: 'vector(1)', duration: 0, labels: { severity: 'page' }, annotations: { summary: 'always firing' }, alerts: [{ labels: { alertname: 'AlwaysFiring', severity: 'page' }, annotations: { summary: 'always firing' }, state: 'firing', activeAt: '2026-12-06T02:51:01Z', value: '1e+00' }], health: 'ok', evaluationTime: 0.0015, lastEvaluation: '2026-12-06T02:51:05Z', type: 'alerting' },
          { name: 'bad:rule', query: 'label_replace(vector(1), "x", "$1", "nope", "(")', labels: {}, health: 'err', lastError: 'invalid regular expression in label_replace(): (', evaluationTime: 0.0002, lastEvaluation: '2026-12-06T02:51:05Z', type: 'recording' },
        ],
      },
    ],
  },
};

describe('targets', () => {
  it('groups by scrape pool with health, error and last scrape', () => {
    const pools = parseTargets(targets);
    expect(pools.map((p) => p.name)).toEqual(['junk', 'node']);
    expect(pools[0].targets[0].health).toBe('down');
    expect(pools[0].targets[0].lastError).toContain('invalid syntax');
    expect(pools[1].up).toBe(1);
    expect(pools[1].targets.map((t) => t.url)).toEqual(['http://127.0.0.1:19099/metrics', 'http://127.0.0.1:19100/metrics']);
    expect(pools[1].targets[1].lastScrape).toBe(0); // Go's zero time: never scraped
    expect(pools[1].targets[0].lastScrape).toBe(Date.parse('2026-12-06T02:51:12Z'));
  });
  it('turns an error envelope into a PromError', () => {
    expect(() => parseTargets({ status: 'error', error: 'nope' })).toThrow(PromError);
  });
});

describe('rules and alerts', () => {
  it('reads groups, rule health and last errors', () => {
    const g = parseRules(rules);
    expect(g[0].intervalSec).toBe(2);
    const bad = g[0].rules[2];
    expect(bad.type).toBe('recording');
    expect(bad.health).toBe('err');
    expect(bad.lastError).toContain('invalid regular expression');
  });
  it('lists firing alerts before pending ones, each with its rule', () => {
    const a = activeAlerts(parseRules(rules));
    expect(a.map((x) => [x.labels.alertname, x.state])).toEqual([
      ['AlwaysFiring', 'firing'],
      ['SlowPending', 'pending'],
    ]);
    expect(a[0].rule.query).toBe('vector(1)');
    expect(a[0].annotations.summary).toBe('always firing');
  });
  it('reads times, zero time as never', () => {
    expect(timeMs('0001-01-01T00:00:00Z')).toBe(0);
    expect(timeMs(42)).toBe(0);
  });
});
