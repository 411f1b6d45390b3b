// Human-friendly numbers for a dense UI: at most 3 significant digits, SI units.

export function fmtNum(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a === 0) return '0';
  const units = ['', 'k', 'M', 'G', 'T', 'P'];
  let i = 0;
  let x = v;
  while (Math.abs(x) >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  if (i === 0 && a < 0.01) return a < 1e-6 ? v.toExponential(1) : String(Number(v.toPrecision(2)));
  return trim(x.toPrecision(digits)) + units[i];
}

function trim(s: string): string {
  return s.includes('e') ? s : s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** fmtMs formats a duration given in milliseconds. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms === 0) return '0';
  const a = Math.abs(ms);
  if (a < 0.001) return trim((ms * 1e6).toPrecision(3)) + 'ns';
  if (a < 1) return trim((ms * 1e3).toPrecision(3)) + 'µs';
  if (a < 1000) return trim(ms.toPrecision(3)) + 'ms';
  if (a < 60_000) return trim((ms / 1000).toPrecision(3)) + 's';
  if (a < 3_600_000) return trim((ms / 60_000).toPrecision(3)) + 'm';
  return trim((ms / 3_600_000).toPrecision(3)) + 'h';
}

export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = b;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return trim(x.toPrecision(3)) + ' ' + units[i];
}

export function fmtPct(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (v !== 0 && Math.abs(v) < 0.1) return '<0.1%';
  return trim(v.toPrecision(v >= 100 ? 4 : 3)) + '%';
}

export function fmtRate(v: number): string {
  return Number.isFinite(v) ? fmtNum(v) + '/s' : '–';
}

/** fmtAgo renders a past unix-ms time relative to now. */
export function fmtAgo(ms: number, now = Date.now()): string {
  const d = Math.max(0, now - ms) / 1000;
  if (d < 60) return `${Math.round(d)}s ago`;
  if (d < 3600) return `${Math.round(d / 60)}m ago`;
  if (d < 86400) return `${Math.round(d / 3600)}h ago`;
  return `${Math.round(d / 86400)}d ago`;
}

export function fmtTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** fmtProfileValue formats a flame graph value in the profile type's unit. */
export function fmtProfileValue(v: number, unit: string): string {
  switch (unit) {
    case 'nanoseconds':
      return fmtMs(v / 1e6);
    case 'microseconds':
      return fmtMs(v / 1e3);
    case 'bytes':
      return fmtBytes(v);
    default:
      return fmtNum(v);
  }
}

/** parseDuration reads "15m", "1h", "30s", "2d" into seconds; NaN when invalid. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(s.trim());
  if (!m) return NaN;
  const mult: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  return Number(m[1]) * mult[m[2]];
}

/** promDuration renders seconds as a PromQL duration ("90s" → "1m30s" is not needed: use s). */
export function promDuration(sec: number): string {
  const s = Math.max(1, Math.round(sec));
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}
