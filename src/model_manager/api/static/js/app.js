// The dashboard: state, live updates (polling, no faster than once a second; downloads follow their
// event stream), and the actions, each one REST call under the API's own guards.

import { api, onTokenNeeded, setToken, token } from './api.js';
import { fill, h } from './dom.js';
import { Details } from './details.js';
import { Downloads } from './downloads.js';
import { clock } from './format.js';
import { renderGpu, renderLoaded } from './gpu.js';
import { ModelsTable } from './models.js';
import { contextsFrom, loadRecommendations, renderRecommendations } from './recommend.js';

const MACHINE_EVERY_MS = 2000;
const MODELS_EVERY_MS = 5000;
const RECOMMEND_EVERY_MS = 60000;
const MEMORY_CHANGE_GIB = 0.25;

const state = {
  features: { plan: false, bench: false, usage_history: false },
  models: [],
  current: null,
  gpu: null,
  running: [],
  loaded: new Set(),
  availableGb: null,
  recs: null,
  contexts: new Map(),
  busy: false,
};

const $ = (id) => document.getElementById(id);

// --- messages and dialogs -------------------------------------------------------------------------

function notify(text, kind = 'info') {
  const item = h('li', { class: `message ${kind}` }, text);
  $('messages').prepend(item);
  while ($('messages').children.length > 4) $('messages').lastChild.remove();
  if (kind !== 'error') setTimeout(() => item.remove(), 8000);
}

function failed(error) {
  notify(error.solution ? `${error.message} — ${error.solution}` : error.message, 'error');
}

