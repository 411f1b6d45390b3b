import { useState } from 'preact/hooks';
import * as api from '../api';
import { Chart, Sparkline } from '../components/Chart';
import { FlameGraph } from '../components/FlameGraph';
import { Onboarding } from '../components/Onboarding';
import { Load, Panel, Select, Stat } from '../components/ui';
import { Waterfall } from '../components/Waterfall';
import { useApp, useAsync, type Async } from '../hooks';
import { fmtBytes, fmtMs, fmtPct, fmtRate } from '../lib/format';
import { last, seriesName, type Series } from '../lib/prom';
import { link, navigate, setQuery, useLocation } from '../router';
import { HOST, SVC_BY, callsRate, entry, errorPct, latencyMs, rateWindow, SERVER, esc } from '../queries';
import { TraceTable } from './Traces';

export interface ServiceRow {
  name: string;
  rate: number;
  errPct: number;
  p50: number;
  p95: number;
  p99: number;
  rateSpark: number[];
  p99Spark: number[];
}

const svcName = (l: Record<string, string>) => l.service || l.service_name || '';

/** loadServices computes the RED summary of every service over the range. */
export async function loadServices(start: number, end: number, signal: AbortSignal): Promise<ServiceRow[]> {
  const step = api.stepFor(start, end, 60);
  const w = rateWindow(step);
  const whole = `${Math.max(60, Math.round(end - start))}s`;
  const inst = (q: string) => api.queryInstant(q, end, signal).then((v) => v.map((s) => ({ labels: s.labels, t: [s.t], v: [s.v] }) as Series));
  const [rate, err, p50, p95, p99, rateR, p99R] = await Promise.all([
    inst(entry((k) => callsRate(SVC_BY, whole, k))),
    inst(entry((k) => errorPct(SVC_BY, whole, k))),
    inst(entry((k) => latencyMs(0.5, SVC_BY, whole, k))),
    inst(entry((k) => latencyMs(0.95, SVC_BY, whole, k))),
    inst(entry((k) => latencyMs(0.99, SVC_BY, whole, k))),
    api.queryRange(entry((k) => callsRate(SVC_BY, w, k)), start, end, step, signal),
    api.queryRange(entry((k) => latencyMs(0.99, SVC_BY, w, k)), start, end, step, signal),
  ]);
  const idx = (s: Series[]) => {
    const m = new Map<string, Series>();
    for (const x of s) if (svcName(x.labels) && !m.has(svcName(x.labels))) m.set(svcName(x.labels), x);
    return m;
  };
  const [mRate, mErr, m50, m95, m99, mRateR, m99R] = [rate, err, p50, p95, p99, rateR, p99R].map(idx);
  const names = [...new Set([...mRate.keys(), ...mRateR.keys()])].sort();
  // Sparklines are drawn on the query's full step grid (start + k·step), so gaps show as gaps.
  const points = Math.floor((end - start) / step) + 1;
  const onGrid = (s?: Series) => {
    const out: number[] = new Array(points).fill(NaN);
    if (!s) return [];
    s.t.forEach((t, i) => {
      const k = Math.round((t - start) / step);
      if (k >= 0 && k < points) out[k] = s.v[i];
    });
    return out;
  };
  return names.map((name) => ({
    name,
    rate: last(mRate.get(name)),
    errPct: last(mErr.get(name)),
    p50: last(m50.get(name)),
    p95: last(m95.get(name)),
    p99: last(m99.get(name)),
    rateSpark: onGrid(mRateR.get(name)),
    p99Spark: onGrid(m99R.get(name)),
  }));
}

