// uPlot charts (window.uPlot, the vendored IIFE build): uses over time, success rate over time, the
// inference-time distribution with its p50 and p95, tokens per second of each benchmark, and the memory
// plan per context. uPlot is loaded the
// first time a chart is drawn, so the overview never waits for it.

import { cssVar, fill, h } from './dom.js';
import { seconds } from './format.js';

const HEIGHT = 170;
const UPLOT = '/static/vendor/uplot/uPlot.iife.min.js';
const UPLOT_CSS = '/static/vendor/uplot/uPlot.min.css';
let loading = null;

/** Resolves once window.uPlot exists (its script and stylesheet added to the page once). */
export function uplotReady() {
  if (window.uPlot) return Promise.resolve();
  loading ??= new Promise((resolve, reject) => {
    document.head.append(h('link', { rel: 'stylesheet', href: UPLOT_CSS }));
    const script = h('script', { src: UPLOT });
    script.addEventListener('load', resolve);
    script.addEventListener('error', () => { loading = null; reject(new Error('could not load the chart library')); });
    document.head.append(script);
  });
  return loading;
}

function theme() {
  return {
    fg: cssVar('--fg') || '#1f2328',
    muted: cssVar('--muted') || '#59636e',
    grid: cssVar('--grid') || '#d1d9e0',
    accent: cssVar('--accent') || '#0969da',
    danger: cssVar('--danger') || '#cf222e',
    ok: cssVar('--ok') || '#1a7f37',
    warn: cssVar('--warn') || '#9a6700',
  };
}

function axes(t, xLabel, yLabel) {
  const axis = (label) => ({ stroke: t.muted, grid: { stroke: t.grid, width: 1 }, ticks: { stroke: t.grid }, label, labelSize: 18 });
  return [axis(xLabel), axis(yLabel)];
}

function plot(container, options, data) {
  container._plot?.destroy();
  const width = Math.max(240, Math.floor(container.getBoundingClientRect().width || 320));
  container._plot = new window.uPlot({ width, height: HEIGHT, legend: { live: false }, ...options }, data, container);
  return container._plot;
}

/** The x range of a bucket series: whole windows, also when there is only one. */
function windows(buckets) {
  const w = buckets.width_s;
  const first = buckets.start[0];
  const last = buckets.start[buckets.start.length - 1];
  return { time: true, range: [first - w / 2, last + w / 2] };
}

function bars(ratio = 0.8) {
  return window.uPlot.paths.bars({ size: [ratio, 64] });
}

/** A vertical line at x = value, labelled, drawn after the series. */
function marker(value, label, colour) {
  return (u) => {
    if (value === null || value === undefined) return;
    const x = u.valToPos(value, 'x', true);
    const { top, height } = u.bbox;
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
    ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.fillText(label, x + 4 * devicePixelRatio, top + 14 * devicePixelRatio);
    ctx.restore();
  };
}

