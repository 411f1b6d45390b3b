// The "Vispyr" page: Vispyr watching itself through its self-scrape (job="vispyr"), so the
// charts are plain PromQL over its own store and open in the explorer like any other query.

import * as api from '../api';
import { Chart } from '../components/Chart';
import { Destinations } from '../components/Destinations';
import { Load, Panel, Stat } from '../components/ui';
import { useApp, useAsync } from '../hooks';
import { fmtBytes, fmtMs, fmtNum, fmtRate } from '../lib/format';
import type { Labels, Series } from '../lib/prom';
import { link } from '../router';
import { rateWindow } from '../queries';
import '../ops.css';

const J = 'job="vispyr"';

interface Q {
  q: string;
  name: (l: Labels) => string;
}

interface ChartDef {
  id: string;
  title: string;
  fmt: (v: number) => string;
  queries: (w: string) => Q[];
  /** shown only when it has data (e.g. forwarding is configured) */
  optional?: string;
}

const q = (query: string, name: (l: Labels) => string): Q => ({ q: query, name });
const fixed = (s: string) => () => s;

export const CHARTS: ChartDef[] = [
  {
    id: 'ingest',
    title: 'Ingest per signal (items/s)',
    fmt: fmtRate,
    queries: (w) => [
      // Vispyr's own head (metrics.head: vispyr) takes the floats, the TSDB's head the histograms.
      // Either counter may be missing (the TSDB's appears with its first sample); `or` keeps both,
      // as the TSDB's carries a type label the other has not.
      q(
        `sum(rate(prometheus_tsdb_head_samples_appended_total{${J}}[${w}]) or rate(vispyr_metrics_head_samples_appended_total{${J}}[${w}]))`,
        fixed('metric samples'),
      ),
      q(`sum(rate(vispyr_traces_spans_ingested_total{${J}}[${w}]))`, fixed('spans')),
      q(`sum(rate(vispyr_profiles_ingested_profiles_total{${J}}[${w}]))`, fixed('profiles')),
      q(`sum(rate(vispyr_logs_ingested_lines_total{${J}}[${w}]))`, fixed('log lines')),
    ],
  },
  {
    id: 'refusals',
    title: 'Refusals by reason (/s)',
    fmt: fmtRate,
    queries: (w) => [
      q(`sum by (signal, reason) (rate(vispyr_otlp_rejected_requests_total{${J}}[${w}]))`, (l) => `OTLP ${l.signal}: ${l.reason}`),
      q(`sum by (reason) (rate(vispyr_remote_write_rejected_requests_total{${J}}[${w}]))`, (l) => `remote write: ${l.reason}`),
      q(`sum by (code) (rate(vispyr_pyroscope_ingest_requests_total{${J}, code!~"2.."}[${w}]))`, (l) => `pyroscope: HTTP ${l.code}`),
      q(`sum by (store) (rate(vispyr_disk_full_refused_writes_total{${J}}[${w}]))`, (l) => `disk full: ${l.store}`),
      q(`sum(rate(vispyr_traces_overloaded_total{${J}}[${w}]))`, fixed('traces: head over memory budget')),
      q(`sum(rate(vispyr_traces_refused_spans_total{${J}}[${w}]))`, fixed('traces: spans refused')),
      q(`sum(rate(vispyr_profiles_rejected_overload_total{${J}}[${w}]))`, fixed('profiles: WAL behind')),
      q(`sum(rate(vispyr_logs_refused_lines_total{${J}}[${w}]))`, fixed('logs: lines refused')),
      q(`sum(rate(vispyr_logs_overloaded_total{${J}}[${w}]))`, fixed('logs: head over memory budget')),
    ],
  },
  {
    id: 'wal',
    title: 'WAL size',
    fmt: fmtBytes,
    queries: () => [
      // The metrics store's: the TSDB's WAL and, with metrics.head: vispyr, the own head's.
      q(
        `sum(prometheus_tsdb_wal_storage_size_bytes{${J}}) + (sum(vispyr_wal_bytes{${J}, wal="metrics_head"}) or vector(0))`,
        fixed('metrics'),
      ),
      q(`sum by (wal) (vispyr_wal_bytes{${J}, wal!="metrics_head"})`, (l) => l.wal ?? 'wal'),
    ],
  },
  {
    id: 'disk',
    title: 'Disk per store',
    fmt: fmtBytes,
    queries: () => [q(`sum by (store) (vispyr_disk_used_bytes{${J}})`, (l) => l.store ?? 'store')],
  },
  {
    id: 'head-series',
    title: 'Head series (in memory)',
    fmt: (v) => fmtNum(v),
    queries: () => [
      // With Vispyr's own head (metrics.head: vispyr) the TSDB's head holds only histograms.
      q(`sum(prometheus_tsdb_head_series{${J}}) + (sum(vispyr_metrics_head_series{${J}}) or vector(0))`, fixed('metrics')),
      q(`sum(vispyr_profiles_head_series{${J}})`, fixed('profiles')),
      q(`sum by (processor) (vispyr_generator_active_series{${J}})`, (l) => `generator ${l.processor}`),
    ],
  },
  {
    id: 'head-bytes',
    title: 'Head memory (not yet in blocks)',
    fmt: fmtBytes,
    queries: () => [q(`sum(vispyr_traces_head_bytes{${J}})`, fixed('traces')), q(`sum(vispyr_logs_head_bytes{${J}})`, fixed('logs'))],
  },
  {
    id: 'forward',
    title: 'Forward queue backlog',
    fmt: fmtBytes,
    // Queues live in gateways (`vispyr gateway`), which store nothing themselves: any job
    // that scrapes a gateway's admin /metrics counts, not only the self-scrape.
    optional: 'No forward queues seen: a gateway (vispyr gateway) keeps them; add its admin /metrics to scrape_configs to chart its backlog here.',
    queries: () => [q(`sum by (instance, signal, destination) (vispyr_forward_queue_bytes)`, (l) => `${l.instance} ${l.signal} → ${l.destination}`)],
  },
];

