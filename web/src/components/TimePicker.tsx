import { useApp } from '../hooks';
import { setQuery } from '../router';

const RANGES = ['5m', '15m', '30m', '1h', '3h', '6h', '12h', '24h', '2d', '7d'];
const REFRESH = ['off', '5s', '15s', '30s', '1m', '5m'];

export function TimePicker({ refresh, onRefresh }: { refresh: string; onRefresh: () => void }) {
  const { range } = useApp();
  const q = new URLSearchParams(location.search);
  const from = q.get('from') ?? '15m';
  const absolute = !RANGES.includes(from) || (q.get('to') ?? 'now') !== 'now';
  return (
    <div class="timepicker">
      {absolute && (
        <button class="chip" title="back to a relative range" onClick={() => setQuery({ from: '15m', to: null })}>
          {range.label} ✕
        </button>
      )}
      <select data-testid="range" value={absolute ? '' : from} onChange={(e) => setQuery({ from: (e.target as HTMLSelectElement).value, to: null })}>
        {absolute && <option value="">custom</option>}
        {RANGES.map((r) => (
          <option key={r} value={r}>
            Last {r}
          </option>
        ))}
      </select>
      <button class="icon" title="refresh now" onClick={onRefresh}>
        ⟳
      </button>
      <select title="auto-refresh" value={refresh} onChange={(e) => setQuery({ refresh: (e.target as HTMLSelectElement).value === 'off' ? null : (e.target as HTMLSelectElement).value }, true)}>
        {REFRESH.map((r) => (
          <option key={r} value={r}>
            {r === 'off' ? 'Auto-refresh off' : `Every ${r}`}
          </option>
        ))}
      </select>
    </div>
  );
}
