import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { functionTable, sandwich, type Flamegraph, type FlameNode } from '../lib/flamegraph';
import { fmtPct, fmtProfileValue } from '../lib/format';

const ROW = 18;

/** hue derives a stable colour from a frame's package or file, as profilers do. */
export function hueKey(name: string): string {
  const n = name.replace(/^[(*]+/, '');
  const slash = n.lastIndexOf('/', n.indexOf('(') >= 0 ? n.indexOf('(') : n.length);
  const rest = n.slice(slash + 1);
  const m = /^[^.:]*(\.(js|ts|mjs|cjs|py|rb|php))?/.exec(rest);
  return n.slice(0, slash + 1) + (m ? m[0] : rest);
}

function hue(name: string): number {
  const key = hueKey(name);
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
  return Math.abs(h) % 360;
}

const widthOf = (_fg: Flamegraph, n: FlameNode) => n.width ?? n.total;

function diffColor(n: FlameNode, dark: boolean): string {
  const base = n.baseTotal ?? 0;
  const d = (n.total - base) / Math.max(n.total, base, 1);
  const l = dark ? 40 : 62;
  if (Math.abs(d) < 0.05) return `hsl(0,0%,${dark ? 35 : 72}%)`;
  const s = Math.round(35 + Math.abs(d) * 55);
  return d > 0 ? `hsl(0,${s}%,${l}%)` : `hsl(130,${s}%,${l - 6}%)`;
}

interface Props {
  fg: Flamegraph;
  unit: string;
  search?: string;
  height?: number; // max height in px before scrolling
  title?: string;
}

interface Hover {
  idx: number;
  x: number;
  y: number;
}

/** FlameCanvas draws the graph on a canvas; click zooms into a frame, click the root to reset. */
export function FlameCanvas({ fg, unit, search = '', height }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const wrap = useRef<HTMLDivElement>(null);
  const [zoom, setZoom] = useState(0); // node index of the zoomed frame
  const [hover, setHover] = useState<Hover | null>(null);
  const [width, setWidth] = useState(800);
  useEffect(() => setZoom(0), [fg]);

  useEffect(() => {
    const el = wrap.current!;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    setWidth(el.clientWidth);
    return () => ro.disconnect();
  }, []);

  const levels = fg.levelStart.length;
  const z = fg.nodes[zoom] ?? fg.nodes[0];
  const dark = document.documentElement.dataset.theme === 'dark';
  const needle = search.toLowerCase();

  // rects in CSS px, recomputed on draw; used for hit tests
  const rects = useRef<{ idx: number; x: number; y: number; w: number }[]>([]);

  useEffect(() => {
    const c = canvas.current;
    if (!c || !z) return;
    const dpr = devicePixelRatio || 1;
    const H = levels * ROW;
    c.width = Math.floor(width * dpr);
    c.height = Math.floor(H * dpr);
    c.style.width = width + 'px';
    c.style.height = H + 'px';
    const ctx = c.getContext('2d')!;
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, width, H);
    ctx.font = '12px ui-monospace, SFMono-Regular, Menlo, monospace';
    ctx.textBaseline = 'middle';
    const zx = z.x;
    const zw = widthOf(fg, z) || 1;
    const scale = width / zw;
    const out: typeof rects.current = [];
    const labels: string[] = [];
    for (let i = 0; i < fg.nodes.length; i++) {
      const n = fg.nodes[i];
      const nw = widthOf(fg, n);
      let x = (n.x - zx) * scale;
      let w = nw * scale;
      if (n.level < z.level) {
        // ancestors of the zoomed frame span the whole width; others are hidden
        if (n.x > zx || n.x + nw < zx + zw) continue;
        x = 0;
        w = width;
      }
      if (x + w <= 0 || x >= width || w < 0.5) continue;
      if (x < 0) {
        w += x;
        x = 0;
      }
      w = Math.min(w, width - x);
      const y = n.level * ROW;
      const name = fg.names[n.name] ?? '?';
      const match = !needle || name.toLowerCase().includes(needle);
      let color: string;
      if (fg.diff) color = diffColor(n, dark);
      else if (n.level === 0) color = dark ? 'hsl(220,10%,35%)' : 'hsl(220,10%,75%)';
      else color = `hsl(${hue(name)},${dark ? 45 : 65}%,${dark ? 38 : 68}%)`;
      if (!match) color = dark ? 'hsl(0,0%,22%)' : 'hsl(0,0%,88%)';
      ctx.fillStyle = color;
      ctx.fillRect(x, y, Math.max(w - 0.5, 0.5), ROW - 1);
      if (needle && match && n.level > 0) {
        ctx.strokeStyle = dark ? '#fff' : '#000';
        ctx.strokeRect(x + 0.5, y + 0.5, w - 1.5, ROW - 2);
      }
      if (w > 24) {
        ctx.fillStyle = match ? (dark ? '#f2f2f2' : '#111') : dark ? '#777' : '#999';
        const label = n.level === 0 ? `total · ${fmtProfileValue(fg.total, unit)}` : name;
        ctx.save();
        ctx.beginPath();
        ctx.rect(x, y, w - 3, ROW);
        ctx.clip();
        ctx.fillText(label, x + 3, y + ROW / 2);
        ctx.restore();
        if (labels.length < 500) labels.push(label);
      }
      out.push({ idx: i, x, y, w });
    }
    rects.current = out;
    // The drawn labels, for tests and accessibility tools that cannot read pixels.
    c.dataset.labels = labels.join('\n');
    c.setAttribute('aria-label', 'flame graph: ' + labels.slice(0, 20).join(', '));
  }, [fg, zoom, width, needle, dark, levels]);

  const hit = (ev: MouseEvent): number => {
    const r = canvas.current!.getBoundingClientRect();
    const mx = ev.clientX - r.left;
    const my = ev.clientY - r.top;
    for (const rc of rects.current) if (mx >= rc.x && mx < rc.x + rc.w && my >= rc.y && my < rc.y + ROW) return rc.idx;
    return -1;
  };

  const hn = hover ? fg.nodes[hover.idx] : undefined;
  return (
    <div class="flame" ref={wrap} style={height ? { maxHeight: height + 'px', overflowY: 'auto' } : undefined}>
      {zoom > 0 && z && (
        <div class="zoombar">
          zoomed into <span class="mono">{fg.names[z.name]}</span> ({fmtPct((widthOf(fg, z) / (fg.nodes[0] ? widthOf(fg, fg.nodes[0]) : 1)) * 100)}){' '}
          <button class="link" onClick={() => setZoom(0)}>
            reset zoom
          </button>
        </div>
      )}
      <canvas
        ref={canvas}
        data-testid="flamegraph"
        onClick={(ev) => {
          const i = hit(ev as MouseEvent);
          if (i >= 0) setZoom(fg.nodes[i].level === 0 ? 0 : i);
        }}
        onMouseMove={(ev) => {
          const i = hit(ev as MouseEvent);
          setHover(i >= 0 ? { idx: i, x: (ev as MouseEvent).offsetX, y: (ev as MouseEvent).offsetY } : null);
        }}
        onMouseLeave={() => setHover(null)}
      />
      {hn && hover && (
        <div class="tip" style={{ left: Math.min(hover.x + 12, width - 320) + 'px', top: hover.y + 16 + 'px' }}>
          <div class="tip-title">{fg.names[hn.name]}</div>
          <div>
            total {fmtProfileValue(hn.total, unit)} ({fmtPct((hn.total / (fg.total || 1)) * 100)})
          </div>
          <div>
            self {fmtProfileValue(hn.self, unit)} ({fmtPct((hn.self / (fg.total || 1)) * 100)})
          </div>
          {fg.diff && (
            <div>
              baseline {fmtPct(((hn.baseTotal ?? 0) / (fg.total || 1)) * 100)} → {fmtPct((hn.total / (fg.total || 1)) * 100)}
            </div>
          )}
        </div>
      )}
    </div>
  );
}

