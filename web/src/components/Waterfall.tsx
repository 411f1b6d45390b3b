import { useMemo, useState } from 'preact/hooks';
import { fmtMs, fmtTime } from '../lib/format';
import { traceLogsQuery } from '../lib/logs';
import { profileSpanID, type AttrValue, type Span, type Trace } from '../lib/trace';
import { link } from '../router';
import { PALETTE } from './Chart';

export function serviceColor(services: string[], s: string): string {
  const i = services.indexOf(s);
  return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
}

function ticks(dur: number): number[] {
  return [0, 0.25, 0.5, 0.75, 1].map((f) => f * dur);
}

/** Waterfall shows the span tree against a shared timeline; click a span for its details. */
export function Waterfall({ trace, initialSpan }: { trace: Trace; initialSpan?: string }) {
  const [sel, setSel] = useState<string>(initialSpan ?? '');
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const dur = Math.max(trace.duration, 0.001);

  // Hide the descendants of collapsed spans.
  const rows = useMemo(() => {
    const out = [];
    let hideBelow = -1;
    for (const r of trace.rows) {
      if (hideBelow >= 0 && r.depth > hideBelow) continue;
      hideBelow = collapsed.has(r.span.spanId) ? r.depth : -1;
      out.push(r);
    }
    return out;
  }, [trace, collapsed]);

  const selected = trace.spans.find((s) => s.spanId === sel);
  const byId = useMemo(() => new Map(trace.spans.map((s) => [s.spanId, s])), [trace]);
  const toggle = (id: string) => {
    const n = new Set(collapsed);
    if (n.has(id)) n.delete(id);
    else n.add(id);
    setCollapsed(n);
  };

  return (
    <div class="waterfall" data-testid="waterfall">
      <div class="wf-summary">
        <span class="mono">{trace.traceId}</span>
        <span>{fmtMs(dur)}</span>
        <span>{trace.spans.length} spans</span>
        <span>{trace.services.length} services</span>
        {trace.errorCount > 0 && <span class="err-badge">{trace.errorCount} errors</span>}
        <span class="muted">started {new Date(trace.start).toLocaleString()}</span>
      </div>
      <div class="wf-head">
        <div class="wf-name">Service · operation</div>
        <div class="wf-time">
          {ticks(dur).map((t, i) => (
            <span key={i} style={{ left: (t / dur) * 100 + '%' }}>
              {fmtMs(t)}
            </span>
          ))}
        </div>
      </div>
      <div class="wf-body">
        {rows.map((r) => {
          const s = r.span;
          // The service is named where it changes along the tree, as a trace crosses services.
          const parent = r.depth > 0 ? byId.get(s.parentSpanId) : undefined;
          const showSvc = !parent || parent.service !== s.service;
          const left = ((s.start - trace.start) / dur) * 100;
          const width = Math.max((s.duration / dur) * 100, 0.15);
          const color = serviceColor(trace.services, s.service);
          return (
            <div key={s.spanId} class={'wf-row' + (s.spanId === sel ? ' sel' : '') + (s.error ? ' error' : '')} onClick={() => setSel(s.spanId === sel ? '' : s.spanId)}>
              <div class="wf-name" style={{ paddingLeft: 6 + r.depth * 14 + 'px' }}>
                {r.childCount > 0 ? (
                  <button
                    class="twisty"
                    onClick={(e) => {
                      e.stopPropagation();
                      toggle(s.spanId);
                    }}
                  >
                    {collapsed.has(s.spanId) ? '▸' : '▾'}
                  </button>
                ) : (
                  <span class="twisty" />
                )}
                <i class="dot" style={{ background: color }} />
                {showSvc && <span class="svc">{s.service}</span>}
                <span class="op" title={s.name}>
                  {s.name}
                </span>
                {s.error && <span class="err-icon" title={s.statusMessage || 'error'}>!</span>}
                {profileSpanID(s) && (
                  <span class="prof-icon" title="has a span profile">
                    <FlameIcon />
                  </span>
                )}
              </div>
              <div class="wf-time">
                <div class="wf-bar" style={{ left: left + '%', width: width + '%', background: s.error ? 'var(--err)' : color }} />
                <span class={'wf-dur' + (left + width > 85 && width > 15 ? ' inside' : '')} style={durStyle(left, width)}>
                  {fmtMs(s.duration)}
                </span>
              </div>
            </div>
          );
        })}
      </div>
      {selected && <SpanDetails span={selected} trace={trace} />}
    </div>
  );
}

