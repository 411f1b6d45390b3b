import { useState } from 'preact/hooks';
import * as api from '../api';
import { Chart } from '../components/Chart';
import { Load, Panel } from '../components/ui';
import { useApp, useAsync } from '../hooks';
import { fmtNum } from '../lib/format';
import { last, seriesName } from '../lib/prom';
import { setQuery, useLocation } from '../router';

const EXAMPLES = [
  'sum by (service) (rate(traces_spanmetrics_calls_total[5m]))',
  'histogram_quantile(0.99, sum by (le, service) (rate(traces_spanmetrics_latency_bucket[5m])))',
  '100 - (avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)',
  'sum by (client, server) (rate(traces_service_graph_request_total[5m]))',
];

export function Explore() {
  const { range, tick } = useApp();
  const { query } = useLocation();
  const q = query.get('q') ?? '';
  const [text, setText] = useState(q);
  const names = useAsync((s) => api.metricNames(s).catch(() => [] as string[]), []);
  const res = useAsync(async (s) => (q ? api.queryRange(q, range.start, range.end, undefined, s) : null), [q, range.start, range.end, tick]);
  const run = () => setQuery({ q: text.trim() || null });
  return (
    <div class="page explore">
      <Panel>
        <div class="promql">
          <textarea
            class="query mono"
            data-testid="promql"
            rows={Math.min(6, Math.max(1, text.split('\n').length))}
            value={text}
            spellcheck={false}
            placeholder="PromQL, e.g. sum by (service) (rate(traces_spanmetrics_calls_total[5m]))"
            onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey) {
                e.preventDefault();
                run();
              }
            }}
          />
          <button class="btn primary" onClick={run} data-testid="run-query">
            Run
          </button>
        </div>
        <div class="hint muted small">
          Enter runs, Shift+Enter adds a line. Metric:{' '}
          <input
            list="metric-names"
            class="metric-pick"
            placeholder="pick a metric…"
            onChange={(e) => {
              const v = (e.target as HTMLInputElement).value;
              if (v) {
                setText(v);
                setQuery({ q: v });
              }
            }}
          />
          <datalist id="metric-names">{(names.data ?? []).map((n) => <option key={n} value={n} />)}</datalist>
        </div>
      </Panel>
      {!q && (
        <Panel title="Examples">
          <ul class="examples">
            {EXAMPLES.map((e) => (
              <li key={e}>
                <button
                  class="link mono"
                  onClick={() => {
                    setText(e);
                    setQuery({ q: e });
                  }}
                >
                  {e}
                </button>
              </li>
            ))}
          </ul>
        </Panel>
      )}
      {q && (
        <Load state={res}>
          {(d) =>
            d && (
              <>
                <Panel title={`${d.length} series`} testid="explore-chart">
                  {d.length ? <Chart series={d.slice(0, 50).map((s) => ({ name: seriesName(s.labels), series: s }))} fmt={(v) => fmtNum(v)} height={300} range={[range.start, range.end]} onZoom={(a, b) => setQuery({ from: String(Math.round(a * 1000)), to: String(Math.round(b * 1000)) })} /> : <div class="empty-inline">The query returned no series.</div>}
                </Panel>
                <Panel title="Table (last value)">
                  <table class="grid">
                    <thead>
                      <tr>
                        <th>Series</th>
                        <th class="num">Value</th>
                      </tr>
                    </thead>
                    <tbody>
                      {d.map((s, i) => (
                        <tr key={i}>
                          <td class="mono small">{seriesName(s.labels)}</td>
                          <td class="num">{fmtNum(last(s), 5)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </Panel>
              </>
            )
          }
        </Load>
      )}
    </div>
  );
}
