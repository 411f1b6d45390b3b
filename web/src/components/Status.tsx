// Small pieces the Targets and Alerts pages share: state badges and label chips.

import type { Labels } from '../lib/prom';
import '../ops.css';

const TONE: Record<string, string> = { up: 'ok', ok: 'ok', down: 'bad', err: 'bad', firing: 'bad', pending: 'warn', inactive: 'muted', unknown: 'muted', healthy: 'ok', failing: 'bad' };

/** Badge shows a health or alert state, coloured by how much it needs attention. */
export function Badge({ state, testid }: { state: string; testid?: string }) {
  return (
    <span class={'badge ' + (TONE[state] ?? 'muted')} data-testid={testid}>
      {state || 'unknown'}
    </span>
  );
}

/** LabelChips shows name="value" pairs, `skip` left out (e.g. alertname, already the title). */
export function LabelChips({ labels, skip = [] }: { labels: Labels; skip?: string[] }) {
  const keys = Object.keys(labels)
    .filter((k) => !skip.includes(k))
    .sort();
  if (!keys.length) return <span class="muted">–</span>;
  return (
    <span class="chips" data-testid="labels">
      {keys.map((k) => (
        <span key={k} class="lchip mono">
          {k}="{labels[k]}"
        </span>
      ))}
    </span>
  );
}
