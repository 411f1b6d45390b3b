import { useState } from 'preact/hooks';
import * as api from '../api';
import { Chart, openTrace, type ExemplarPoint } from '../components/Chart';
import { FlameGraph } from '../components/FlameGraph';
import { Load, Panel, Select } from '../components/ui';
import { useApp, useAsync } from '../hooks';
import { fmtMs, fmtPct, fmtRate } from '../lib/format';
import { last, type Series } from '../lib/prom';
import { escapeValue } from '../lib/logs';
import { link, navigate, setQuery } from '../router';
import { ERROR, callsRate, entry, errorPct, esc, forService, latencyMs, rateWindow } from '../queries';
import { TraceTable } from './Traces';

interface Op {
  name: string;
  rate: number;
  err: number;
  p50: number;
  p95: number;
  p99: number;
}

export function Service({ name }: { name: string }) {
  const { range, tick } = useApp();
  const { start, end } = range;
  const step = api.stepFor(start, end, 200);
  const w = rateWindow(step);
  const deps = [name, start, end, tick];
  const svc = (b: (s: string) => string) => forService(name, b);

  const red = useAsync(async (s) => {
    const [rate, errRate, err, p50, p95, p99] = await Promise.all([
      api.queryRange(svc((f) => entry((k) => callsRate('', w, f, k))), start, end, step, s),
      api.queryRange(svc((f) => entry((k) => callsRate('', w, f, k, ERROR))), start, end, step, s),
      api.queryRange(svc((f) => entry((k) => errorPct('', w, f, k))), start, end, step, s),
      api.queryRange(svc((f) => entry((k) => latencyMs(0.5, '', w, f, k))), start, end, step, s),
      api.queryRange(svc((f) => entry((k) => latencyMs(0.95, '', w, f, k))), start, end, step, s),
      api.queryRange(svc((f) => entry((k) => latencyMs(0.99, '', w, f, k))), start, end, step, s),
    ]);
    return { rate, errRate, err, p50, p95, p99 };
  }, deps);

  const exemplars = useAsync(async (s) => {
    const get = (q: string, mult: number) =>
      api.queryExemplars(q, start, end, s).then(
        (ex) => ex.map((e) => ({ t: e.t, v: e.value * mult, traceId: e.traceId, label: e.seriesLabels.span_name }) as ExemplarPoint),
        () => [] as ExemplarPoint[],
      );
    const [a, b] = await Promise.all([
      get(`traces_spanmetrics_latency_bucket{service="${esc(name)}"}`, 1000),
      get(`traces_spanmetrics_duration_milliseconds_bucket{service_name="${esc(name)}"}`, 1),
    ]);
    return [...a, ...b].filter((e) => e.traceId);
  }, deps);

  const ops = useAsync(async (s) => {
    const whole = `${Math.max(60, Math.round(end - start))}s`;
    const inst = (q: string) => api.queryInstant(q, end, s);
    const [rate, err, p50, p95, p99] = await Promise.all([
      inst(svc((f) => callsRate('span_name, span_kind', whole, f))),
      inst(svc((f) => errorPct('span_name, span_kind', whole, f))),
      inst(svc((f) => latencyMs(0.5, 'span_name, span_kind', whole, f))),
      inst(svc((f) => latencyMs(0.95, 'span_name, span_kind', whole, f))),
      inst(svc((f) => latencyMs(0.99, 'span_name, span_kind', whole, f))),
    ]);
    const key = (l: Record<string, string>) => `${l.span_name}\u0000${l.span_kind ?? ''}`;
    const m = (xs: { labels: Record<string, string>; v: number }[]) => new Map(xs.map((x) => [key(x.labels), x.v]));
    const [mErr, m50, m95, m99] = [err, p50, p95, p99].map(m);
    return rate
      .map((r) => ({ name: r.labels.span_name ?? '', kind: (r.labels.span_kind ?? '').replace('SPAN_KIND_', '').toLowerCase(), rate: r.v, err: mErr.get(key(r.labels)) ?? NaN, p50: m50.get(key(r.labels)) ?? NaN, p95: m95.get(key(r.labels)) ?? NaN, p99: m99.get(key(r.labels)) ?? NaN }))
      .sort((a, b) => b.rate - a.rate);
  }, deps);

  const traces = useAsync((s) => api.searchTraces(`{ resource.service.name = "${esc(name)}" }`, start, end, 15, s), deps);
  const onZoom = (a: number, b: number) => setQuery({ from: String(Math.round(a * 1000)), to: String(Math.round(b * 1000)) });
  const r: [number, number] = [start, end];
  const named = (n: string, s: Series[]) => s.slice(0, 1).map((x) => ({ name: n, series: x }));

  return (
    <div class="page service">
      <div class="page-title">
        <a href={link('/')} class="muted">
          Services /
        </a>
        <h1 data-testid="service-name">{name}</h1>
        <Load state={red}>
          {(d) => (
            <span class="kpis">
              <span>{fmtRate(last(d.rate[0]))}</span>
              <span class={last(d.err[0]) > 0 ? 'bad' : ''}>{fmtPct(last(d.err[0]))} errors</span>
              <span>p99 {fmtMs(last(d.p99[0]))}</span>
            </span>
          )}
        </Load>
        <span class="spacer" />
        <a class="btn" href={link('/traces', { q: `{ resource.service.name = "${name}" }` })}>
          Traces
        </a>
        <a class="btn" href={link('/profiles', { service: name })}>
          Profiles
        </a>
        <a class="btn" href={link('/logs', { q: `{service_name="${escapeValue(name)}"}` })} data-testid="service-logs-link">
          Logs
        </a>
      </div>
      <div class="row3">
        <Panel title="Requests">
          <Load state={red}>{(d) => <Chart series={[...named('requests', d.rate), ...named('errors', d.errRate).map((x) => ({ ...x, color: 'var(--err)' }))].map((x, i) => ({ ...x, color: i ? '#e8684a' : undefined, fill: true }))} fmt={fmtRate} onZoom={onZoom} range={r} />}</Load>
        </Panel>
        <Panel title="Errors">
          <Load state={red}>{(d) => <Chart series={named('error %', d.err).map((x) => ({ ...x, color: '#e8684a', fill: true }))} fmt={fmtPct} onZoom={onZoom} range={r} />}</Load>
        </Panel>
        <Panel title="Duration" right={<span class="muted small">◆ exemplar: click to open its trace</span>} testid="duration-panel">
          <Load state={red}>
            {(d) => (
              <Chart
                series={[...named('p50', d.p50), ...named('p95', d.p95), ...named('p99', d.p99)]}
                fmt={fmtMs}
                exemplars={exemplars.data}
                onExemplar={(e) => openTrace(e.traceId)}
                onZoom={onZoom}
                range={r}
              />
            )}
          </Load>
        </Panel>
      </div>
      <div class="row2">
        <Panel title="Top operations" right={<span class="muted small">averages over the range</span>}>
          <Load state={ops} empty={(d) => d.length === 0}>
            {(d) => <OpsTable ops={d} service={name} />}
          </Load>
        </Panel>
        <Panel title="Recent traces">
          <Load state={traces} empty={(d) => d.length === 0}>
            {(d) => <TraceTable hits={d} onPick={(id) => navigate(link('/traces', { q: `{ resource.service.name = "${name}" }`, trace: id }))} compact />}
          </Load>
        </Panel>
      </div>
      <ServiceProfile name={name} />
    </div>
  );
}

