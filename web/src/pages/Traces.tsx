import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import * as api from '../api';
import { Load, Panel } from '../components/ui';
import { useApp, useAsync } from '../hooks';
import { fmtAgo, fmtMs } from '../lib/format';
import type { SearchHit } from '../lib/trace';
import { setQuery, useLocation } from '../router';
import { TraceView } from './Home';

export function TraceTable({ hits, selected, onPick, compact }: { hits: SearchHit[]; selected?: string; onPick: (id: string) => void; compact?: boolean }) {
  const max = Math.max(...hits.map((h) => h.durationMs), 1);
  return (
    <div class={compact ? 'scroll short' : ''}>
      <table class="grid traces" data-testid="trace-table">
        <thead>
          <tr>
            <th>Root service · operation</th>
            {!compact && <th>Trace ID</th>}
            <th class="num">Spans</th>
            <th>Duration</th>
            <th class="num">Started</th>
          </tr>
        </thead>
        <tbody>
          {hits.map((h) => (
            <tr key={h.traceID} class={'clickable' + (h.traceID === selected ? ' sel' : '')} onClick={() => onPick(h.traceID)} data-testid="trace-row">
              <td class="ellipsis">
                <b>{h.rootServiceName}</b> <span class="muted">{h.rootTraceName}</span>
                {h.errorCount > 0 && <span class="err-badge">{h.errorCount} err</span>}
              </td>
              {!compact && <td class="mono small">{h.traceID}</td>}
              <td class="num">{h.spanCount || ''}</td>
              <td class="dur-cell">
                <span class="dur-bar" style={{ width: Math.max(2, (h.durationMs / max) * 100) + '%' }} />
                <span>{h.durationMs > 0 ? fmtMs(h.durationMs) : "<1ms"}</span>
              </td>
              <td class="num muted" title={new Date(h.start).toLocaleString()}>
                {fmtAgo(h.start)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const INTRINSICS = ['duration', 'name', 'status', 'kind', 'rootName', 'rootServiceName', 'traceDuration', 'statusMessage'];
const ENUMS: Record<string, string[]> = {
  status: ['error', 'ok', 'unset'],
  kind: ['server', 'client', 'producer', 'consumer', 'internal', 'unspecified'],
};

interface Suggestion {
  text: string; // inserted text
  label: string;
  kind: 'tag' | 'value' | 'op';
}

/** context finds what is being typed before the cursor: a tag name or the value of a tag. */
export function completionContext(text: string): { kind: 'tag'; prefix: string } | { kind: 'value'; tag: string; prefix: string; quoted: boolean } | null {
  const v = /([A-Za-z_][\w.:-]*)\s*(=|!=|=~|!~)\s*("?)([^"\s&|)}]*)$/.exec(text);
  if (v) return { kind: 'value', tag: v[1], prefix: v[4], quoted: v[3] === '"' };
  const t = /(?:^|[{(&|!\s])([.\w:-]*)$/.exec(text);
  if (t && text.lastIndexOf('{') > text.lastIndexOf('}')) return { kind: 'tag', prefix: t[1] };
  return null;
}

export function TraceQLInput({ value, onSubmit }: { value: string; onSubmit: (q: string) => void }) {
  const { range } = useApp();
  const [text, setText] = useState(value);
  const [cursor, setCursor] = useState(value.length);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => setText(value), [value]);

  const tags = useAsync(async (s) => {
    try {
      return await api.searchTags(range.start, range.end, s);
    } catch {
      return [];
    }
  }, [Math.floor(range.start / 300)]);
  const ctx = completionContext(text.slice(0, cursor));
  const valueTag = ctx?.kind === 'value' ? ctx.tag : '';
  const values = useAsync(async (s) => {
    if (!valueTag || ENUMS[valueTag]) return [];
    try {
      return await api.tagValues(valueTag, range.start, range.end, s);
    } catch {
      return [];
    }
  }, [valueTag]);

  const suggestions: Suggestion[] = useMemo(() => {
    if (!ctx) return [];
    if (ctx.kind === 'tag') {
      const all: string[] = [...INTRINSICS];
      for (const sc of tags.data ?? []) {
        if (sc.name === 'intrinsic') continue;
        for (const t of sc.tags) all.push(`${sc.name}.${t}`);
      }
      const p = ctx.prefix.toLowerCase();
      return all
        .filter((t) => t.toLowerCase().includes(p) && t !== ctx.prefix)
        .slice(0, 12)
        .map((t) => ({ text: t, label: t, kind: 'tag' as const }));
    }
    const vals = ENUMS[ctx.tag]?.map((v) => ({ value: v, type: 'keyword' })) ?? values.data ?? [];
    return vals
      .filter((v) => v.value.toLowerCase().includes(ctx.prefix.toLowerCase()))
      .slice(0, 12)
      .map((v) => ({ text: v.type === 'string' ? `"${v.value}"` : v.value, label: v.value, kind: 'value' as const }));
  }, [ctx?.kind, ctx?.prefix, valueTag, tags.data, values.data]);

  const accept = (sg: Suggestion) => {
    const before = text.slice(0, cursor);
    const after = text.slice(cursor);
    let start = cursor;
    if (ctx?.kind === 'tag') start = cursor - ctx.prefix.length;
    if (ctx?.kind === 'value') start = cursor - ctx.prefix.length - (ctx.quoted ? 1 : 0);
    const ins = sg.kind === 'tag' ? sg.text : sg.text;
    const rest = ctx?.kind === 'value' && ctx.quoted && after.startsWith('"') ? after.slice(1) : after;
    const next = before.slice(0, start) + ins + rest;
    setText(next);
    const pos = start + ins.length;
    setCursor(pos);
    setActive(0);
    requestAnimationFrame(() => input.current?.setSelectionRange(pos, pos));
  };

  return (
    <div class="traceql">
      <input
        ref={input}
        class="query mono"
        data-testid="traceql"
        spellcheck={false}
        value={text}
        placeholder='{ resource.service.name = "checkout" && status = error }'
        onInput={(e) => {
          const el = e.target as HTMLInputElement;
          setText(el.value);
          setCursor(el.selectionStart ?? el.value.length);
          setOpen(true);
          setActive(0);
        }}
        onClick={(e) => setCursor((e.target as HTMLInputElement).selectionStart ?? 0)}
        onKeyUp={(e) => {
          if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) setCursor((e.target as HTMLInputElement).selectionStart ?? 0);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          const show = open && suggestions.length > 0;
          if (show && e.key === 'ArrowDown') {
            setActive((a) => (a + 1) % suggestions.length);
            e.preventDefault();
          } else if (show && e.key === 'ArrowUp') {
            setActive((a) => (a - 1 + suggestions.length) % suggestions.length);
            e.preventDefault();
          } else if (show && (e.key === 'Tab' || (e.key === 'Enter' && !e.ctrlKey && !e.metaKey && ctx?.prefix))) {
            accept(suggestions[active]);
            e.preventDefault();
          } else if (e.key === 'Escape') setOpen(false);
          else if (e.key === 'Enter') {
            setOpen(false);
            onSubmit(text);
          }
        }}
      />
      <button class="btn primary" data-testid="run-search" onClick={() => onSubmit(text)}>
        Search
      </button>
      {open && suggestions.length > 0 && (
        <ul class="suggest" data-testid="suggestions">
          {suggestions.map((s, i) => (
            <li
              key={s.text}
              class={i === active ? 'on' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                accept(s);
              }}
            >
              <span class={'kind ' + s.kind}>{s.kind === 'tag' ? 'T' : 'V'}</span>
              {s.label}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Traces() {
  const { range, tick } = useApp();
  const { query } = useLocation();
  const q = query.get('q') ?? '{}';
  const id = query.get('trace') ?? '';
  const span = query.get('span') ?? undefined;
  const limit = Number(query.get('limit') ?? 50);
  const hits = useAsync((s) => api.searchTraces(q, range.start, range.end, limit, s), [q, range.start, range.end, tick, limit]);
  return (
    <div class="page traces-page">
      <Panel>
        <TraceQLInput value={q} onSubmit={(nq) => setQuery({ q: nq === '{}' ? null : nq, trace: null })} />
        <div class="hint muted small">
          TraceQL, e.g. <code>{'{ status = error }'}</code> · <code>{'{ duration > 500ms }'}</code> · <code>{'{ resource.service.name = "checkout" && span.http.method = "POST" }'}</code>. Tab completes tags and values.
        </div>
      </Panel>
      <div class={id ? 'traces-split' : ''}>
        <Panel title={`Traces${hits.data ? ` (${hits.data.length})` : ''}`} testid="search-results">
          <Load state={hits} empty={(d) => (d.length === 0 ? <div class="empty-inline">No traces match in this time range.</div> : false)}>
            {(d) => <TraceTable hits={d} selected={id} onPick={(t) => setQuery({ trace: t, span: null })} compact={!!id} />}
          </Load>
        </Panel>
        {id && (
          <Panel title="Trace" right={<button class="icon" title="close" onClick={() => setQuery({ trace: null, span: null })}>✕</button>}>
            <TraceView id={id} span={span} key={id} />
          </Panel>
        )}
      </div>
    </div>
  );
}
