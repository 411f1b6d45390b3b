import { useEffect, useMemo, useState } from 'preact/hooks';
import { Chart } from '../components/Chart';
import { CompletingInput, type Completion, type Completions } from '../components/CompletingInput';
import { Load, Panel } from '../components/ui';
import { useApp, useAsync } from '../hooks';
import { fmtNum } from '../lib/format';
import { completionAt, escapeValue, isLogQuery, level, STAGES, traceID, volumeQuery, volumeStep, type LogLine, type VolumeSeries } from '../lib/logs';
import { seriesName } from '../lib/prom';
import * as loki from '../lokiapi';
import { link, setQuery, useLocation } from '../router';
import '../logs.css';

const LIMIT = 500;
const LIVE_MAX = 1000;
const LEVEL_COLORS: Record<string, string> = {
  critical: '#a8071a', fatal: '#a8071a', error: '#e8684a', warn: '#f6903d', warning: '#f6903d',
  info: '#5ad8a6', debug: '#5b8ff9', trace: '#9270ca', unknown: '#a6a6a6',
};
const levelColor = (l: string) => LEVEL_COLORS[l] ?? LEVEL_COLORS.unknown;

const BADGES = { label: 'L', value: 'V', stage: '|' } as const;

/** useLogQLCompletions suggests label names, their values and pipeline stages. */
function useLogQLCompletions(before: string): Completions {
  const { range } = useApp();
  const window5m = Math.floor(range.start / 300);
  const names = useAsync((s) => loki.labelNames(range.start, range.end, s).catch(() => [] as string[]), [window5m]);
  const ctx = completionAt(before);
  const valueLabel = ctx?.kind === 'value' ? ctx.label : '';
  const values = useAsync(async (s) => (valueLabel ? loki.labelValues(valueLabel, range.start, range.end, s).catch(() => [] as string[]) : []), [valueLabel, window5m]);
  const items = useMemo(() => {
    if (!ctx) return [];
    const all = ctx.kind === 'label' ? names.data ?? [] : ctx.kind === 'stage' ? STAGES.filter((s) => !s.endsWith(' ')) : values.data ?? [];
    return all
      .filter((t) => t.toLowerCase().startsWith(ctx.prefix.toLowerCase()) && t !== ctx.prefix)
      .slice(0, 12)
      .map((t) => ({ text: t, label: t, badge: BADGES[ctx.kind], badgeClass: ctx.kind === 'value' ? 'value' : '' }));
  }, [ctx?.kind, ctx?.prefix, valueLabel, names.data, values.data]);
  return { items, typing: !!ctx?.prefix };
}

/** insertLogQL completes a label with `=`, a value quoted (closing the string the user opened), a stage with a space. */
function insertLogQL(text: string, cursor: number, c: Completion): { text: string; cursor: number } {
  const ctx = completionAt(text.slice(0, cursor));
  let after = text.slice(cursor);
  let start = cursor - (ctx?.prefix.length ?? 0);
  let ins = c.text;
  if (ctx?.kind === 'label') ins += '=';
  if (ctx?.kind === 'value') {
    if (ctx.quoted) start -= 1;
    ins = `"${escapeValue(c.text)}"`;
    if (after.startsWith('"')) after = after.slice(1);
  }
  if (ctx?.kind === 'stage') ins += ' ';
  return { text: text.slice(0, start) + ins + after, cursor: start + ins.length };
}

/** LogQLInput is the query box: Tab or Enter completes label names, their values and pipeline stages. */
function LogQLInput({ value, onSubmit }: { value: string; onSubmit: (q: string) => void }) {
  return (
    <CompletingInput
      value={value}
      onSubmit={onSubmit}
      placeholder='{service_name="checkout"} |= "error"'
      testId="logql"
      listTestId="logql-suggestions"
      runTestId="run-logql"
      runLabel="Run"
      useCompletions={useLogQLCompletions}
      insert={insertLogQL}
    />
  );
}