function OpsTable({ ops, service }: { ops: (Op & { kind: string })[]; service: string }) {
  return (
    <div class="scroll short">
      <table class="grid">
        <thead>
          <tr>
            <th>Operation</th>
            <th>Kind</th>
            <th class="num">Rate</th>
            <th class="num">Errors</th>
            <th class="num">p50</th>
            <th class="num">p95</th>
            <th class="num">p99</th>
          </tr>
        </thead>
        <tbody>
          {ops.map((o) => (
            <tr key={o.name + o.kind} class="clickable" onClick={() => navigate(link('/traces', { q: `{ resource.service.name = "${service}" && name = "${o.name}" }` }))}>
              <td class="ellipsis">{o.name}</td>
              <td class="muted">{o.kind}</td>
              <td class="num">{fmtRate(o.rate)}</td>
              <td class={'num' + (o.err > 0 ? ' bad' : '')}>{fmtPct(o.err)}</td>
              <td class="num">{fmtMs(o.p50)}</td>
              <td class="num">{fmtMs(o.p95)}</td>
              <td class="num">{fmtMs(o.p99)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ServiceProfile({ name }: { name: string }) {
  const { range, tick } = useApp();
  const types = useAsync(async (s) => {
    const all = await api.profileTypes(range.start * 1000, range.end * 1000, s);
    // Only the types this service actually has (asked in parallel: one call per type).
    const has = await Promise.all(
      all.map((t) => api.profileLabelValues('service_name', t.id, range.start * 1000, range.end * 1000, s).then((v) => v.includes(name), () => false)),
    );
    const mine = all.filter((_, i) => has[i]);
    return mine;
  }, [name, Math.floor(range.start / 60), tick]);
  const [pick, setPick] = useState('');
  const t = types.data && (types.data.find((x) => x.id === pick) ?? api.pickProfileType(types.data, 'cpu'));
  const fg = useAsync(
    async (s) => (t ? api.mergeStacktraces(t.id, `{service_name="${esc(name)}"}`, Math.floor(range.start * 1000), Math.ceil(range.end * 1000), s) : null),
    [t?.id, name, range.start, range.end, tick],
  );
  return (
    <Panel
      title={t ? `${t.name === 'process_cpu' ? 'CPU' : t.name} profile` : 'Profile'}
      testid="service-profile"
      right={types.data && types.data.length > 0 && <Select value={t?.id ?? ''} options={types.data.map((x) => ({ value: x.id, label: `${x.name} · ${x.sampleType}` }))} onChange={setPick} />}
    >
      <Load state={types} empty={(d) => (d.length === 0 ? <div class="empty-inline">No profiles for {name}. Add a Pyroscope SDK with application name "{name}" pointing at port 4040.</div> : false)}>
        {() => <Load state={fg}>{(g) => (g ? <FlameGraph fg={g} unit={t!.sampleUnit} view="both" /> : null)}</Load>}
      </Load>
    </Panel>
  );
}