interface Drawn {
  name: string;
  series: Series;
}

async function runChart(c: ChartDef, start: number, end: number, signal: AbortSignal): Promise<Drawn[]> {
  const step = api.stepFor(start, end, 200);
  const qs = c.queries(rateWindow(step));
  const res = await Promise.all(qs.map((x) => api.queryRange(x.q, start, end, step, signal)));
  return res.flatMap((ss, i) => ss.map((s) => ({ name: qs[i].name(s.labels), series: s })));
}

function SelfChart({ def }: { def: ChartDef }) {
  const { range, tick } = useApp();
  const state = useAsync((s) => runChart(def, range.start, range.end, s), [range.start, range.end, tick]);
  // What was drawn, for tests and tooling: each line's name and its highest value.
  const drawn = Object.fromEntries((state.data ?? []).map((d) => [d.name, Math.max(0, ...d.series.v.filter(Number.isFinite))]));
  const explore = def.queries(rateWindow(api.stepFor(range.start, range.end, 200)))[0].q;
  return (
    <Panel
      title={def.title}
      right={
        <a class="small" href={link('/explore', { q: explore })}>
          Explore
        </a>
      }
      testid={'vchart-' + def.id}
    >
      <div data-testid="vchart" data-drawn={JSON.stringify(drawn)}>
        <Load state={state} empty={(d) => d.length === 0 && (def.optional ? <div class="empty-inline">{def.optional}</div> : true)}>
          {(d) => <Chart series={d.map((x) => ({ name: x.name, series: x.series }))} fmt={def.fmt} height={200} range={[range.start, range.end]} />}
        </Load>
      </div>
    </Panel>
  );
}

interface Overview {
  up: boolean;
  uptime: number;
  rss: number;
  goroutines: number;
  diskFree: number;
}

async function overview(t: number, signal: AbortSignal): Promise<Overview | null> {
  const one = async (query: string) => (await api.queryInstant(query, t, signal))[0]?.v ?? NaN;
  const [up, started, rss, gr, free] = await Promise.all([
    one(`max(up{${J}})`),
    one(`max(process_start_time_seconds{${J}})`),
    one(`sum(process_resident_memory_bytes{${J}})`),
    one(`sum(go_goroutines{${J}})`),
    one(`min(vispyr_disk_free_bytes{${J}})`),
  ]);
  if (!Number.isFinite(up)) return null;
  return { up: up === 1, uptime: t - started, rss, goroutines: gr, diskFree: free };
}

/** SelfMonitor is the "Vispyr" page. */
export function SelfMonitor() {
  const { range, tick } = useApp();
  const ov = useAsync((s) => overview(range.end, s), [range.end, tick]);
  return (
    <div class="page vispyr-self" data-testid="vispyr-page">
      <div class="page-title">
        <h1>Vispyr</h1>
        <span class="muted">this server, from its self-scrape of /metrics (job="vispyr")</span>
      </div>
      <Load state={ov}>
        {(o) =>
          o ? (
            <div class="stats">
              <Stat label="Self-scrape" value={o.up ? 'up' : 'down'} tone={o.up ? 'ok' : 'bad'} testid="stat-self-scrape" />
              <Stat label="Uptime" value={fmtMs(o.uptime * 1000)} />
              <Stat label="Memory (RSS)" value={fmtBytes(o.rss)} />
              <Stat label="Goroutines" value={fmtNum(o.goroutines)} />
              <Stat label="Disk free" value={fmtBytes(o.diskFree)} />
            </div>
          ) : (
            <div class="empty-inline" data-testid="self-scrape-off">
              No self-scrape data yet: it is on by default every 15 s (--prometheus.self-scrape, --prometheus.self-scrape-interval); the first samples arrive one interval after start.
            </div>
          )
        }
      </Load>
      <Destinations />
      <div class="charts">
        {CHARTS.map((c) => (
          <SelfChart key={c.id} def={c} />
        ))}
      </div>
    </div>
  );
}