/** durStyle puts the duration label right of the bar, or inside/left of it near the end. */
function durStyle(left: number, width: number) {
  if (left + width <= 85) return { left: left + width + 0.5 + '%' };
  if (width > 15) return { right: 100 - left - width + 0.5 + '%' };
  return { right: 100 - left + 0.5 + '%' };
}

export function FlameIcon() {
  return (
    <svg width="11" height="12" viewBox="0 0 12 14" aria-hidden="true">
      <path d="M6 0c1 3 5 4.5 5 8.5A5 5 0 0 1 1 8.5C1 6 3 5 3 3c1.2 1 1.6 2 1.6 3C5.8 4.5 6 2.5 6 0z" fill="#ff7a45" />
      <path d="M6 7c.6 1.4 2.4 2 2.4 3.6a2.4 2.4 0 0 1-4.8 0C3.6 9.3 5.4 8.6 6 7z" fill="#ffd591" />
    </svg>
  );
}

function fmtAttr(v: AttrValue): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function AttrTable({ title, attrs }: { title: string; attrs: Record<string, AttrValue> }) {
  const keys = Object.keys(attrs).sort();
  if (!keys.length) return null;
  return (
    <div class="attrs">
      <h4>{title}</h4>
      <table class="kv">
        <tbody>
          {keys.map((k) => (
            <tr key={k}>
              <td class="k">{k}</td>
              <td class="v mono">{fmtAttr(attrs[k])}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** SpanDetails shows one span's attributes, events and status, and its profile link. */
export function SpanDetails({ span: s, trace }: { span: Span; trace: Trace }) {
  const pid = profileSpanID(s);
  // The profile window is the span's own time, widened to whole seconds either side.
  const from = Math.floor(s.start / 1000) * 1000 - 1000;
  const to = Math.ceil(s.end / 1000) * 1000 + 1000;
  // Logs are looked for around the whole trace, as Grafana's trace-to-logs shifts by minutes.
  const logsFrom = Math.floor(trace.start) - 5 * 60_000;
  const logsTo = Math.ceil(trace.end) + 5 * 60_000;
  return (
    <div class="span-details" data-testid="span-details">
      <div class="sd-head">
        <h3>{s.name}</h3>
        <a class="pill" href={link('/service/' + encodeURIComponent(s.service))} title="open the service page">
          {s.service}
        </a>
        <span class="pill">{s.kind}</span>
        <span class={'pill' + (s.error ? ' pill-err' : '')}>{s.error ? 'error' : 'ok'}</span>
        <span>{fmtMs(s.duration)}</span>
        <span class="muted">at +{fmtMs(s.start - trace.start)} ({fmtTime(s.start)})</span>
        {pid && (
          <a class="btn" href={link('/profiles', { span: pid, service: s.service, from: String(from), to: String(to) })} data-testid="span-profile-link">
            <FlameIcon /> Profile for this span
          </a>
        )}
        <a class="btn" href={link('/logs', { q: traceLogsQuery(trace.traceId), from: String(logsFrom), to: String(logsTo) })} data-testid="trace-logs-link">
          Logs for this trace
        </a>
        <a class="btn" href={link('/logs', { q: traceLogsQuery(trace.traceId, s.service, s.spanId), from: String(logsFrom), to: String(logsTo) })} data-testid="span-logs-link">
          Logs for this span
        </a>
      </div>
      {s.error && s.statusMessage && <div class="error-box">{s.statusMessage}</div>}
      <div class="mono muted small">
        span {s.spanId} {s.parentSpanId && `· parent ${s.parentSpanId}`} {s.scope && `· scope ${s.scope}`}
      </div>
      <div class="sd-cols">
        <AttrTable title="Span attributes" attrs={s.attributes} />
        <AttrTable title="Resource" attrs={s.resource} />
      </div>
      {s.events.length > 0 && (
        <div class="attrs">
          <h4>Events</h4>
          {s.events.map((e, i) => (
            <div key={i} class={'event' + (e.name === 'exception' ? ' error' : '')}>
              <b>{e.name}</b> <span class="muted">+{fmtMs(e.time - s.start)}</span>
              {Object.entries(e.attributes).map(([k, v]) => (
                <div key={k} class="mono small">
                  {k}: {fmtAttr(v)}
                </div>
              ))}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
