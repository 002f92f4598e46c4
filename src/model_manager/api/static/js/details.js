// The selected model: its actions, its facts, the memory breakdown of its estimate, the plan (memory
// per context, when the server has POST /api/model/plan) and its usage charts.

import { api, ApiError } from './api.js';
import { benchChart, planChart, renderUsage, uplotReady } from './charts.js';
import { fill, h } from './dom.js';
import { progressBar } from './downloads.js';
import { DASH, downloadSize, gib, gibOf, number, percent, seconds, when } from './format.js';
import { fitCell, fitOf } from './models.js';

const ACTIVE = new Set(['queued', 'running']);
const PARTS = [
  ['weights_bytes', 'weights'],
  ['projector_bytes', 'vision projector'],
  ['kv_cache_bytes', 'KV cache'],
  ['graph_bytes', 'compute graph'],
  ['overhead_bytes', 'overhead'],
];

export class Details {
  constructor(section, app) {
    this.section = section;
    this.app = app;
    this.name = null;
    this.shownKey = '';
    this.usageKey = '';
    this.planFor = '';
  }

  select(name) {
    this.name = name;
    this.shownKey = '';
    this.usageKey = '';
    this.planFor = '';
    this.section.hidden = false;
    this.refresh();
    this.section.scrollIntoView({ block: 'start', behavior: 'smooth' });
    this.section.querySelector('h2')?.focus({ preventScroll: true });
  }

  /** Re-draw what changed (called on every update of the model list, jobs or GPU). */
  refresh() {
    const s = this.app.state;
    const m = s.models.find((x) => x.name === this.name);
    if (!m) return;
    const job = this.app.downloads.latestFor(m.name);
    const key = JSON.stringify([m, job, s.current, s.availableGb, [...s.loaded], s.busy]);
    if (key !== this.shownKey) {
      this.shownKey = key;
      const focused = document.activeElement?.dataset?.focusKey;
      fill('details-head', ...this.head(m, job));
      fill('details-info', this.info(m));
      fill('details-memory', this.memory(m));
      if (focused) this.section.querySelector(`[data-focus-key="${focused}"]`)?.focus();
    }
    if (this.planFor !== m.name) {
      this.planFor = m.name;
      this.plan(m);
    }
    const usageKey = `${m.name}|${m.usage_count}|${m.last_used}|${m.tokens_per_second}`;
    if (usageKey !== this.usageKey) {
      this.usageKey = usageKey;
      this.usage(m);
    }
  }

  head(m, job) {
    const s = this.app.state;
    const current = s.current === m.name;
    const active = job && ACTIVE.has(job.status);
    const resumable = job && ['cancelled', 'interrupted', 'failed'].includes(job.status);
    const button = (action, label, onclick, extra = {}) =>
      h('button', { type: 'button', class: action, dataset: { action, focusKey: `action:${action}` }, onclick, disabled: s.busy, ...extra }, label);
    return [
      h('h2', { id: 'details-title', tabindex: '-1' }, m.name),
      h(
        'p',
        { class: 'badges' },
        h('span', { class: 'badge' }, m.purpose),
        m.installed ? h('span', { class: 'badge yes' }, 'installed') : h('span', { class: 'badge' }, 'not installed'),
        current ? h('span', { class: 'badge current' }, 'current') : null,
        s.loaded.has(m.name) ? h('span', { class: 'badge loaded' }, 'loaded') : null,
      ),
      h(
        'div',
        { class: 'actions', role: 'group', 'aria-label': `Actions for ${m.name}` },
        m.installed && !current ? button('switch', 'Switch to it', () => this.app.switchTo(m.name)) : null,
        !m.installed && !active ? button('pull', resumable ? 'Resume download' : 'Download', () => this.app.downloads.start(m.name)) : null,
        active ? button('cancel', 'Cancel download', () => this.app.downloads.cancel(job.id)) : null,
        m.installed
          ? button('delete', 'Delete…', () => this.app.deleteModel(m.name), current ? { disabled: true, title: 'the current model: switch to another first' } : {})
          : null,
        this.app.state.features.bench && m.installed ? button('bench', 'Bench', () => this.app.bench(m.name)) : null,
      ),
      job && (active || job.model === m.name) ? h('div', { class: 'job-inline', dataset: { status: job.status } }, progressBar(job), ` ${job.status}`, job.error ? h('span', { class: 'problem' }, ` · ${job.error.message}`) : '') : null,
    ];
  }

  info(m) {
    const s = this.app.state;
    const fit = fitOf(m, s.availableGb, s.contexts);
    const row = (label, value) => h('div', {}, h('dt', {}, label), h('dd', {}, value ?? DASH));
    return h(
      'dl',
      { class: 'facts' },
      row('Description', m.description || DASH),
      row('Recommended use', m.recommended_use || DASH),
      row('Ollama tag', m.ollama_tag),
      row('Family · quantization', `${m.family || DASH} · ${m.quantization || DASH}`),
      row('Parameters', m.parameter_count ? number(m.parameter_count / 1e9, 1) + ' B' : m.size || DASH),
      row('Capabilities', (m.capabilities || []).join(', ') || DASH),
      row('Download size', downloadSize(m.download_size_mb)),
      row('Min VRAM', m.min_vram_gb === null ? `${gibOf(m.estimated_vram_gb)} (estimated)` : gibOf(m.min_vram_gb)),
      row('Fit here', fitCell(fit)),
      row('Context that fits', fit.context ? `${number(fit.context)} tokens` : DASH),
      row('Quality score', number(m.quality_score, 1)),
      row('Tokens/s', number(m.tokens_per_second, 1)),
      row('Uses · success · average', `${m.usage_count} · ${m.usage_count ? percent(m.success_rate, 1) : DASH} · ${m.usage_count ? seconds(m.avg_inference_time) : DASH}`),
      row('Last used', when(m.last_used)),
      row('Source', m.source),
    );
  }

