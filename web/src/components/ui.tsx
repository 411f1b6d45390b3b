import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Async } from '../hooks';

export function Panel({ title, right, children, class: cls = '', testid }: { title?: ComponentChildren; right?: ComponentChildren; children: ComponentChildren; class?: string; testid?: string }) {
  return (
    <section class={'panel ' + cls} data-testid={testid}>
      {(title || right) && (
        <header>
          <h2>{title}</h2>
          <div class="panel-right">{right}</div>
        </header>
      )}
      <div class="panel-body">{children}</div>
    </section>
  );
}

/** Load renders loading, error or the data of an async state. */
export function Load<T>({ state, children, empty }: { state: Async<T>; children: (d: T) => ComponentChildren; empty?: (d: T) => boolean | ComponentChildren }) {
  if (state.error && state.data === undefined) {
    // A backend switched off in the config is a fact to state, not an error to shout.
    if (state.error.includes('backend is not enabled')) return <div class="empty-inline">{state.error.replace(/^[^:]*: /, '')}.</div>;
    return <div class="error-box">{state.error}</div>;
  }
  if (state.data === undefined) return <div class="loading">Loading…</div>;
  const e = empty?.(state.data);
  if (e) return typeof e === 'boolean' ? <div class="empty-inline">No data in this time range.</div> : <>{e}</>;
  return <>{children(state.data)}</>;
}

export function Stat({ label, value, sub, tone, children, testid }: { label: string; value: string; sub?: string; tone?: 'ok' | 'warn' | 'bad'; children?: ComponentChildren; testid?: string }) {
  return (
    <div class={'stat' + (tone ? ' ' + tone : '')} data-testid={testid}>
      <div class="stat-label">{label}</div>
      <div class="stat-value">{value}</div>
      {sub && <div class="stat-sub">{sub}</div>}
      {children}
    </div>
  );
}

export function Code({ children }: { children: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="code">
      <pre>{children}</pre>
      <button
        class="copy"
        onClick={() => {
          navigator.clipboard?.writeText(children).then(() => {
            setCopied(true);
            setTimeout(() => setCopied(false), 1200);
          });
        }}
      >
        {copied ? 'copied' : 'copy'}
      </button>
    </div>
  );
}

export function Select({ value, options, onChange, label, testid }: { value: string; options: { value: string; label?: string }[]; onChange: (v: string) => void; label?: string; testid?: string }) {
  return (
    <label class="select">
      {label && <span>{label}</span>}
      <select value={value} data-testid={testid} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label ?? o.value}
          </option>
        ))}
      </select>
    </label>
  );
}
