import { useMemo } from 'preact/hooks';
import * as api from '../api';
import { CompletingInput, type Completion, type Completions } from '../components/CompletingInput';
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

/** context finds what is being typed before the cursor: a tag name or the value of a tag. */
export function completionContext(text: string): { kind: 'tag'; prefix: string } | { kind: 'value'; tag: string; prefix: string; quoted: boolean } | null {
  const v = /([A-Za-z_][\w.:-]*)\s*(=|!=|=~|!~)\s*("?)([^"\s&|)}]*)$/.exec(text);
  if (v) return { kind: 'value', tag: v[1], prefix: v[4], quoted: v[3] === '"' };
  const t = /(?:^|[{(&|!\s])([.\w:-]*)$/.exec(text);
  if (t && text.lastIndexOf('{') > text.lastIndexOf('}')) return { kind: 'tag', prefix: t[1] };
  return null;
}

/** useTraceQLCompletions suggests intrinsics and attribute names inside `{ }`, and the values of the tag being compared. */
function useTraceQLCompletions(before: string): Completions {
  const { range } = useApp();
  const tags = useAsync(async (s) => {
    try {
      return await api.searchTags(range.start, range.end, s);
    } catch {
      return [];
    }
  }, [Math.floor(range.start / 300)]);
  const ctx = completionContext(before);
  const valueTag = ctx?.kind === 'value' ? ctx.tag : '';
  const values = useAsync(async (s) => {
    if (!valueTag || ENUMS[valueTag]) return [];
    try {
      return await api.tagValues(valueTag, range.start, range.end, s);
    } catch {
      return [];
    }
  }, [valueTag]);

  const items = useMemo(() => {
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
        .map((t) => ({ text: t, label: t, badge: 'T', badgeClass: '' }));
    }
    const vals = ENUMS[ctx.tag]?.map((v) => ({ value: v, type: 'keyword' })) ?? values.data ?? [];
    return vals
      .filter((v) => v.value.toLowerCase().includes(ctx.prefix.toLowerCase()))
      .slice(0, 12)
      .map((v) => ({ text: v.type === 'string' ? `"${v.value}"` : v.value, label: v.value, badge: 'V', badgeClass: 'value' }));
  }, [ctx?.kind, ctx?.prefix, valueTag, tags.data, values.data]);
  return { items, typing: !!ctx?.prefix };
}

/** insertTraceQL replaces the typed prefix (and an opened quote) with the suggestion. */
function insertTraceQL(text: string, cursor: number, c: Completion): { text: string; cursor: number } {
  const ctx = completionContext(text.slice(0, cursor));
  const after = text.slice(cursor);
  let start = cursor;
  if (ctx?.kind === 'tag') start = cursor - ctx.prefix.length;
  if (ctx?.kind === 'value') start = cursor - ctx.prefix.length - (ctx.quoted ? 1 : 0);
  const rest = ctx?.kind === 'value' && ctx.quoted && after.startsWith('"') ? after.slice(1) : after;
  return { text: text.slice(0, start) + c.text + rest, cursor: start + c.text.length };
}

export function TraceQLInput({ value, onSubmit }: { value: string; onSubmit: (q: string) => void }) {
  return (
    <CompletingInput
      value={value}
      onSubmit={onSubmit}
      placeholder='{ resource.service.name = "checkout" && status = error }'
      testId="traceql"
      listTestId="suggestions"
      runTestId="run-search"
      runLabel="Search"
      useCompletions={useTraceQLCompletions}
      insert={insertTraceQL}
    />
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
