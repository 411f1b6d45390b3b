import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef } from 'preact/hooks';
import { align, type Series } from '../lib/prom';
import { link, navigate } from '../router';

export const PALETTE = ['#5b8ff9', '#f6903d', '#5ad8a6', '#e8684a', '#9270ca', '#f7c122', '#6dc8ec', '#ff9da7', '#269a99', '#ff99c3', '#a6a6a6', '#1e9493'];

export interface ChartSeries {
  name: string;
  series: Series;
  color?: string;
  fill?: boolean;
}

export interface ExemplarPoint {
  t: number; // seconds
  v: number; // in the chart's unit
  traceId: string;
  label?: string;
}

interface Props {
  series: ChartSeries[];
  height?: number;
  fmt?: (v: number) => string;
  exemplars?: ExemplarPoint[];
  onExemplar?: (e: ExemplarPoint) => void;
  legend?: boolean;
  yMin?: number;
  yMax?: number;
  stacked?: boolean;
  onZoom?: (startSec: number, endSec: number) => void;
  range?: [number, number]; // x range in seconds, so empty charts still show the window
}

const cssVar = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';

/** Chart draws time series with uPlot, plus optional clickable exemplar diamonds. */
export function Chart(p: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const props = useRef(p);
  props.current = p;
  // Rebuild the plot only when the data itself changes, not on every parent render
  // (callers often map their series into fresh arrays).
  const version = useRef(0);
  const prev = useRef<Series[]>([]);
  const cur = p.series.map((s) => s.series);
  if (cur.length !== prev.current.length || cur.some((s, i) => s !== prev.current[i])) {
    prev.current = cur;
    version.current++;
  }

  useEffect(() => {
    const el = box.current!;
    const { x, ys } = align(p.series.map((s) => s.series));
    const fmt = p.fmt ?? ((v: number) => String(v));
    const axisColor = cssVar('--muted');
    const gridColor = cssVar('--grid');
    const exemplarPlugin: uPlot.Plugin = {
      hooks: {
        draw: (u) => {
          const ex = props.current.exemplars;
          if (!ex?.length) return;
          const ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = cssVar('--accent');
          ctx.strokeStyle = cssVar('--bg');
          ctx.lineWidth = 1;
          const r = 4 * devicePixelRatio;
          // Drawn exemplars in CSS pixels of the plot area, for tests and tooling.
          const shown: { x: number; y: number; traceId: string }[] = [];
          for (const e of ex) {
            const cx = u.valToPos(e.t, 'x', true);
            const cy = u.valToPos(e.v, 'y', true);
            if (cx < u.bbox.left || cx > u.bbox.left + u.bbox.width || cy < u.bbox.top || cy > u.bbox.top + u.bbox.height) continue;
            ctx.beginPath();
            ctx.moveTo(cx, cy - r);
            ctx.lineTo(cx + r, cy);
            ctx.lineTo(cx, cy + r);
            ctx.lineTo(cx - r, cy);
            ctx.closePath();
            ctx.fill();
            ctx.stroke();
            if (shown.length < 50) shown.push({ x: Math.round(u.valToPos(e.t, 'x')), y: Math.round(u.valToPos(e.v, 'y')), traceId: e.traceId });
          }
          ctx.restore();
          u.root.dataset.exemplars = JSON.stringify(shown);
        },
        ready: (u) => {
          // Exemplars are found by distance in CSS pixels from the pointer.
          const nearest = (ev: MouseEvent): ExemplarPoint | undefined => {
            const ex = props.current.exemplars ?? [];
            const rect = u.over.getBoundingClientRect();
            const mx = ev.clientX - rect.left;
            const my = ev.clientY - rect.top;
            let best: ExemplarPoint | undefined;
            let bd = 64;
            for (const e of ex) {
              const dx = u.valToPos(e.t, 'x') - mx;
              const dy = u.valToPos(e.v, 'y') - my;
              const d = dx * dx + dy * dy;
              if (d < bd) {
                bd = d;
                best = e;
              }
            }
            return best;
          };
          u.over.addEventListener('mousemove', (ev) => {
            const e = nearest(ev);
            u.over.style.cursor = e ? 'pointer' : '';
            u.over.title = e ? `exemplar trace ${e.traceId}${e.label ? '\n' + e.label : ''}\nclick to open` : '';
          });
          u.over.addEventListener('click', (ev) => {
            const e = nearest(ev);
            if (!e) return;
            ev.stopPropagation();
            if (props.current.onExemplar) props.current.onExemplar(e);
          });
        },
      },
    };
    const opts: uPlot.Options = {
      width: Math.max(100, el.clientWidth),
      height: p.height ?? 180,
      padding: [8, 8, 0, 0],
      legend: { show: p.legend !== false, live: true },
      cursor: { drag: { x: !!p.onZoom, y: false }, points: { size: 6 } },
      select: { show: !!p.onZoom, left: 0, top: 0, width: 0, height: 0 },
      scales: {
        x: { time: true, range: p.range ? () => p.range! : undefined },
        y: {
          range: (_u, min, max) => {
            // Exemplars above every quantile line must still be on the chart.
            const exMax = Math.max(0, ...(props.current.exemplars ?? []).map((e) => e.v).filter(Number.isFinite));
            const top = Math.max(max ?? 0, exMax);
            return [p.yMin ?? Math.min(0, min ?? 0), p.yMax ?? (top > 0 ? top * 1.1 : 1)];
          },
        },
      },
      axes: [
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor }, font: '11px system-ui' },
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { show: false }, values: (_u, vals) => vals.map(fmt), size: 52, font: '11px system-ui' },
      ],
      series: [
        {},
        ...p.series.map((s, i) => {
          const c = s.color ?? PALETTE[i % PALETTE.length];
          return {
            label: s.name,
            stroke: c,
            width: 1.5,
            fill: s.fill ? c + '22' : undefined,
            // uPlot shows points only where data is sparse enough, so short bursts stay visible.
            points: { size: 4 },
            spanGaps: false,
            value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '–' : fmt(v)),
          };
        }),
      ],
      hooks: {
        setSelect: [
          (u) => {
            if (!props.current.onZoom || u.select.width < 5) return;
            const a = u.posToVal(u.select.left, 'x');
            const b = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            props.current.onZoom(a, b);
          },
        ],
      },
      plugins: [exemplarPlugin],
    };
    const u = new uPlot(opts, [x, ...ys] as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - u.width) > 1) u.setSize({ width: w, height: u.height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Re-create on any data change; uPlot creation is cheap for dashboard-sized data.
  }, [version.current, p.exemplars, p.height, p.range?.[0], p.range?.[1]]);

  return <div class="chart" ref={box} />;
}