/** FunctionTable lists functions by self time; clicking a row selects it for the sandwich. */
export function FunctionTable({ fg, unit, selected, onSelect, search = '' }: { fg: Flamegraph; unit: string; selected?: string; onSelect: (name: string) => void; search?: string }) {
  const rows = useMemo(() => functionTable(fg), [fg]);
  const needle = search.toLowerCase();
  const shown = rows.filter((r) => !needle || r.name.toLowerCase().includes(needle)).slice(0, 300);
  const total = fg.total || 1;
  return (
    <div class="ftable scroll">
      <table class="grid">
        <thead>
          <tr>
            <th>Function</th>
            <th class="num">Self</th>
            <th class="num">Total</th>
            {fg.diff && <th class="num" title="change of the self share against the baseline, in percentage points">Δ self</th>}
            {fg.diff && <th class="num" title="change of the total share against the baseline, in percentage points">Δ total</th>}
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.name} class={r.name === selected ? 'sel' : ''} onClick={() => onSelect(r.name)}>
              <td class="mono ellipsis" title={r.name}>
                {shortName(r.name)}
              </td>
              <td class="num bar-cell">
                <span class="bar" style={{ width: (r.self / total) * 100 + '%' }} />
                {fmtProfileValue(r.self, unit)}
              </td>
              <td class="num bar-cell">
                <span class="bar alt" style={{ width: (r.total / total) * 100 + '%' }} />
                {fmtProfileValue(r.total, unit)}
              </td>
              {fg.diff && <DeltaCell now={r.self} base={r.baseSelf ?? 0} total={total} />}
              {fg.diff && <DeltaCell now={r.total} base={r.baseTotal ?? 0} total={total} testid="delta-total" />}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function DeltaCell({ now, base, total, testid }: { now: number; base: number; total: number; testid?: string }) {
  const d = ((now - base) / total) * 100;
  const cls = Math.abs(d) < 0.5 ? 'muted' : d > 0 ? 'bad' : 'good';
  return <td class={'num ' + cls} data-testid={testid}>{(d > 0 ? '+' : '') + d.toFixed(1)} pp</td>;
}

/** shortName drops a Go-style import path ("github.com/a/b/pkg.Func" → "pkg.Func"). */
export function shortName(name: string): string {
  const paren = name.indexOf('(');
  const head = paren >= 0 ? name.slice(0, paren) : name;
  const slash = head.lastIndexOf('/');
  return slash >= 0 && slash < head.length - 1 ? name.slice(slash + 1) : name;
}

export type FlameView = 'flame' | 'table' | 'both' | 'sandwich';

/** FlameGraph is the full widget: search box, view switch, canvas, table and sandwich. */
export function FlameGraph({ fg, unit, compact, view: initialView = 'flame' }: { fg: Flamegraph; unit: string; compact?: boolean; view?: FlameView }) {
  const [search, setSearch] = useState('');
  const [view, setView] = useState<FlameView>(initialView);
  const [fn, setFn] = useState('');
  const sw = useMemo(() => (fn && view === 'sandwich' ? sandwich(fg, fn) : null), [fg, fn, view]);
  if (!fg.nodes.length || fg.total === 0) return <div class="empty-inline">No profile samples in this time range.</div>;
  return (
    <div class="flamegraph">
      <div class="toolbar">
        <input class="search" placeholder="Search frames…" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        {!compact && (
          <div class="seg">
            {(['flame', 'both', 'table', 'sandwich'] as FlameView[]).map((v) => (
              <button key={v} class={view === v ? 'on' : ''} onClick={() => setView(v)}>
                {v === 'both' ? 'flame + table' : v}
              </button>
            ))}
          </div>
        )}
        {fg.diff && (
          <span class="legend-diff">
            <i class="sw red" /> more in comparison <i class="sw green" /> less
          </span>
        )}
      </div>
      {fg.diff && fg.diff.baseTotal === 0 && <div class="banner">The baseline range has no samples, so every frame shows as new. Pick ranges that both have data.</div>}
      {fg.diff && fg.diff.compTotal === 0 && <div class="banner">The comparison range has no samples.</div>}
      {view === 'sandwich' ? (
        <div class="split">
          <FunctionTable fg={fg} unit={unit} selected={fn} onSelect={setFn} search={search} />
          <div>
            {!sw && <div class="empty-inline">Pick a function in the table to see who calls it and what it calls.</div>}
            {sw && (
              <>
                <h4>Callers of {fn}</h4>
                <FlameCanvas fg={sw.callers} unit={unit} />
                <h4>Callees of {fn}</h4>
                <FlameCanvas fg={sw.callees} unit={unit} />
              </>
            )}
          </div>
        </div>
      ) : view === 'table' ? (
        <FunctionTable fg={fg} unit={unit} selected={fn} onSelect={(n) => setSearch(n)} search={search} />
      ) : view === 'both' ? (
        <div class={'split' + (fg.diff ? ' even' : '')}>
          <FunctionTable fg={fg} unit={unit} selected={search} onSelect={(n) => setSearch(n === search ? '' : n)} search={search} />
          <FlameCanvas fg={fg} unit={unit} search={search} />
        </div>
      ) : (
        <FlameCanvas fg={fg} unit={unit} search={search} height={compact ? 360 : undefined} />
      )}
    </div>
  );
}
