import * as api from '../api';
import { Badge, LabelChips } from '../components/Status';
import { Load, Panel } from '../components/ui';
import { useApp, useAsync } from '../hooks';
import { fmtAgo, fmtMs } from '../lib/format';
import type { Health, Pool } from '../lib/promstatus';
import { setQuery, useLocation } from '../router';

const FILTERS: (Health | 'all')[] = ['all', 'up', 'down', 'unknown'];

/** Targets shows what the scrape manager scrapes, one panel per scrape pool. */
export function Targets() {
  const { tick } = useApp();
  const { query } = useLocation();
  const filter = (query.get('health') ?? 'all') as Health | 'all';
  const state = useAsync((s) => api.scrapeTargets(s), [tick]);
  const count = (pools: Pool[], h: Health | 'all') => pools.reduce((n, p) => n + p.targets.filter((t) => h === 'all' || t.health === h).length, 0);
  return (
    <div class="page targets" data-testid="targets-page">
      <div class="page-title">
        <h1>Targets</h1>
        <span class="muted">scrape_configs of the Prometheus configuration, plus Vispyr's own /metrics</span>
      </div>
      <div class="toolbar">
        <div class="seg" data-testid="health-filter">
          {FILTERS.map((h) => (
            <button key={h} class={filter === h ? 'on' : ''} data-health={h} onClick={() => setQuery({ health: h === 'all' ? null : h }, true)}>
              {h}
              {state.data ? ` (${count(state.data, h)})` : ''}
            </button>
          ))}
        </div>
      </div>
      <Load state={state} empty={(d) => (d.length ? false : <div class="empty-inline">No scrape targets: add scrape_configs to the file given with --prometheus.config.file.</div>)}>
        {(pools) => {
          const shown = pools.map((p) => ({ ...p, targets: p.targets.filter((t) => filter === 'all' || t.health === filter) })).filter((p) => p.targets.length);
          if (!shown.length) return <div class="empty-inline">No target is {filter}.</div>;
          return <>{shown.map((p) => <PoolPanel key={p.name} pool={p} total={pools.find((x) => x.name === p.name)!} />)}</>;
        }}
      </Load>
    </div>
  );
}

function PoolPanel({ pool, total }: { pool: Pool; total: Pool }) {
  return (
    <Panel title={pool.name} right={<span class="muted">{`${total.up}/${total.targets.length} up`}</span>} testid="target-pool">
      <div class="scroll">
        <table class="grid">
          <thead>
            <tr>
              <th>Endpoint</th>
              <th>State</th>
              <th>Labels</th>
              <th>Last scrape</th>
              <th class="num">Duration</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            {pool.targets.map((t) => (
              <tr key={t.url} data-testid="target-row" data-health={t.health}>
                <td class="mono small">
                  <a href={t.url} target="_blank" rel="noreferrer">
                    {t.url}
                  </a>
                </td>
                <td>
                  <Badge state={t.health} testid="target-health" />
                </td>
                <td class="wrap">
                  <LabelChips labels={t.labels} />
                </td>
                <td title={t.lastScrape ? new Date(t.lastScrape).toLocaleString() : ''}>{t.lastScrape ? fmtAgo(t.lastScrape) : 'never'}</td>
                <td class="num">{t.lastScrape ? fmtMs(t.durationSec * 1000) : '–'}</td>
                <td class="errtext small" data-testid="target-error">
                  {t.lastError}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Panel>
  );
}