/** Volume draws the lines per step as bars stacked by level; dragging nothing, a click zooms to a bar. */
function Volume({ series, start, end, step }: { series: VolumeSeries[]; start: number; end: number; step: number }) {
  const W = 1000;
  const H = 90;
  // Lines per step, by level (two series may name one level: detected_level and a level label).
  const buckets = new Map<number, { level: string; n: number }[]>();
  for (const s of series) {
    for (const [t, n] of s.points) {
      if (!(n > 0)) continue;
      const parts = buckets.get(t) ?? [];
      const same = parts.find((p) => p.level === s.level);
      if (same) same.n += n;
      else parts.push({ level: s.level, n });
      buckets.set(t, parts);
    }
  }
  const max = Math.max(1, ...[...buckets.values()].map((b) => b.reduce((a, x) => a + x.n, 0)));
  const x = (t: number) => ((t - start) / (end - start)) * W;
  const bw = Math.max(1, (step / (end - start)) * W - 1);
  const total = [...buckets.values()].flat().reduce((a, x) => a + x.n, 0);
  const levels = [...new Set(series.map((s) => s.level))].sort();
  return (
    <div class="log-volume" data-testid="log-volume" data-total={total}>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" width="100%" height={H}>
        {[...buckets.entries()].map(([t, parts]) => {
          let y = H;
          // A point at t counts the lines of (t-step, t].
          return parts.map((p) => {
            const h = (p.n / max) * (H - 4);
            y -= h;
            return (
              <rect key={t + p.level} class="bar" x={x(t - step)} y={y} width={bw} height={h} fill={levelColor(p.level)}
                onClick={() => setQuery({ from: String((t - step) * 1000), to: String(t * 1000) })}>
                <title>{`${new Date(t * 1000).toLocaleTimeString()} · ${p.level}: ${fmtNum(p.n)} lines`}</title>
              </rect>
            );
          });
        })}
      </svg>
      <div class="log-volume-legend muted small">
        <span>{fmtNum(total)} lines · {step}s bars</span>
        {levels.map((l) => (
          <span key={l}>
            <span class="sw" style={{ background: levelColor(l) }} /> {l}
          </span>
        ))}
      </div>
    </div>
  );
}

