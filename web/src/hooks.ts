import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { TimeRange } from './router';

export interface AppCtx {
  range: TimeRange;
  tick: number; // increments on every auto-refresh and manual refresh
}

export const Ctx = createContext<AppCtx>({ range: { start: 0, end: 0, label: '', relative: true }, tick: 0 });

export const useApp = () => useContext(Ctx);

export interface Async<T> {
  data?: T;
  error?: string;
  loading: boolean;
}

/**
 * useAsync runs fn whenever deps change, aborting the previous call. On refresh the old data
 * stays on screen until the new data arrives, so panels do not flicker.
 */
export function useAsync<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<Async<T>>({ loading: true });
  const gen = useRef(0);
  useEffect(() => {
    const ctl = new AbortController();
    const my = ++gen.current;
    setState((s) => ({ ...s, loading: true }));
    fn(ctl.signal).then(
      (data) => my === gen.current && setState({ data, loading: false }),
      (err) => {
        if (ctl.signal.aborted || my !== gen.current) return;
        setState({ error: err instanceof Error ? err.message : String(err), loading: false });
      },
    );
    return () => ctl.abort();
  }, deps);
  return state;
}

export function useLocalStorage(key: string, initial: string): [string, (v: string) => void] {
  const [v, setV] = useState(() => localStorage.getItem(key) ?? initial);
  return [
    v,
    (nv: string) => {
      localStorage.setItem(key, nv);
      setV(nv);
    },
  ];
}
