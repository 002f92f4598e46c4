// One memory bar per device: each loaded model (named, from /api/ps), other use, the reserve Ollama
// keeps free, and what is free; then each loaded model's CPU/GPU split.

import { breakable, colourFor, fill, h } from './dom.js';
import { DASH, gib, gibOf, split, when } from './format.js';

/** Devices worth a bar: visible ones of the GPU backends, and the RAM record when it is the answer. */
export function shownDevices(report) {
  return (report?.devices || []).filter(
    (d) => d.visible !== false && (d.backend !== 'cpu' || report.backend === 'cpu'),
  );
}

/** The bytes of `model` held by a device of `backend`: its GPU part, or on the CPU its RAM part. */
function heldOn(backend, model) {
  return backend === 'cpu' ? model.size_bytes - model.size_vram_bytes : model.size_vram_bytes;
}

/** The segments of one device's bar, in bytes. Models are placed on the device only when it is the
 * one device models run on: /api/ps does not say how a model is split across several. */
export function segments(device, models) {
  const total = device.total_bytes;
  const placed = (models || [])
    .map((m) => ({ kind: 'model', label: m.name, bytes: Math.max(0, heldOn(device.backend, m)) }))
    .filter((s) => s.bytes > 0);
  const byModels = placed.reduce((sum, s) => sum + s.bytes, 0);
  // The GPU reading and /api/ps are taken at different moments: never draw more than the device has.
  const used = Math.min(total, Math.max(total - device.free_bytes, byModels));
  const free = total - used;
  const reserve = Math.min(device.reserve_bytes, free);
  return [
    ...placed,
    { kind: 'other', label: 'other use', bytes: Math.max(0, used - byModels) },
    { kind: 'reserve', label: 'reserve', bytes: reserve },
    { kind: 'free', label: 'free', bytes: free - reserve },
  ];
}

function bar(device, parts) {
  const total = device.total_bytes || 1;
  const text = parts.filter((p) => p.bytes > 0).map((p) => `${p.label} ${gib(p.bytes)}`).join(', ');
  return h(
    'div',
    { class: 'bar', role: 'img', 'aria-label': `${device.name}: ${text} of ${gib(device.total_bytes)}` },
    parts
      .filter((p) => p.bytes > 0)
      .map((p) =>
        h(
          'span',
          {
            class: `seg seg-${p.kind}`,
            title: `${p.label}: ${gib(p.bytes, 2)}`,
            dataset: p.kind === 'model' ? { model: p.label } : { kind: p.kind },
            style: { width: `${(100 * p.bytes) / total}%`, ...(p.kind === 'model' ? { background: colourFor(p.label) } : {}) },
          },
          (100 * p.bytes) / total > 12 ? h('span', { class: 'seg-label' }, p.label) : null,
        ),
      ),
  );
}

function legend(parts) {
  return h(
    'ul',
    { class: 'legend' },
    parts.map((p) =>
      h(
        'li',
        {},
        h('span', {
          class: `swatch seg-${p.kind}`,
          style: p.kind === 'model' ? { background: colourFor(p.label) } : {},
        }),
        p.kind === 'model' ? h('strong', {}, p.label) : p.label,
        ` ${gib(p.bytes)}`,
        p.kind === 'free' ? ' usable' : '',
      ),
    ),
  );
}

export function renderGpu(target, report, running, problem) {
  if (!report) {
    fill(target, h('p', { class: 'muted' }, problem || 'Reading the GPU…'));
    return;
  }
  const devices = shownDevices(report);
  const group = devices.filter((d) => d.backend === report.backend && !d.problem);
  const notes = [];
  if (report.override) {
    notes.push(
      `Models are planned against ${gibOf(report.override.gb)} (set by ${report.override.source}); ` +
        `detected usable: ${gibOf(report.detected_available_gb)}.`,
    );
  }
  if (group.length > 1) {
    notes.push(`Ollama does not say how a model is split across the ${group.length} devices, so the models are not drawn per device.`);
  }
  if (running === null) notes.push(problem || 'Ollama is not answering: loaded models unknown.');
  fill(
    target,
    h(
      'p',
      { class: 'summary' },
      h('strong', {}, gibOf(report.available_gb)),
      ` usable for models (${report.backend === 'cpu' ? 'no GPU found: system RAM' : report.backend})`,
    ),
    devices.map((device) => {
      const models = group.length === 1 && device === group[0] ? running : [];
      const parts = segments(device, models);
      return h(
        'figure',
        { class: 'device', dataset: { device: device.id || device.name } },
        h(
          'figcaption',
          {},
          h('strong', {}, device.index === null ? device.name : `${device.index}: ${device.name}`),
          ` · ${gib(device.total_bytes)} total`,
          device.problem ? h('span', { class: 'problem' }, ` · ${device.problem}`) : null,
        ),
        bar(device, parts),
        legend(parts.filter((p) => p.kind !== 'model' || p.bytes > 0)),
      );
    }),
    notes.map((n) => h('p', { class: 'note' }, n)),
  );
}

export function renderLoaded(target, running, problem) {
  if (running === null) {
    fill(target, h('p', { class: 'muted' }, problem || 'Loaded models unknown.'));
    return;
  }
  if (!running.length) {
    fill(target, h('p', { class: 'muted', id: 'nothing-loaded' }, 'No model is loaded.'));
    return;
  }
  const head = [['Model', ''], ['Size', 'num'], ['Where it runs', ''], ['Context', 'num optional'], ['Unloads', 'optional']];
  fill(
    target,
    h('div', { class: 'table-wrap' }, h(
      'table',
      { class: 'loaded' },
      h('thead', {}, h('tr', {}, head.map(([t, c]) => h('th', { scope: 'col', class: c || null }, t)))),
      h(
        'tbody',
        {},
        running.map((m) =>
          h(
            'tr',
            { dataset: { model: m.name } },
            h('th', { scope: 'row' }, h('span', { class: 'dot', style: { background: colourFor(m.name) } }), breakable(m.name)),
            h('td', { class: 'num' }, gib(m.size_bytes)),
            h(
              'td',
              {},
              h(
                'span',
                { class: 'split', role: 'img', 'aria-label': split(m.gpu_fraction) },
                h('span', { class: 'split-gpu', style: { width: `${100 * m.gpu_fraction}%` } }),
              ),
              ' ',
              split(m.gpu_fraction),
            ),
            h('td', { class: 'num optional' }, m.context_length ? m.context_length.toLocaleString('en-US') : DASH),
            h('td', { class: 'optional' }, when(m.expires_at)),
          ),
        ),
      ),
    )),
  );
}
