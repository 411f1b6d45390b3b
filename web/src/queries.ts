// PromQL for the dashboards. Span metrics come in two families (COMPAT §5, §9):
// Vispyr's own generator (traces_spanmetrics_latency_bucket, seconds, label `service`) and
// agent-side connectors (traces_spanmetrics_duration_milliseconds_bucket, label
// `service_name`). Every query covers both so either source fills the same panels.

import { promDuration } from './lib/format';

export const SERVER = 'span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"';
export const ERROR = 'status_code="STATUS_CODE_ERROR"';
export const SVC_BY = 'service, service_name';

const sel = (...parts: string[]) => parts.filter(Boolean).join(', ');

/** rateWindow picks a rate() window wide enough for a few scrapes per step. */
export function rateWindow(stepSec: number): string {
  return promDuration(Math.max(60, stepSec * 4));
}

/** escape quotes a label value for a PromQL string literal. */
export const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

/** entry prefers entry spans (server/consumer) and falls back to all spans per group. */
export function entry(build: (kindSel: string) => string): string {
  return `(${build(SERVER)}) or (${build('')})`;
}

/** forService filters on either family's service label. */
export function forService(name: string, build: (svcSel: string) => string): string {
  return `(${build(`service="${esc(name)}"`)}) or (${build(`service_name="${esc(name)}"`)})`;
}

export function callsRate(by: string, w: string, ...filters: string[]): string {
  return `sum by (${by}) (rate(traces_spanmetrics_calls_total{${sel(...filters)}}[${w}]))`;
}

/** errorPct is the percentage of calls with error status; 0 (not absent) when there are none. */
export function errorPct(by: string, w: string, ...filters: string[]): string {
  const all = callsRate(by, w, ...filters);
  const err = callsRate(by, w, ...filters, ERROR);
  return `100 * ((${err} / ${all}) or (0 * ${all}))`;
}

/** latencyMs is a latency quantile in milliseconds over both histogram families. */
export function latencyMs(q: number, by: string, w: string, ...filters: string[]): string {
  const f = sel(...filters);
  const byLe = by ? `le, ${by}` : 'le';
  return (
    `(histogram_quantile(${q}, sum by (${byLe}) (rate(traces_spanmetrics_latency_bucket{${f}}[${w}]))) * 1000)` +
    ` or histogram_quantile(${q}, sum by (${byLe}) (rate(traces_spanmetrics_duration_milliseconds_bucket{${f}}[${w}])))`
  );
}

export const HOST = {
  present: 'count(node_cpu_seconds_total)',
  cpu: (w: string) => `100 - (avg(rate(node_cpu_seconds_total{mode="idle"}[${w}])) * 100)`,
  cpuByInstance: (w: string) => `100 - (avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[${w}])) * 100)`,
  mem: '100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)',
  memAvg: '100 * (1 - sum(node_memory_MemAvailable_bytes) / sum(node_memory_MemTotal_bytes))',
  disk: '100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs|devtmpfs|nsfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs|devtmpfs|nsfs"})',
  diskIO: (w: string) => `sum by (instance) (rate(node_disk_read_bytes_total[${w}]) + rate(node_disk_written_bytes_total[${w}]))`,
  netRx: (w: string) => `sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}[${w}]))`,
  netTx: (w: string) => `sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[${w}]))`,
};