function confirmDialog(question, detail, action) {
  const dialog = $('confirm');
  fill('confirm-text', h('strong', {}, question), h('p', {}, detail));
  $('confirm-ok').textContent = action;
  dialog.returnValue = '';
  dialog.showModal();
  $('confirm-cancel').focus();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

function askForToken() {
  const dialog = $('token-dialog');
  const input = dialog.querySelector('input');
  input.value = '';
  dialog.returnValue = '';
  dialog.showModal();
  input.focus();
  return new Promise((resolve) =>
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok' ? input.value.trim() || null : null), { once: true }),
  );
}

// --- reading the API ------------------------------------------------------------------------------

function status(text, kind = 'ok') {
  const node = $('status');
  node.textContent = text;
  node.dataset.kind = kind;
}

async function refreshMachine() {
  const [gpu, running] = await Promise.allSettled([api('/api/gpu'), api('/api/model/running')]);
  let problem = null;
  if (gpu.status === 'fulfilled') {
    const before = state.availableGb;
    state.gpu = gpu.value;
    state.availableGb = gpu.value.available_gb;
    // What fits depends on the memory free now: a load or unload elsewhere changes the answers.
    if (before !== null && Math.abs(before - state.availableGb) >= MEMORY_CHANGE_GIB) refreshRecommendations().catch(failed);
  } else problem = gpu.reason.message;
  const wasLoaded = [...state.loaded].join();
  if (running.status === 'fulfilled') {
    state.running = running.value.models;
    state.loaded = new Set(state.running.map((m) => m.name));
  } else {
    state.running = null;
    state.loaded = new Set();
    problem = running.reason.message;
  }
  renderGpu($('gpu'), state.gpu, state.running, problem);
  renderLoaded($('loaded'), state.running, problem);
  if ([...state.loaded].join() !== wasLoaded) redrawModels(); // the "loaded" badges
  status(problem ? problem : `Live · updated ${clock()}`, problem ? 'warn' : 'ok');
}

async function refreshModels() {
  const [list, current, jobs] = await Promise.allSettled([
    api('/api/model/list'),
    api('/api/model/current'),
    api('/api/model/downloads'),
  ]);
  if (list.status === 'fulfilled') {
    const installed = (models) => models.filter((m) => m.installed).map((m) => m.name).join();
    const changed = state.models.length && installed(state.models) !== installed(list.value.models);
    state.models = list.value.models;
    if (changed) refreshRecommendations().catch(failed);
  } else failed(list.reason);
  // 409: the current model is no longer installed; there is none to mark.
  state.current = current.status === 'fulfilled' ? current.value.model : null;
  if (jobs.status === 'fulfilled') downloads.update(jobs.value.jobs);
  redrawModels();
}

async function refreshRecommendations() {
  state.recs = await loadRecommendations();
  state.contexts = contextsFrom(state.recs);
  renderRecommendations($('recommendations'), state.recs, select);
  redrawModels();
}

function redrawModels() {
  table.update(state.models, {
    availableGb: state.availableGb,
    contexts: state.contexts,
    current: state.current,
    loaded: state.loaded,
    selected: details.name,
  });
  details.refresh();
}

/** Run `work` now and then every `ms` after it ends; skipped while the tab is hidden. */
function every(ms, work) {
  const run = async () => {
    if (!document.hidden) {
      try { await work(); } catch (error) { status(error.message, 'warn'); }
    }
    setTimeout(run, ms);
  };
  return run();
}

async function refreshAll() {
  await Promise.all([refreshMachine(), refreshModels()]);
  await refreshRecommendations();
}

// --- actions ----------------------------------------------------------------------------------------

async function busyWith(message, work) {
  state.busy = true;
  details.refresh();
  notify(message);
  try {
    await work();
  } catch (error) {
    failed(error);
  } finally {
    state.busy = false;
    await refreshAll().catch(failed);
  }
}

function switchTo(name) {
  return busyWith(`Switching to ${name}…`, async () => {
    const answer = await api('/api/model/switch', { method: 'POST', body: { model: name } });
    notify(answer.message, 'ok');
  });
}

async function deleteModel(name) {
  const sure = await confirmDialog(`Delete ${name}?`, 'Ollama removes its files from disk; its usage record here is kept.', 'Delete');
  if (!sure) {
    notify(`Kept ${name}.`);
    return;
  }
  await busyWith(`Deleting ${name}…`, async () => {
    const answer = await api('/api/model/delete', { method: 'DELETE', body: { model: name } });
    notify(answer.message, 'ok');
  });
}

function bench(name) {
  return busyWith(`Benchmarking ${name}…`, async () => {
    // A benchmark job; "wait" answers once it has ended, with its figures as the job's result.
    const answer = await api('/api/model/benchmark', { method: 'POST', body: { model: name, wait: true } });
    const speed = answer.job?.result?.tokens_per_second;
    notify(speed ? `${name}: ${Number(speed).toFixed(1)} tokens/s` : answer.message || 'Bench done', 'ok');
  });
}

function select(name) {
  details.select(name);
  redrawModels();
}

// --- start ------------------------------------------------------------------------------------------

const app = { state, switchTo, deleteModel, bench };
let details = null;
const downloads = new Downloads($('downloads'), {
  onEnd: (job) => {
    notify(`${job.model}: download ${job.status}${job.error ? ` (${job.error.message})` : ''}`, job.status === 'succeeded' ? 'ok' : 'error');
    refreshAll().catch(failed);
  },
  onError: failed,
  onChange: () => details?.refresh(),
  isInstalled: (name) => state.models.some((m) => m.name === name && m.installed),
});
app.downloads = downloads;
details = new Details($('details'), app);
const table = new ModelsTable($('models-table'), $('filters'), select);

onTokenNeeded(askForToken);
$('token-button').addEventListener('click', async () => {
  const given = await askForToken();
  setToken(given);
  notify(given ? 'Token saved for this tab.' : 'Token forgotten.');
  refreshAll().catch(failed);
});
$('token-button').textContent = token() ? 'Token ✓' : 'Token';

let resizing = null;
window.addEventListener('resize', () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => { details.usageKey = ''; details.planFor = ''; details.refresh(); }, 250);
});

async function loadFeatures() {
  try {
    const answer = await api('/api/dashboard');
    state.features = answer.features;
    $('version').textContent = `v${answer.version}`;
  } catch (error) {
    failed(error);
  }
  $('token-button').textContent = token() ? 'Token ✓' : 'Token';
}

async function start() {
  // Everything at once: the GPU, the models and the recommendations each draw as they arrive.
  await Promise.all([
    loadFeatures(),
    every(MACHINE_EVERY_MS, refreshMachine),
    every(MODELS_EVERY_MS, refreshModels),
    every(RECOMMEND_EVERY_MS, refreshRecommendations),
  ]);
  document.body.dataset.ready = 'true';
}

start();
