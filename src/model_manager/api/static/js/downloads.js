// Download jobs: start a pull, follow its event stream with a live progress bar, cancel, resume.
// Jobs started elsewhere (the CLI, another tab) appear through the job list and are followed too.

import { api, followEvents } from './api.js';
import { fill, h } from './dom.js';
import { gbDecimal, when } from './format.js';

const ACTIVE = new Set(['queued', 'running']);
const RESUMABLE = new Set(['cancelled', 'interrupted', 'failed']);
const FINISHED_SHOWN = 5;

export class Downloads {
  constructor(target, { onEnd, onError, onChange, isInstalled }) {
    this.target = target;
    this.onChange = onChange;
    this.onEnd = onEnd;
    this.onError = onError;
    this.isInstalled = isInstalled;
    this.jobs = new Map();
    this.following = new Map();
  }

  merge(job) {
    const known = this.jobs.get(job.id);
    // An older snapshot (the job list) never overwrites a newer one (the stream).
    if (known && known.updated_at > job.updated_at) return;
    this.jobs.set(job.id, job);
  }

  /** The job list from GET /api/model/downloads (newest first). */
  update(jobs) {
    for (const job of jobs) {
      this.merge(job);
      if (ACTIVE.has(job.status)) this.follow(job.id);
    }
    this.render();
  }

  latestFor(model) {
    let found = null;
    for (const job of this.jobs.values()) if (job.model === model && (!found || job.created_at > found.created_at)) found = job;
    return found;
  }

  async start(model) {
    try {
      const answer = await api('/api/model/download', { method: 'POST', body: { model } });
      this.merge(answer.job);
      this.render();
      this.follow(answer.job.id);
    } catch (error) {
      this.onError(error);
    }
  }

  async cancel(id) {
    try {
      const answer = await api(`/api/model/download/${encodeURIComponent(id)}`, { method: 'DELETE' });
      this.merge(answer.job);
      this.render();
    } catch (error) {
      this.onError(error);
    }
  }

  follow(id) {
    if (this.following.has(id)) return;
    const controller = new AbortController();
    this.following.set(id, controller);
    followEvents(
      `/api/model/download/${encodeURIComponent(id)}/events`,
      ({ event, data }) => {
        this.merge(data);
        this.render();
        if (event === 'end') this.onEnd(data);
      },
      controller.signal,
    )
      .catch((error) => {
        if (error.name !== 'AbortError') this.onError(error);
      })
      .finally(() => this.following.delete(id));
  }

  shown() {
    const jobs = [...this.jobs.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    const active = jobs.filter((j) => ACTIVE.has(j.status));
    const finished = jobs.filter((j) => !ACTIVE.has(j.status)).slice(0, FINISHED_SHOWN);
    return [...active, ...finished];
  }

  render() {
    const jobs = this.shown();
    this.target.closest('section').hidden = jobs.length === 0;
    fill(this.target, h('ul', { class: 'jobs' }, jobs.map((job) => this.item(job))));
    this.onChange();
  }

  item(job) {
    const active = ACTIVE.has(job.status);
    const resumable = RESUMABLE.has(job.status) && !this.isInstalled(job.model);
    return h(
      'li',
      { class: `job job-${job.status}`, dataset: { job: job.id, model: job.model, status: job.status } },
      h('div', { class: 'job-head' }, h('strong', {}, job.model), h('span', { class: 'status' }, job.status)),
      progressBar(job),
      h(
        'div',
        { class: 'job-detail' },
        job.total ? `${gbDecimal(job.completed)} of ${gbDecimal(job.total)}` : '',
        job.detail ? ` · ${job.detail}` : '',
        job.error ? h('span', { class: 'problem' }, ` · ${job.error.message}`) : '',
        !active && job.finished_at ? h('span', { class: 'muted' }, ` · ${when(job.finished_at)}`) : '',
      ),
      h(
        'div',
        { class: 'actions' },
        active ? h('button', { type: 'button', class: 'cancel', onclick: () => this.cancel(job.id) }, 'Cancel') : null,
        resumable ? h('button', { type: 'button', class: 'resume', onclick: () => this.start(job.model) }, 'Resume') : null,
      ),
    );
  }
}

export function progressBar(job) {
  const value = job.status === 'succeeded' ? 100 : job.percent;
  return h(
    'progress',
    { max: '100', value: String(value), 'aria-label': `${job.model}: ${value}%`, class: 'download' },
    `${value}%`,
  );
}
