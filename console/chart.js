// @ts-check
/**
 * A small line chart drawn as SVG (no library: four charts of a few hundred points each need
 * only polylines). Colours come from classes in console.css (the CSP forbids inline styles).
 * A `null` value is a gap (e.g. no webhook attempt in that interval: no success rate).
 */
import { h, replace } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 600;
const H = 140;
const MIN_SPAN_MS = 20_000;

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 */
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/**
 * @typedef {{ name: string, cls: string, points: Array<[number, number | null]> }} Series
 * @typedef {{ title: string, unit?: string, format: (v: number) => string, max?: number, windowMs: number }} ChartOptions
 */

/**
 * A chart whose `update(series)` redraws it; `el` goes into the page.
 * @param {string} id
 * @param {ChartOptions} opts
 */
export function lineChart(id, opts) {
  const legend = h('div', { class: 'legend' });
  const top = h('span', { class: 'axis top' });
  const bottom = h('span', { class: 'axis bottom' }, opts.format(0));
  const spanLabel = h('div', { class: 'axis-x' });
  const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'plot', role: 'img', 'aria-label': opts.title });
  const el = h('figure', { class: 'chart', id }, h('figcaption', {}, h('span', { class: 'title' }, opts.title), legend), h('div', { class: 'plot-box' }, plot, top, bottom), spanLabel);

  /** @param {Series[]} series */
  const update = (series) => {
    // The x axis spans the window, or less while the data is younger than it (a fresh page fills
    // the width instead of drawing a dot at the right edge).
    const now = Date.now();
    let first = now;
    for (const s of series) if (s.points.length && s.points[0][0] < first) first = s.points[0][0];
    const from = Math.max(now - opts.windowMs, Math.min(first, now - MIN_SPAN_MS));
    const span = now - from;
    let max = opts.max ?? 0;
    if (opts.max === undefined) {
      for (const s of series) for (const [, v] of s.points) if (v !== null && v > max) max = v;
      max = niceCeil(max);
    }
    top.textContent = opts.format(max);
    spanLabel.textContent = `last ${span >= 90_000 ? `${Math.round(span / 60_000)} min` : `${Math.round(span / 1000)} s`}`;
    plot.replaceChildren(svg('line', { x1: 0, y1: H / 2, x2: W, y2: H / 2, class: 'grid' }), svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'grid' }));
    for (const s of series) {
      // One polyline per run of values (a null breaks the line).
      /** @type {string[]} */
      let run = [];
      const flush = () => {
        if (run.length === 1) run.push(run[0].replace(/^([\d.]+)/, (x) => String(Math.min(W, Number(x) + 2))));
        if (run.length) plot.append(svg('polyline', { points: run.join(' '), class: `line ${s.cls}`, 'vector-effect': 'non-scaling-stroke' }));
        run = [];
      };
      for (const [t, v] of s.points) {
        if (t < from) continue;
        if (v === null) {
          flush();
          continue;
        }
        const x = ((t - from) / span) * W;
        const y = H - (max > 0 ? (v / max) * (H - 4) : 0) - 1;
        run.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      }
      flush();
    }
    replace(
      legend,
      series.map((s) => {
        const last = [...s.points].reverse().find(([, v]) => v !== null);
        return h('span', { class: `key ${s.cls}` }, h('span', { class: 'swatch' }), `${s.name} `, h('strong', {}, last ? opts.format(/** @type {number} */ (last[1])) : '—'));
      }),
    );
  };
  return { el, update };
}

/**
 * 1, 2, 5 × 10^n at or above v (at least 1), so axis labels stay round.
 * @param {number} v
 */
export function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
