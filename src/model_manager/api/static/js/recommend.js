// The recommendation for each priority on this machine, with and without vision, and why: the API's own
// answers (POST /api/model/recommend, with `capability: "vision"` for the second column).

import { api } from './api.js';
import { breakable, fill, h } from './dom.js';
import { DASH, gibOf } from './format.js';

export const PRIORITIES = ['speed', 'balanced', 'quality'];

async function ask(body) {
  try {
    return await api('/api/model/recommend', { method: 'POST', body });
  } catch (error) {
    return { error };
  }
}

export async function loadRecommendations() {
  const plain = Promise.all(PRIORITIES.map((priority) => ask({ priority })));
  const vision = Promise.all(PRIORITIES.map((priority) => ask({ priority, capability: 'vision' })));
  return { plain: await plain, vision: await vision };
}

/** {name: context that fits} from every candidate the answers considered. */
export function contextsFrom(recs) {
  const out = new Map();
  for (const answer of [...(recs?.plain || []), ...(recs?.vision || [])]) {
    for (const c of answer?.candidates || []) if (c.max_context) out.set(c.name, c.max_context);
  }
  return out;
}

function answerCell(answer, onSelect) {
  if (answer?.error) return h('td', { class: 'problem' }, answer.error.message);
  if (!answer?.model) return h('td', {}, h('span', { class: 'muted' }, answer?.reason || DASH));
  return h(
    'td',
    {},
    h('button', { type: 'button', class: 'link', onclick: () => onSelect(answer.model) }, breakable(answer.model)),
    h('p', { class: 'reason' }, answer.reason),
  );
}

export function renderRecommendations(target, recs, onSelect) {
  if (!recs) {
    fill(target, h('p', { class: 'muted' }, 'Asking the API…'));
    return;
  }
  const available = recs.plain.find((a) => a && !a.error)?.available_vram_gb;
  fill(
    target,
    h('p', { class: 'summary' }, 'For ', h('strong', {}, gibOf(available)), ' of usable memory:'),
    h('div', { class: 'table-wrap' }, h(
      'table',
      { class: 'recs' },
      h('thead', {}, h('tr', {}, ['Priority', 'Best here, and why', 'With vision'].map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        PRIORITIES.map((priority, i) => {
          return h(
            'tr',
            { dataset: { priority } },
            h('th', { scope: 'row' }, priority),
            answerCell(recs.plain[i], onSelect),
            answerCell(recs.vision[i], onSelect),
          );
        }),
      ),
    )),
  );
}
