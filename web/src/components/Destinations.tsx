// The forward destinations of every Vispyr the store scrapes (its own self-scrape, and any
// `vispyr gateway` whose admin /metrics is a target): health and backlog, as the admin status
// page of each process shows them, read from the vispyr_forward_* gauges.

import * as api from '../api';
import { useApp, useAsync } from '../hooks';
import { fmtAgo, fmtBytes, fmtNum } from '../lib/format';
import type { Labels, Sample } from '../lib/prom';
import { Badge } from './Status';
import { Load, Panel } from './ui';

const BY = 'job, instance, signal, destination';

interface Destination {
  key: string;
  job: string;
  instance: string;
  signal: string;
  destination: string;
  healthy: boolean;
  bytes: number;
  records: number;
  /** unix ms of the last accepted batch, 0 when none since the process started */
  lastSuccess: number;
}

async function destinations(t: number, signal: AbortSignal): Promise<Destination[]> {
  const q = (m: string) => api.queryInstant(`max by (${BY}) (${m})`, t, signal);
  const [healthy, bytes, records, last] = await Promise.all([
    q('vispyr_forward_destination_healthy'),
    q('vispyr_forward_queue_bytes'),
    q('vispyr_forward_queue_records'),
    q('vispyr_forward_last_success_timestamp_seconds'),
  ]);
  const keyOf = (l: Labels) => [l.job, l.instance, l.signal, l.destination].join('|');
  const value = (ss: Sample[]) => new Map(ss.map((s) => [keyOf(s.labels), s.v]));
  const [b, r, ls] = [value(bytes), value(records), value(last)];
  return healthy
    .map((s) => {
      const k = keyOf(s.labels);
      const { job = '', instance = '', signal: sig = '', destination = '' } = s.labels;
      return { key: k, job, instance, signal: sig, destination, healthy: s.v === 1, bytes: b.get(k) ?? 0, records: r.get(k) ?? 0, lastSuccess: (ls.get(k) ?? 0) * 1000 };
    })
    .sort((x, y) => x.key.localeCompare(y.key));
}

/** Destinations lists every forward destination with its health and backlog. */
export function Destinations() {
  const { range, tick } = useApp();
  const state = useAsync((s) => destinations(range.end, s), [range.end, tick]);
  return (
    <Panel title="Forward destinations" testid="forward-destinations">
      <Load state={state} empty={(d) => d.length === 0 && <div class="empty-inline">No forward destinations: configure forward: (serve or gateway) and scrape the gateways' admin /metrics.</div>}>
        {(ds) => (
          <div class="scroll">
            <table class="grid">
              <thead>
                <tr>
                  <th>Process</th>
                  <th>Signal</th>
                  <th>Destination</th>
                  <th>Health</th>
                  <th class="num">Backlog</th>
                  <th>Last delivered</th>
                </tr>
              </thead>
              <tbody>
                {ds.map((d) => (
                  <tr key={d.key} data-testid="destination-row" data-health={d.healthy ? 'healthy' : 'failing'} data-backlog={d.bytes}>
                    <td class="mono small">{`${d.job} ${d.instance}`}</td>
                    <td>{d.signal}</td>
                    <td class="mono small">{d.destination}</td>
                    <td>
                      <Badge state={d.healthy ? 'healthy' : 'failing'} testid="destination-health" />
                    </td>
                    <td class="num" data-testid="destination-backlog">{`${fmtNum(d.records)} requests, ${fmtBytes(d.bytes)}`}</td>
                    <td title={d.lastSuccess ? new Date(d.lastSuccess).toLocaleString() : ''}>{d.lastSuccess ? fmtAgo(d.lastSuccess) : 'never'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Load>
    </Panel>
  );
}