/** openTrace is the default exemplar action: the trace view of that trace. */
export function openTrace(id: string) {
  navigate(link('/traces', { trace: id }));
}

/** Sparkline is a dependency-free SVG line for table cells. */
export function Sparkline({ values, color = 'var(--accent)', width = 96, height = 22 }: { values: number[]; color?: string; width?: number; height?: number }) {
  const vs = values.filter((v) => Number.isFinite(v));
  if (vs.length === 0) return <svg class="spark" width={width} height={height} />;
  const max = Math.max(...vs);
  const min = Math.min(0, ...vs);
  const span = max - min || 1;
  const pts: string[] = [];
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) return;
    const x = (i / Math.max(1, values.length - 1)) * (width - 4) + 2;
    const y = height - 1 - ((v - min) / span) * (height - 2);
    pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  });
  // Too few points for a line (a burst of traffic just arrived): draw dots instead.
  const sparse = vs.length < 3;
  return (
    <svg class="spark" width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
      {sparse ? (
        pts.map((p) => {
          const [x, y] = p.split(',');
          return <circle key={p} cx={x} cy={y} r="2" fill={color} />;
        })
      ) : (
        <polyline points={pts.join(' ')} fill="none" stroke={color} stroke-width="1.5" stroke-linejoin="round" />
      )}
    </svg>
  );
}