export function usesChart(container, buckets) {
  const t = theme();
  return plot(
    container,
    {
      title: 'Uses over time',
      series: [
        {},
        { label: 'uses', fill: t.accent, stroke: t.accent, paths: bars(), points: { show: false } },
        { label: 'failures', fill: t.danger, stroke: t.danger, paths: bars(0.5), points: { show: false } },
      ],
      axes: axes(t, null, 'uses'),
      scales: { x: windows(buckets), y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    },
    [buckets.start, buckets.uses, buckets.failures],
  );
}

export function successChart(container, buckets) {
  const t = theme();
  const rate = buckets.success_rate.map((r) => (r === null ? null : 100 * r));
  return plot(
    container,
    {
      title: 'Success rate',
      series: [{}, { label: 'success %', stroke: t.ok, width: 2, points: { show: true, size: 6 }, spanGaps: true }],
      axes: axes(t, null, '%'),
      scales: { x: windows(buckets), y: { range: [0, 100] } },
    },
    [buckets.start, rate],
  );
}

export function distributionChart(container, history) {
  const t = theme();
  const { edges_s: edges, counts } = history.histogram;
  const centres = counts.map((_, i) => (edges[i] + edges[i + 1]) / 2);
  return plot(
    container,
    {
      title: 'Inference time distribution',
      series: [{ label: 'seconds', value: (u, v) => seconds(v) }, { label: 'uses', fill: t.accent, stroke: t.accent, paths: bars(0.9), points: { show: false } }],
      axes: axes(t, 'seconds', 'uses'),
      scales: { x: { time: false, range: [edges[0], edges[edges.length - 1]] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      hooks: { draw: [marker(history.p50_s, 'p50', t.fg), marker(history.p95_s, 'p95', t.warn)] },
    },
    [centres, counts],
  );
}

/** Generation speed of each benchmark of the model, as Ollama timed it: runs = [[epoch s, tok/s], ...]. */
export function benchChart(container, runs) {
  const t = theme();
  const times = runs.map((r) => r[0]);
  const pad = times.length > 1 ? 0 : 3600;
  return plot(
    container,
    {
      title: 'Tokens/s, each benchmark',
      series: [{}, { label: 'tok/s', stroke: t.accent, width: 2, points: { show: true, size: 7 } }],
      axes: axes(t, null, 'tok/s'),
      scales: {
        x: { time: true, range: [Math.min(...times) - pad, Math.max(...times) + pad] },
        y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] },
      },
    },
    [times, runs.map((r) => r[1])],
  );
}

/** Contexts double from one step to the next: a log scale spanning exactly the planned ones. */
function contextScale(contexts) {
  const low = Math.min(...contexts);
  const high = Math.max(...contexts);
  const log = low > 0;
  const range = low === high ? [low / 2, high * 2] : [low, high];
  return { time: false, distr: log ? 3 : 1, range };
}

/** Ticks at the planned contexts themselves ("2k", "8k", "128k"). */
function contextAxes(t, contexts) {
  const [x, y] = axes(t, 'context (tokens)', 'GiB');
  const label = (v) => (v === null ? '' : v >= 1024 && v % 1024 === 0 ? `${v / 1024}k` : v.toLocaleString('en-US'));
  return [{ ...x, splits: () => contexts, filter: (u, ticks) => ticks, values: (u, ticks) => ticks.map(label) }, y];
}

export function planChart(container, plan, availableGb) {
  const t = theme();
  const contexts = plan.map((p) => p.context);
  const totals = plan.map((p) => p.total_gib);
  const available = plan.map(() => availableGb);
  return plot(
    container,
    {
      title: 'Memory per context',
      series: [
        { label: 'context', value: (u, v) => (v === null ? '' : v.toLocaleString('en-US')) },
        { label: 'needs GiB', stroke: t.accent, width: 2, points: { show: true, size: 6 } },
        { label: 'usable GiB', stroke: t.danger, dash: [6, 4], width: 1 },
      ],
      axes: contextAxes(t, contexts),
      scales: { x: contextScale(contexts), y: { range: (u, min, max) => [0, Math.max(max, availableGb || 0) * 1.1] } },
    },
    [contexts, totals, available],
  );
}

/** The usage section of a model's details, from GET /api/model/usage/{name}/history. */
export async function renderUsage(target, history, model, benchRuns = []) {
  if (!history) {
    fill(target, h('p', { class: 'muted' }, 'This server has no usage history endpoint.'));
    return;
  }
  const speed = model?.tokens_per_second;
  // Measured by a bench run on this machine, or estimated from memory bandwidth until one has run.
  const speedLabel = `Tokens/s (${model?.speed_source || 'unknown'})`;
  const figures = h(
    'dl',
    { class: 'figures' },
    h('div', {}, h('dt', {}, 'Uses'), h('dd', { dataset: { figure: 'count' } }, String(history.count))),
    h('div', {}, h('dt', {}, 'Success rate'), h('dd', { dataset: { figure: 'success' } }, history.success_rate === null ? '—' : `${(100 * history.success_rate).toFixed(1)}%`)),
    h('div', {}, h('dt', {}, 'p50'), h('dd', { dataset: { figure: 'p50' } }, seconds(history.p50_s))),
    h('div', {}, h('dt', {}, 'p95'), h('dd', { dataset: { figure: 'p95' } }, seconds(history.p95_s))),
    h('div', {}, h('dt', {}, speedLabel), h('dd', { dataset: { figure: 'tokens_per_second' } }, speed === null || speed === undefined ? '—' : Number(speed).toFixed(1))),
  );
  const bench = benchRuns.length ? h('div', { class: 'chart', id: 'chart-bench' }) : null;
  if (!history.count) {
    fill(target, figures, h('p', { class: 'muted' }, 'No uses recorded yet.'), bench && h('div', { class: 'charts' }, bench));
    if (bench) {
      await uplotReady();
      benchChart(bench, benchRuns);
    }
    return;
  }
  const uses = h('div', { class: 'chart', id: 'chart-uses' });
  const success = h('div', { class: 'chart', id: 'chart-success' });
  const distribution = h('div', { class: 'chart', id: 'chart-distribution' });
  fill(target, figures, h('div', { class: 'charts' }, uses, success, distribution, bench));
  await uplotReady();
  usesChart(uses, history.buckets);
  successChart(success, history.buckets);
  distributionChart(distribution, history);
  if (bench) benchChart(bench, benchRuns);
}
