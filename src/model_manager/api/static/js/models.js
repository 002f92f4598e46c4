// The models table: the catalog and installed models, sortable and filterable, with the fit at this
// machine's memory. Quality score and tokens/s are read when the API's model dicts carry them
// (`quality_score`, `tokens_per_second`); until then they show "—".

import { breakable, fill, h } from './dom.js';
import { DASH, downloadSize, gibOf, number } from './format.js';

const LEVEL_TEXT = { full: 'fits', partial: 'partly', none: 'no' };

/** How `m` fits here: the API's fit level when the model dict has one, else its Min VRAM (or the
 * estimate) against the usable memory; and the context that fits, when known. */
export function fitOf(m, availableGb, contexts) {
  const given = m.fit && typeof m.fit === 'object' ? m.fit : null;
  const level = given ? given.fit ?? given.level ?? null : typeof m.fit === 'string' ? m.fit : null;
  const required = m.required_vram_gb ?? m.min_vram_gb ?? m.estimated_vram_gb ?? given?.estimate?.total_gib ?? null;
  let shown = level;
  if (!shown && required !== null && availableGb !== null && availableGb !== undefined) {
    shown = required <= availableGb ? 'full' : 'none';
  }
  const context = given?.max_context ?? m.max_context ?? contexts?.get(m.name) ?? null;
  return { level: shown, fromApi: level !== null, required, available: availableGb ?? null, context };
}

const COLUMNS = [
  { key: 'name', label: 'Model', value: (m) => m.name.toLowerCase() },
  { key: 'purpose', label: 'Purpose', value: (m) => m.purpose, optional: true },
  { key: 'capabilities', label: 'Capabilities', value: (m) => (m.capabilities || []).join(','), optional: true },
  { key: 'installed', label: 'Installed', value: (m) => (m.installed ? 0 : 1) },
  { key: 'size', label: 'Size', value: (m) => m.parameter_count || m.download_size_mb * 1e6 || null, num: true },
  { key: 'quality', label: 'Quality score', value: (m) => m.quality_score ?? null, num: true, optional: true },
  { key: 'speed', label: 'Tokens/s', value: (m) => m.tokens_per_second ?? null, num: true, optional: true },
  { key: 'fit', label: 'Fit here', value: (m, c) => ratio(fitOf(m, c.availableGb, c.contexts)), num: true },
  { key: 'context', label: 'Context that fits', value: (m, c) => fitOf(m, c.availableGb, c.contexts).context, num: true, optional: true },
  { key: 'uses', label: 'Uses', value: (m) => m.usage_count, num: true, optional: true },
];

function ratio(fit) {
  return fit.required !== null && fit.available ? fit.required / fit.available : null;
}

export class ModelsTable {
  constructor(table, form, onSelect) {
    this.table = table;
    this.form = form;
    this.onSelect = onSelect;
    this.sort = { key: 'installed', dir: 1 };
    this.models = [];
    this.context = { availableGb: null, contexts: new Map(), current: null, loaded: new Set(), selected: null };
    form.addEventListener('input', () => this.render());
    form.addEventListener('submit', (e) => e.preventDefault());
  }

  update(models, context) {
    this.models = models;
    this.context = { ...this.context, ...context };
    this.fillChoices('purpose', [...new Set(models.map((m) => m.purpose))].sort());
    this.fillChoices('capability', [...new Set(models.flatMap((m) => m.capabilities || []))].sort());
    this.render();
  }

  fillChoices(name, values) {
    const select = this.form.elements[name];
    const have = [...select.options].slice(1).map((o) => o.value);
    if (have.join() === values.join()) return;
    const chosen = select.value;
    select.replaceChildren(select.options[0], ...values.map((v) => h('option', { value: v }, v)));
    select.value = values.includes(chosen) ? chosen : '';
  }

  filtered() {
    const f = this.form.elements;
    const text = f.q.value.trim().toLowerCase();
    const c = this.context;
    return this.models.filter((m) => {
      if (text && ![m.name, m.family, m.description, m.ollama_tag].some((s) => (s || '').toLowerCase().includes(text))) return false;
      if (f.purpose.value && m.purpose !== f.purpose.value) return false;
      if (f.capability.value && !(m.capabilities || []).includes(f.capability.value)) return false;
      if (f.installed.value === 'yes' && !m.installed) return false;
      if (f.installed.value === 'no' && m.installed) return false;
      if (f.fits.checked && !['full', 'partial'].includes(fitOf(m, c.availableGb, c.contexts).level)) return false;
      return true;
    });
  }