export function ServiceTable({ rows }: { rows: ServiceRow[] }) {
  return (
    <table class="grid services" data-testid="services-table">
      <thead>
        <tr>
          <th>Service</th>
          <th class="num" title="average over the selected range">Requests</th>
          <th />
          <th class="num">Errors</th>
          <th class="num">p50</th>
          <th class="num">p95</th>
          <th class="num">p99</th>
          <th>p99 trend</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.name} class="clickable" onClick={() => navigate(link('/service/' + encodeURIComponent(r.name)))}>
            <td>
              <a href={link('/service/' + encodeURIComponent(r.name))} class="svc-link" data-testid="service-link">
                {r.name}
              </a>
            </td>
            <td class="num">{fmtRate(r.rate)}</td>
            <td>
              <Sparkline values={r.rateSpark} />
            </td>
            <td class={'num' + (r.errPct > 5 ? ' bad' : r.errPct > 0 ? ' warn' : '')}>{fmtPct(r.errPct)}</td>
            <td class="num">{fmtMs(r.p50)}</td>
            <td class="num">{fmtMs(r.p95)}</td>
            <td class="num">{fmtMs(r.p99)}</td>
            <td>
              <Sparkline values={r.p99Spark} color="var(--c2)" />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Home() {
  const { range, tick } = useApp();
  const { query } = useLocation();
  const { start, end } = range;
  const step = api.stepFor(start, end);
  const w = rateWindow(step);
  const deps = [start, end, tick];

  const services = useAsync((s) => loadServices(start, end, s), deps);
  const host = useAsync(async (s) => {
    const present = await api.queryInstant(HOST.present, end, s);
    if (!present.length || !(present[0].v > 0)) return null;
    const [cpu, mem, disk, io, rx, tx] = await Promise.all([
      api.queryRange(HOST.cpuByInstance(w), start, end, step, s),
      api.queryRange(HOST.mem, start, end, step, s),
      api.queryRange(HOST.disk, start, end, step, s),
      api.queryRange(HOST.diskIO(w), start, end, step, s),
      api.queryRange(HOST.netRx(w), start, end, step, s),
      api.queryRange(HOST.netTx(w), start, end, step, s),
    ]);
    return { cpu, mem, disk, io, rx, tx };
  }, deps);
  const totals = useAsync(async (s) => {
    const [cpu, mem, rate, err, p99] = await Promise.all([
      api.queryInstant(HOST.cpu(w), end, s),
      api.queryInstant(HOST.memAvg, end, s),
      api.queryInstant(`sum(${entry((k) => callsRate(SVC_BY, w, k))})`, end, s),
      api.queryInstant(`100 * sum(${entry((k) => callsRate(SVC_BY, w, k, 'status_code="STATUS_CODE_ERROR"'))}) / sum(${entry((k) => callsRate(SVC_BY, w, k))})`, end, s),
      api.queryInstant(entry((k) => latencyMs(0.99, '', w, k)), end, s),
    ]);
    const v = (x: { v: number }[]) => (x.length ? x[0].v : NaN);
    return { cpu: v(cpu), mem: v(mem), rate: v(rate), err: v(err), p99: v(p99) };
  }, deps);

  const app = query.get('app') ?? '';
  const routes = useAsync(async (s) => {
    const f = app ? `service=~"${esc(app)}"` : '';
    const f2 = app ? `service_name=~"${esc(app)}"` : '';
    const q = (kind: string) =>
      `topk(5, (histogram_quantile(0.99, sum by (le, span_name) (rate(traces_spanmetrics_latency_bucket{${[kind, f].filter(Boolean).join(', ')}}[${w}]))) * 1000) or histogram_quantile(0.99, sum by (le, span_name) (rate(traces_spanmetrics_duration_milliseconds_bucket{${[kind, f2].filter(Boolean).join(', ')}}[${w}]))))`;
    const server = await api.queryRange(q(SERVER), start, end, step, s);
    return server.length ? server : api.queryRange(q(''), start, end, step, s);
  }, [...deps, app]);

  const traces = useAsync((s) => api.searchTraces('{}', start, end, 20, s), deps);
  const prof = useAsync(async (s) => {
    const types = await api.profileTypes(start * 1000, end * 1000, s);
    return types;
  }, deps);

  const nothing = services.data?.length === 0 && host.data === null && traces.data?.length === 0 && prof.data?.length === 0;
  if (nothing) return <Onboarding />;

  const traceId = query.get('trace') ?? traces.data?.[0]?.traceID ?? '';
  const svcOptions = [{ value: '', label: 'All services' }, ...(services.data ?? []).map((r) => ({ value: r.name }))];

  return (
    <div class="page home">
      <div class="stats">
        <Stat label="Services" value={services.data ? String(services.data.length) : '…'} testid="stat-services" />
        <Stat label="Requests" value={fmtRate(totals.data?.rate ?? NaN)} sub="entry spans, now" />
        <Stat label="Error rate" value={fmtPct(totals.data?.err ?? NaN)} tone={(totals.data?.err ?? 0) > 5 ? 'bad' : (totals.data?.err ?? 0) > 1 ? 'warn' : undefined} />
        <Stat label="p99 latency" value={fmtMs(totals.data?.p99 ?? NaN)} />
        <Stat label="CPU" value={fmtPct(totals.data?.cpu ?? NaN)} sub={Number.isFinite(totals.data?.cpu ?? NaN) ? 'avg over hosts' : 'no node_exporter data'} tone={(totals.data?.cpu ?? 0) > 90 ? 'bad' : (totals.data?.cpu ?? 0) > 75 ? 'warn' : undefined} testid="stat-cpu" />
        <Stat label="Memory" value={fmtPct(totals.data?.mem ?? NaN)} sub={Number.isFinite(totals.data?.mem ?? NaN) ? 'used' : 'no node_exporter data'} tone={(totals.data?.mem ?? 0) > 90 ? 'bad' : undefined} testid="stat-mem" />
      </div>

      <Panel title="Services" testid="services-panel">
        <Load state={services} empty={(d) => (d.length === 0 ? <NoSpans /> : false)}>
          {(rows) => <ServiceTable rows={rows} />}
        </Load>
      </Panel>

      <div class="row2">
        <Panel title="P99 latency by route" right={<Select value={app} options={svcOptions} onChange={(v) => setQuery({ app: v })} />} testid="p99-panel">
          <Load state={routes} empty={(d) => d.length === 0}>
            {(d) => <Chart series={d.map((s) => ({ name: seriesName(s.labels, ['span_name']), series: s }))} fmt={fmtMs} range={[start, end]} />}
          </Load>
        </Panel>
        <HostPanels state={host} range={[start, end]} />
      </div>

      <div class="row2">
        <Panel title="Recent traces" right={<a href={link('/traces')}>Search traces →</a>} testid="recent-traces">
          <Load state={traces} empty={(d) => (d.length === 0 ? <div class="empty-inline">No traces yet. Send OTLP to port 4317 or 4318.</div> : false)}>
            {(hits) => <TraceTable hits={hits} selected={traceId} onPick={(id) => setQuery({ trace: id }, true)} compact />}
          </Load>
        </Panel>
        <Panel title="Profile" testid="home-profile">
          <Load state={prof} empty={(d) => (d.length === 0 ? <div class="empty-inline">No profiles yet. Point a Pyroscope SDK at port 4040.</div> : false)}>
            {(types) => <ProfilePanel types={types} />}
          </Load>
        </Panel>
      </div>

      {traceId && (
        <Panel title="Trace waterfall" right={<a href={link('/traces', { trace: traceId })}>Open in trace view →</a>} testid="home-waterfall">
          <TraceView id={traceId} />
        </Panel>
      )}
    </div>
  );
}

function NoSpans() {
  return (
    <div class="empty-inline">
      No span metrics yet. Services appear here once traces arrive over OTLP (<code>OTEL_EXPORTER_OTLP_ENDPOINT=http://{location.hostname}:4318</code>).
    </div>
  );
}

export function TraceView({ id, span }: { id: string; span?: string }) {
  const { tick } = useApp();
  const t = useAsync((s) => api.getTrace(id, s), [id, tick]);
  return <Load state={t}>{(tr) => <Waterfall trace={tr} initialSpan={span} key={id} />}</Load>;
}

function HostPanels({ state, range }: { state: Async<any>; range: [number, number] }) {
  const [tab, setTab] = useState<'cpu' | 'mem' | 'disk' | 'net'>('cpu');
  if (state.data === null)
    return (
      <Panel title="Host" testid="host-panel">
        <div class="empty-inline">
          No node_exporter metrics. Run <code>prometheus-node-exporter</code> and remote-write to <code>http://{location.hostname}:9090/api/v1/write</code> to see CPU, memory, disk and network here.
        </div>
      </Panel>
    );
  return (
    <Panel
      title="Host"
      testid="host-panel"
      right={
        <div class="seg">
          {(['cpu', 'mem', 'disk', 'net'] as const).map((t) => (
            <button key={t} class={tab === t ? 'on' : ''} onClick={() => setTab(t)}>
              {{ cpu: 'CPU', mem: 'Memory', disk: 'Disk', net: 'Network' }[t]}
            </button>
          ))}
        </div>
      }
    >
      <Load state={state}>
        {(d: Record<string, Series[]>) => {
          const named = (ss: Series[], key: string, suffix = '') => ss.map((s) => ({ name: (seriesName(s.labels, [key]) || 'all') + suffix, series: s }));
          if (tab === 'cpu') return <Chart series={named(d.cpu, 'instance')} fmt={fmtPct} yMax={100} range={range} />;
          if (tab === 'mem') return <Chart series={named(d.mem, 'instance')} fmt={fmtPct} yMax={100} range={range} />;
          if (tab === 'disk')
            return (
              <>
                <Chart series={named(d.disk, 'mountpoint', ' used')} fmt={fmtPct} yMax={100} height={110} range={range} />
                <Chart series={named(d.io, 'instance', ' I/O')} fmt={(v) => fmtBytes(v) + '/s'} height={90} range={range} />
              </>
            );
          return <Chart series={[...named(d.rx, 'instance', ' rx'), ...named(d.tx, 'instance', ' tx')]} fmt={(v) => fmtBytes(v) + '/s'} range={range} />;
        }}
      </Load>
    </Panel>
  );
}

function ProfilePanel({ types }: { types: api.ProfileType[] }) {
  const { range, tick } = useApp();
  const [typeID, setType] = useState(() => api.pickProfileType(types, 'wall')?.id ?? '');
  const [svc, setSvc] = useState('');
  const t = types.find((x) => x.id === typeID) ?? types[0];
  const profSvcs = useAsync((s) => api.profileLabelValues('service_name', t.id, range.start * 1000, range.end * 1000, s), [t.id, range.start, range.end, tick]);
  const fg = useAsync(
    (s) => api.mergeStacktraces(t.id, svc ? `{service_name="${esc(svc)}"}` : '{}', Math.floor(range.start * 1000), Math.ceil(range.end * 1000), s),
    [t.id, svc, range.start, range.end, tick],
  );
  return (
    <>
      <div class="toolbar">
        <Select value={t.id} options={types.map((x) => ({ value: x.id, label: `${x.name} · ${x.sampleType}` }))} onChange={setType} />
        <Select value={svc} options={[{ value: '', label: 'All services' }, ...(profSvcs.data ?? []).map((v) => ({ value: v }))]} onChange={setSvc} />
        <a href={link('/profiles', { type: t.id, ...(svc ? { service: svc } : {}) })}>Explore →</a>
      </div>
      <Load state={fg}>{(g) => <FlameGraph fg={g} unit={t.sampleUnit} compact />}</Load>
    </>
  );
}

