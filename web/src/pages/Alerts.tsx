import * as api from '../api';
import { Badge, LabelChips } from '../components/Status';
import { Load, Panel } from '../components/ui';
import { useApp, useAsync } from '../hooks';
import { fmtAgo, fmtMs } from '../lib/format';
import { activeAlerts, type ActiveAlert, type RuleGroup } from '../lib/promstatus';
import { link } from '../router';

/** exploreLink opens the metrics explorer at a rule's expression. */
const exploreLink = (q: string) => link('/explore', { q });

/** Alerts shows firing and pending alerts, then every rule group with its rules' health. */
export function Alerts() {
  const { tick } = useApp();
  const state = useAsync((s) => api.ruleGroups(s), [tick]);
  return (
    <div class="page alerts" data-testid="alerts-page">
      <div class="page-title">
        <h1>Alerts</h1>
        <span class="muted">rule_files of the Prometheus configuration and the shipped rules, evaluated by Prometheus's rules manager</span>
      </div>
      <Load state={state} empty={(d) => (d.length ? false : <div class="empty-inline">No rules loaded: list rule files under rule_files in the file given with --prometheus.config.file, or turn on the shipped ones with --prometheus.default-rules.</div>)}>
        {(groups) => (
          <>
            <ActiveAlerts alerts={activeAlerts(groups)} />
            {groups.map((g) => (
              <GroupPanel key={g.file + '/' + g.name} group={g} />
            ))}
          </>
        )}
      </Load>
    </div>
  );
}

function ActiveAlerts({ alerts }: { alerts: ActiveAlert[] }) {
  const firing = alerts.filter((a) => a.state === 'firing').length;
  return (
    <Panel title="Active alerts" right={<span class="muted">{`${firing} firing, ${alerts.length - firing} pending`}</span>} testid="active-alerts">
      {!alerts.length && <div class="empty-inline">Nothing is firing or pending.</div>}
      {alerts.map((a, i) => (
        <div key={i} class={'alert-card ' + a.state} data-testid="alert" data-state={a.state}>
          <div class="head">
            <Badge state={a.state} />
            <span class="name" data-testid="alert-name">
              {a.labels.alertname ?? a.rule.name}
            </span>
            <LabelChips labels={a.labels} skip={['alertname']} />
            <span class="spacer" />
            <span class="muted small" title={a.activeAt ? new Date(a.activeAt).toLocaleString() : ''}>
              {a.activeAt ? `active since ${new Date(a.activeAt).toLocaleString()} (${fmtAgo(a.activeAt)})` : ''}
            </span>
            <span class="muted small">value {a.value}</span>
            <a href={exploreLink(a.rule.query)} data-testid="alert-explore">
              Explore
            </a>
          </div>
          {Object.keys(a.annotations).length > 0 && (
            <table class="kv ann small">
              <tbody>
                {Object.entries(a.annotations).map(([k, v]) => (
                  <tr key={k}>
                    <td class="k">{k}</td>
                    <td class="v">{v}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      ))}
    </Panel>
  );
}

function GroupPanel({ group: g }: { group: RuleGroup }) {
  const bad = g.rules.filter((r) => r.health === 'err').length;
  return (
    <Panel
      title={
        <>
          {g.name} <span class="muted small mono">{g.file}</span>
        </>
      }
      right={
        <span class="muted small">
          every {g.intervalSec}s · last evaluated {g.lastEvaluation ? fmtAgo(g.lastEvaluation) : 'never'} in {fmtMs(g.evaluationSec * 1000)}
          {bad > 0 && <span class="err-badge">{bad} failing</span>}
        </span>
      }
      testid="rule-group"
    >
      <div class="scroll">
        <table class="grid">
          <thead>
            <tr>
              <th>Rule</th>
              <th>Health</th>
              <th>State</th>
              <th>Expression</th>
              <th>Last evaluation</th>
              <th class="num">Duration</th>
              <th>Last error</th>
            </tr>
          </thead>
          <tbody>
            {g.rules.map((r, i) => (
              <tr key={i} data-testid="rule-row" data-health={r.health}>
                <td>
                  <span class="muted small">{r.type === 'alerting' ? 'alert' : 'record'}</span> <b data-testid="rule-name">{r.name}</b>
                  {r.type === 'alerting' && r.durationSec > 0 && <span class="muted small"> for {fmtMs(r.durationSec * 1000)}</span>}
                </td>
                <td>
                  <Badge state={r.health} testid="rule-health" />
                </td>
                <td>{r.type === 'alerting' ? <Badge state={r.state || 'inactive'} /> : ''}</td>
                <td class="mono small wrap">
                  <a href={exploreLink(r.query)}>{r.query}</a>
                </td>
                <td title={r.lastEvaluation ? new Date(r.lastEvaluation).toLocaleString() : ''}>{r.lastEvaluation ? fmtAgo(r.lastEvaluation) : 'never'}</td>
                <td class="num">{fmtMs(r.evaluationSec * 1000)}</td>
                <td class="errtext small" data-testid="rule-error">
                  {r.lastError}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Panel>
  );
}