  memory(m) {
    const e = m.memory_estimate;
    if (!e) return h('p', { class: 'muted' }, 'No architecture facts for this model: no estimate.');
    const availableBytes = (this.app.state.availableGb || 0) * 2 ** 30;
    const scale = Math.max(e.total_bytes, availableBytes) || 1;
    const parts = PARTS.filter(([key]) => e[key] > 0);
    return [
      h(
        'p',
        {},
        h('strong', {}, gib(e.total_bytes, 2)),
        ` at ${number(e.context_length)} tokens of context, ${e.kv_cache_type} KV cache, ${e.num_parallel} parallel`,
        e.approximate ? ' (approximate)' : '',
      ),
      h(
        'div',
        { class: 'bar memory', role: 'img', 'aria-label': parts.map(([k, label]) => `${label} ${gib(e[k], 2)}`).join(', ') },
        parts.map(([key, label]) => h('span', { class: `seg mem-${key.split('_')[0]}`, title: `${label}: ${gib(e[key], 2)}`, style: { width: `${(100 * e[key]) / scale}%` } })),
        availableBytes ? h('span', { class: 'available-mark', title: `usable: ${gib(availableBytes)}`, style: { left: `${(100 * availableBytes) / scale}%` } }) : null,
      ),
      h('ul', { class: 'legend' }, parts.map(([key, label]) => h('li', {}, h('span', { class: `swatch mem-${key.split('_')[0]}` }), `${label} ${gib(e[key], 2)}`)),
        availableBytes ? h('li', {}, h('span', { class: 'swatch available' }), `usable here ${gib(availableBytes)}`) : null),
      (e.notes || []).map((n) => h('p', { class: 'note' }, n)),
    ];
  }

  async plan(m) {
    const target = document.getElementById('details-plan');
    if (!this.app.state.features.plan) {
      fill(target, h('p', { class: 'muted' }, 'The plan (memory per context) needs POST /api/model/plan, which this server does not have.'));
      return;
    }
    fill(target, h('p', { class: 'muted' }, 'Planning…'));
    try {
      const answer = await api('/api/model/plan', { method: 'POST', body: { model: m.name } });
      if (this.name !== m.name) return;
      // One line per context at the f16 cache (the default), or the first type planned.
      const kinds = answer.kv_cache_types || [];
      const kind = kinds.includes('f16') ? 'f16' : kinds[0];
      const plan = (answer.rows || [])
        .filter((r) => r.kv_cache_type === kind && !r.problem)
        .map((r) => ({ context: r.context_length, total_gib: r.footprint_gb, fit: r.fit }));
      const chart = h('div', { class: 'chart', id: 'chart-plan' });
      fill(
        target,
        chart,
        h('table', { class: 'plan' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Context'), h('th', { scope: 'col', class: 'num' }, 'Needs'))),
          h('tbody', {}, plan.map((p) => h('tr', {}, h('td', { class: 'num' }, number(p.context)), h('td', { class: 'num' }, gibOf(p.total_gib, 2)))))),
      );
      if (plan.length) {
        await uplotReady();
        planChart(chart, plan, this.app.state.availableGb);
      }
    } catch (error) {
      if (this.name !== m.name) return;
      const missing = error instanceof ApiError && (error.status === 404 && error.code === 'not_found');
      fill(target, h('p', { class: missing ? 'muted' : 'problem' }, missing ? 'This server has no plan endpoint.' : error.message));
    }
  }

  /** [[epoch s, tok/s], ...] of the model's benchmarks that succeeded, oldest first ([] without any). */
  async benchRuns(name) {
    if (!this.app.state.features.bench) return [];
    const { jobs } = await api('/api/model/benchmarks');
    return jobs
      .filter((j) => j.model === name && j.status === 'succeeded' && j.result?.tokens_per_second)
      .map((j) => [Date.parse(j.finished_at) / 1000, j.result.tokens_per_second])
      .sort((a, b) => a[0] - b[0]);
  }

  async usage(m) {
    const target = document.getElementById('details-usage');
    if (!this.app.state.features.usage_history) {
      renderUsage(target, null, m);
      return;
    }
    // A model benchmarked but never used has no history (404): its benchmarks are still charted.
    const runs = this.benchRuns(m.name).catch(() => []);
    try {
      const history = await api(`/api/model/usage/${encodeURIComponent(m.name).replaceAll('%2F', '/').replaceAll('%3A', ':')}/history?events=0`);
      if (this.name === m.name) await renderUsage(target, history, m, await runs);
    } catch (error) {
      if (this.name !== m.name) return;
      if (error.status !== 404) {
        fill(target, h('p', { class: 'problem' }, error.message));
        return;
      }
      const found = await runs;
      const chart = found.length ? h('div', { class: 'chart', id: 'chart-bench' }) : null;
      fill(target, h('p', { class: 'muted' }, 'No uses recorded yet.'), chart && h('div', { class: 'charts' }, chart));
      if (chart) {
        await uplotReady();
        benchChart(chart, found);
      }
    }
  }
}
