/** A small SVG line chart: numeric axes, solid or dashed series, a legend. Enough for two charts. */
const NS = 'http://www.w3.org/2000/svg';

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: { x: number; y: number }[];
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Ticks on the x axis (default: the points' x values). */
  xTicks?: number[];
  /** Place x on a log2 scale (batch sizes 1, 2, 4, 8 fall evenly). */
  logX?: boolean;
  /** A horizontal reference line, e.g. y = 1 for "no speedup". */
  reference?: number;
  yMin?: number;
}

function el<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceStep(range: number): number {
  const raw = range / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? p * 10;
}

const W = 560;
const H = 300;
const M = { left: 52, right: 16, top: 16, bottom: 44 };

export function lineChart(spec: ChartSpec): SVGSVGElement {
  const root = el('svg', { viewBox: `0 0 ${W} ${H + 28}`, class: 'chart', role: 'img', 'aria-label': spec.title });
  root.append(el('title', {}, spec.title));
  const pts = spec.series.flatMap((s) => s.points);
  const xs = spec.xTicks ?? [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
  const fx = (x: number) => (spec.logX ? Math.log2(x) : x);
  const xMin = Math.min(...xs.map(fx), ...pts.map((p) => fx(p.x)));
  const xMax = Math.max(...xs.map(fx), ...pts.map((p) => fx(p.x)));
  const ys = pts.map((p) => p.y).concat(spec.reference ?? []);
  let yMin = spec.yMin ?? Math.min(...ys);
  let yMax = Math.max(...ys);
  if (!(yMax > yMin)) {
    yMax = yMin + 1;
    yMin -= 1;
  }
  const step = niceStep(yMax - yMin);
  yMin = Math.floor(yMin / step) * step;
  yMax = Math.ceil(yMax / step) * step;
  const px = (x: number) =>
    M.left + (xMax > xMin ? ((fx(x) - xMin) / (xMax - xMin)) * (W - M.left - M.right) : (W - M.left - M.right) / 2);
  const py = (y: number) => H - M.bottom - ((y - yMin) / (yMax - yMin)) * (H - M.top - M.bottom);

  for (let y = yMin; y <= yMax + step / 1e6; y += step) {
    root.append(el('line', { x1: M.left, x2: W - M.right, y1: py(y), y2: py(y), class: 'grid' }));
    root.append(
      el('text', { x: M.left - 6, y: py(y) + 4, class: 'axis', 'text-anchor': 'end' }, String(+y.toFixed(3))),
    );
  }
  for (const x of xs) {
    root.append(
      el('text', { x: px(x), y: H - M.bottom + 16, class: 'axis', 'text-anchor': 'middle' }, String(+x.toFixed(2))),
    );
  }
  root.append(el('line', { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: 'frame' }));
  root.append(el('line', { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: 'frame' }));
  if (spec.reference !== undefined) {
    const y = py(spec.reference);
    root.append(el('line', { x1: M.left, x2: W - M.right, y1: y, y2: y, class: 'reference' }));
  }
  root.append(
    el('text', { x: (M.left + W - M.right) / 2, y: H - 8, class: 'axis-title', 'text-anchor': 'middle' }, spec.xLabel),
  );
  const my = (M.top + H - M.bottom) / 2;
  root.append(
    el(
      'text',
      { x: 14, y: my, class: 'axis-title', 'text-anchor': 'middle', transform: `rotate(-90 14 ${my})` },
      spec.yLabel,
    ),
  );

  for (const s of spec.series) {
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    if (sorted.length === 0) continue;
    const d = sorted.map((p, i) => `${i ? 'L' : 'M'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
    const g = el('g', { class: 'series', 'data-series': s.name });
    g.append(
      el('path', {
        d,
        fill: 'none',
        stroke: s.color,
        'stroke-width': 2,
        'stroke-dasharray': s.dashed ? '6 4' : 'none',
      }),
    );
    for (const p of sorted) {
      const dot = el('circle', {
        cx: px(p.x),
        cy: py(p.y),
        r: s.dashed ? 2.5 : 3.5,
        fill: s.dashed ? 'var(--panel, #fff)' : s.color,
        stroke: s.color,
      });
      dot.append(el('title', {}, `${s.name}: ${p.y.toFixed(3)} at ${p.x}`));
      g.append(dot);
    }
    root.append(g);
  }

  // Legend along the bottom, wrapping by count.
  const perRow = 3;
  spec.series.forEach((s, i) => {
    const x = M.left + (i % perRow) * 170;
    const y = H + 4 + Math.floor(i / perRow) * 14;
    root.append(
      el('line', {
        x1: x,
        x2: x + 22,
        y1: y,
        y2: y,
        stroke: s.color,
        'stroke-width': 2,
        'stroke-dasharray': s.dashed ? '6 4' : 'none',
      }),
    );
    root.append(el('text', { x: x + 28, y: y + 4, class: 'legend' }, s.name));
  });
  const rows = Math.ceil(spec.series.length / perRow);
  root.setAttribute('viewBox', `0 0 ${W} ${H + 8 + rows * 14}`);
  return root;
}
