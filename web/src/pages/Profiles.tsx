import * as api from '../api';
import { FlameGraph } from '../components/FlameGraph';
import { Load, Panel, Select } from '../components/ui';
import { useApp, useAsync } from '../hooks';
import { diffGraphs } from '../lib/flamegraph';
import { fmtProfileValue } from '../lib/format';
import { setQuery, useLocation } from '../router';
import { esc } from '../queries';

type Mode = 'single' | 'diff';

/** diffRanges splits or shifts the window into a baseline and a comparison range (ms). */
export function diffRanges(start: number, end: number, how: string): { base: [number, number]; comp: [number, number] } {
  if (how === 'previous') return { base: [2 * start - end, start], comp: [start, end] };
  const mid = Math.round((start + end) / 2); // the API takes whole milliseconds
  return { base: [start, mid], comp: [mid, end] };
}

export function Profiles() {
  const { range, tick } = useApp();
  const { query } = useLocation();
  const startMs = Math.floor(range.start * 1000);
  const endMs = Math.ceil(range.end * 1000);
  const span = query.get('span') ?? '';
  const mode = (query.get('mode') as Mode) ?? 'single';
  const how = query.get('diff') ?? 'halves';

  const types = useAsync((s) => api.profileTypes(startMs, endMs, s), [Math.floor(startMs / 60000), tick]);
  const t = types.data && (types.data.find((x) => x.id === query.get('type')) ?? api.pickProfileType(types.data, 'cpu'));
  const services = useAsync(async (s) => (t ? api.profileLabelValues('service_name', t.id, startMs, endMs, s) : []), [t?.id, Math.floor(startMs / 60000), tick]);
  const service = query.get('service') ?? '';
  const selector = service ? `{service_name="${esc(service)}"}` : '{}';

  const fg = useAsync(async (s) => {
    if (!t) return null;
    if (span) return api.mergeSpanProfile(t.id, selector, [span], startMs, endMs, s);
    if (mode === 'diff') {
      const { base, comp } = diffRanges(startMs, endMs, how);
      const [a, b] = await Promise.all([api.mergeStacktraces(t.id, selector, base[0], base[1], s), api.mergeStacktraces(t.id, selector, comp[0], comp[1], s)]);
      return diffGraphs(a, b);
    }
    return api.mergeStacktraces(t.id, selector, startMs, endMs, s);
  }, [t?.id, selector, startMs, endMs, span, mode, how, tick]);

  const { base, comp } = diffRanges(startMs, endMs, how);
  const tm = (ms: number) => new Date(ms).toLocaleTimeString();

  return (
    <div class="page profiles">
      <Panel>
        <div class="toolbar">
          <Load state={types} empty={(d) => (d.length === 0 ? <span class="muted">No profiles received yet — point a Pyroscope SDK at http://{location.hostname}:4040.</span> : false)}>
            {(ts) => (
              <>
                <Select label="Profile" testid="profile-type" value={t?.id ?? ''} options={ts.map((x) => ({ value: x.id, label: `${x.name} · ${x.sampleType} (${x.sampleUnit})` }))} onChange={(v) => setQuery({ type: v })} />
                <Select label="Service" testid="profile-service" value={service} options={[{ value: '', label: 'All services' }, ...(services.data ?? []).map((v) => ({ value: v }))]} onChange={(v) => setQuery({ service: v })} />
                {!span && (
                  <div class="seg">
                    <button class={mode === 'single' ? 'on' : ''} onClick={() => setQuery({ mode: null })}>
                      Flame graph
                    </button>
                    <button class={mode === 'diff' ? 'on' : ''} data-testid="diff-mode" onClick={() => setQuery({ mode: 'diff' })}>
                      Diff
                    </button>
                  </div>
                )}
                {mode === 'diff' && !span && (
                  <Select
                    value={how}
                    options={[
                      { value: 'halves', label: 'first half vs second half' },
                      { value: 'previous', label: 'previous window vs this window' },
                    ]}
                    onChange={(v) => setQuery({ diff: v })}
                  />
                )}
              </>
            )}
          </Load>
        </div>
        {span && (
          <div class="banner">
            Span profile of span <span class="mono">{span}</span> — only the samples taken while this span ran.{' '}
            <button class="link" onClick={() => setQuery({ span: null, from: null, to: null })}>
              Show the whole service
            </button>
          </div>
        )}
        {mode === 'diff' && !span && (
          <div class="banner">
            Baseline {tm(base[0])}–{tm(base[1])} vs comparison {tm(comp[0])}–{tm(comp[1])}. Red frames take a larger share in the comparison, green a smaller one (shares are normalised by each range's total).
          </div>
        )}
      </Panel>
      {t && (
        <Panel title={fg.data ? `${t.name} · total ${fmtProfileValue(fg.data.total, t.sampleUnit)}` : t.name} testid="profile-panel">
          <Load state={fg}>{(g) => (g ? <FlameGraph fg={g} unit={t.sampleUnit} view="both" /> : null)}</Load>
        </Panel>
      )}
    </div>
  );
}