  sorted(models) {
    const column = COLUMNS.find((col) => col.key === this.sort.key);
    const { dir } = this.sort;
    const keyed = models.map((m) => [column.value(m, this.context), m.name.toLowerCase(), m]);
    keyed.sort((a, b) => {
      if (a[0] === null && b[0] !== null) return 1; // unknown values last, either way
      if (b[0] === null && a[0] !== null) return -1;
      if (a[0] < b[0]) return -dir;
      if (a[0] > b[0]) return dir;
      return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
    });
    return keyed.map((k) => k[2]);
  }

  sortBy(key) {
    this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : 1 };
    this.render();
    this.table.querySelector(`th[data-key="${key}"] button`)?.focus();
  }

  render() {
    const focused = document.activeElement?.dataset?.focusKey;
    const rows = this.sorted(this.filtered());
    fill(
      this.table,
      h('caption', { class: 'visually-hidden' }, 'Models: select one to see its details'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          COLUMNS.map((col) =>
            h(
              'th',
              {
                scope: 'col',
                class: [col.num ? 'num' : '', col.optional ? 'optional' : ''].join(' ').trim() || null,
                'data-key': col.key,
                'aria-sort': this.sort.key === col.key ? (this.sort.dir > 0 ? 'ascending' : 'descending') : null,
              },
              h(
                'button',
                { type: 'button', class: 'sort', dataset: { focusKey: `sort:${col.key}` }, onclick: () => this.sortBy(col.key) },
                col.label,
                h('span', { class: 'arrow', 'aria-hidden': 'true' }, this.sort.key === col.key ? (this.sort.dir > 0 ? ' ▲' : ' ▼') : ''),
              ),
            ),
          ),
        ),
      ),
      h('tbody', {}, rows.map((m) => this.row(m))),
    );
    document.getElementById('models-count').textContent = `${rows.length} of ${this.models.length}`;
    if (focused) this.table.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  }

  row(m) {
    const c = this.context;
    const fit = fitOf(m, c.availableGb, c.contexts);
    const selected = c.selected === m.name;
    return h(
      'tr',
      { dataset: { model: m.name }, class: selected ? 'selected' : null, onclick: (e) => { if (e.target.tagName !== 'BUTTON') this.onSelect(m.name); } },
      h(
        'th',
        { scope: 'row' },
        h('button', { type: 'button', class: 'link', 'aria-pressed': selected ? 'true' : 'false', dataset: { focusKey: `model:${m.name}` }, onclick: () => this.onSelect(m.name) }, breakable(m.name)),
        c.current === m.name ? h('span', { class: 'badge current', title: 'the current model' }, 'current') : null,
        c.loaded.has(m.name) ? h('span', { class: 'badge loaded', title: 'loaded in Ollama now' }, 'loaded') : null,
      ),
      h('td', { class: 'optional' }, m.purpose),
      h('td', { class: 'optional' }, (m.capabilities || []).join(', ') || DASH),
      h('td', { class: m.installed ? 'yes' : 'no' }, m.installed ? 'yes' : 'no'),
      h('td', { class: 'num' }, m.size || DASH, h('span', { class: 'muted optional' }, ` · ${downloadSize(m.download_size_mb)}`)),
      h('td', { class: 'num optional', dataset: { field: 'quality_score' } }, number(m.quality_score, 1)),
      h('td', { class: 'num optional', dataset: { field: 'tokens_per_second' } }, number(m.tokens_per_second, 1)),
      h('td', { class: 'num' }, fitCell(fit)),
      h('td', { class: 'num optional' }, fit.context ? number(fit.context) : DASH),
      h('td', { class: 'num optional' }, String(m.usage_count)),
    );
  }
}

/** The fit level and a small bar of required against available memory. */
export function fitCell(fit) {
  if (!fit.level) return DASH;
  const share = fit.required !== null && fit.available ? Math.min(1, fit.required / fit.available) : 0;
  const detail =
    `needs ${gibOf(fit.required)} of ${gibOf(fit.available)} usable` +
    (fit.fromApi ? '' : ' (Min VRAM against usable memory)');
  return h(
    'span',
    { class: `fit fit-${fit.level}`, title: detail },
    h('span', { class: 'fitbar', role: 'img', 'aria-label': detail }, h('span', { style: { width: `${100 * share}%` } })),
    ` ${LEVEL_TEXT[fit.level] || fit.level}`,
  );
}