function KV({ title, labels }: { title: string; labels: Record<string, string> }) {
  const keys = Object.keys(labels).sort();
  if (!keys.length) return null;
  return (
    <div>
      <h4>{title}</h4>
      <table class="kv">
        <tbody>
          {keys.map((k) => (
            <tr key={k}>
              <td class="muted">{k}</td>
              <td class="mono">{labels[k]}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function LogRow({ l }: { l: LogLine }) {
  const [open, setOpen] = useState(false);
  const tid = traceID(l);
  const lv = level(l);
  return (
    <div class={'log-row' + (open ? ' open' : '')} data-testid="log-line">
      <div class="log-head" onClick={() => setOpen(!open)}>
        <span class="log-level" style={{ background: levelColor(lv) }} title={lv} />
        <span class="log-time mono muted">{new Date(l.ms).toLocaleString(undefined, { hour12: false })}.{String(l.ms % 1000).padStart(3, '0')}</span>
        <span class="log-text mono">{l.line}</span>
        {tid && (
          <a class="pill log-trace" href={link('/traces', { trace: tid })} data-testid="log-trace-link" onClick={(e) => e.stopPropagation()} title={`open trace ${tid}`}>
            trace
          </a>
        )}
      </div>
      {open && (
        <div class="log-fields" data-testid="log-fields">
          <KV title="Labels" labels={l.labels} />
          <KV title="Structured metadata" labels={l.metadata} />
          <KV title="Parsed" labels={l.parsed} />
          {tid && (
            <a class="btn" href={link('/traces', { trace: tid })}>
              View trace {tid.slice(0, 16)}…
            </a>
          )}
        </div>
      )}
    </div>
  );
}

/** useLiveTail streams lines over Loki's tail websocket while on, newest first. */
function useLiveTail(q: string, on: boolean): { lines: LogLine[]; error?: string } {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [error, setError] = useState<string>();
  useEffect(() => {
    setLines([]);
    setError(undefined);
    if (!on || !isLogQuery(q)) return;
    return loki.tail(q, Date.now() / 1000 - 60, (batch) => setLines((old) => [...batch, ...old].slice(0, LIVE_MAX)), setError);
  }, [q, on]);
  return { lines, error };
}

const EXAMPLES = ['{service_name=~".+"}', '{service_name=~".+"} |= "error"', '{service_name=~".+"} | detected_level="error"', 'sum by (service_name) (rate({service_name=~".+"}[1m]))'];

export function Logs() {
  const { range, tick } = useApp();
  const { query } = useLocation();
  const q = query.get('q') ?? '';
  const live = query.get('live') === '1';
  const logQuery = isLogQuery(q);
  const step = volumeStep(range.start, range.end);
  const lines = useAsync(async (s) => (q && logQuery && !live ? loki.queryLogs(q, range.start, range.end, LIMIT, s) : null), [q, range.start, range.end, tick, live]);
  const volume = useAsync(async (s) => (q && logQuery ? loki.queryVolume(volumeQuery(q, step), range.start, range.end, step, s) : null), [q, range.start, range.end, tick, step]);
  const metric = useAsync(async (s) => (q && !logQuery ? loki.queryMetric(q, range.start, range.end, Math.max(15, step), s) : null), [q, range.start, range.end, tick]);
  const tailed = useLiveTail(q, live);
  const submit = (nq: string) => setQuery({ q: nq.trim() || null });

  return (
    <div class="page logs-page">
      <Panel>
        <LogQLInput value={q} onSubmit={submit} />
        <div class="hint muted small">
          LogQL, e.g. <code>{'{service_name="checkout"} |= "timeout"'}</code> · <code>{'{service_name="checkout"} | json | status >= 500'}</code> · <code>{'sum by (detected_level) (rate({service_name="checkout"}[1m]))'}</code>. Tab completes labels and values.
        </div>
      </Panel>
      {!q && (
        <Panel title="Examples">
          <ul class="examples">
            {EXAMPLES.map((e) => (
              <li key={e}>
                <button class="link mono" onClick={() => submit(e)}>
                  {e}
                </button>
              </li>
            ))}
          </ul>
        </Panel>
      )}
      {q && logQuery && (
        <Panel title="Volume">
          <Load state={volume}>{(d) => d && <Volume series={d} start={range.start} end={range.end} step={step} />}</Load>
        </Panel>
      )}
      {q && !logQuery && (
        <Panel title="Metric" testid="logs-metric">
          <Load state={metric} empty={(d) => !!d && d.length === 0}>
            {(d) =>
              d && (
                <Chart
                  series={d.slice(0, 50).map((r) => ({ name: seriesName(r.metric), series: { labels: r.metric, t: r.values.map((p) => p[0]), v: r.values.map((p) => p[1]) } }))}
                  fmt={(v) => fmtNum(v)}
                  height={260}
                  range={[range.start, range.end]}
                />
              )
            }
          </Load>
        </Panel>
      )}
      {q && logQuery && (
        <Panel
          title={live ? `Live · ${tailed.lines.length} lines` : `Lines${lines.data ? ` (${lines.data.length}${lines.data.length >= LIMIT ? ', newest ' + LIMIT : ''})` : ''}`}
          testid="log-lines"
          right={
            <button class={'btn' + (live ? ' primary' : '')} data-testid="live-tail" onClick={() => setQuery({ live: live ? null : '1' })} title="stream new lines as they arrive (Loki tail)">
              {live ? '■ Stop live' : '▶ Live'}
            </button>
          }
        >
          {live ? (
            <>
              {tailed.error && <div class="error-box">{tailed.error}</div>}
              {tailed.lines.length === 0 && !tailed.error && <div class="empty-inline">Waiting for new lines…</div>}
              <div class="log-list">{tailed.lines.map((l) => <LogRow key={l.ns + '\u0000' + l.line} l={l} />)}</div>
            </>
          ) : (
            <Load state={lines} empty={(d) => (d && d.length === 0 ? <div class="empty-inline">No lines match in this time range.</div> : false)}>
              {(d) => d && <div class="log-list">{d.map((l) => <LogRow key={l.ns + '\u0000' + l.line} l={l} />)}</div>}
            </Load>
          )}
        </Panel>
      )}
    </div>
  );
}
