// The job list: newest first, "load more" by cursor, each active job's
// progress fed by its event stream (a few at once; the rest are polled, to
// leave the browser's connections to the server free for everything else).

import { api, ApiError, NetworkError, followJob, jobPath } from './api.js';
import { t, currentLang } from './i18n.js';
import { el, clear } from './dom.js';

const pageSize = 20;
const maxStreams = 3;
const pollEvery = 4000;

const ended = (s) => s === 'succeeded' || s === 'failed' || s === 'canceled' || s === 'expired';

// describe words an error for the page: the API's own message, or why the
// server could not be reached.
export function describe(err) {
  return err instanceof NetworkError ? t('networkError', { message: err.message }) : err.message;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// detailsShown is what a card lists of a result's details: a backup's
// manifest and a drill's per-table lines are summed up, not printed whole.
function detailsShown(type, details) {
  if (!details || typeof details !== 'object') return details;
  const d = { ...details };
  if (d.manifest && typeof d.manifest === 'object') {
    d.manifest = t('manifestSummary', { tables: fmtInt((d.manifest.tables || []).length), rows: fmtInt(d.manifest.total_rows) });
  }
  if (type === 'backup_verify' && Array.isArray(d.tables)) {
    d.tables = t('tablesMatch', { ok: d.tables.filter((x) => x.ok).length, n: d.tables.length });
    if (Array.isArray(d.checks)) d.checks = t('checksPassed', { ok: d.checks.filter((x) => x.ok).length, n: d.checks.length });
  }
  return d;
}

// label is a param's or a detail's name as the page words it: the form's
// label, else the detail's, else the name with spaces.
function label(key) {
  for (const prefix of ['field.', 'detail.']) {
    const s = t(prefix + key);
    if (s !== prefix + key) return s;
  }
  return key.replace(/_/g, ' ');
}

// shown is a param's or a detail's value as words, with its unit: times in
// the page's language and format, durations, sizes, yes and no, the names
// of choices.
function shown(key, v, ownerName, zone) {
  if (Array.isArray(v)) return v.map((x) => shown(key, x, ownerName, zone)).join(', ');
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  if (typeof v === 'boolean') return t(v ? 'yes' : 'no');
  if (/(_time|_at)$/.test(key)) return fmtTime(typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v, zone);
  if (typeof v === 'number') {
    if (key.endsWith('_ms')) return fmtDuration(v);
    if (key.endsWith('_bytes')) return fmtBytes(v);
    if (key === 'user_id' && ownerName) return ownerName(v);
    if (key.endsWith('_id') || key.endsWith('_code') || key === 'sequence') return String(v);
    return fmtInt(v);
  }
  const choice = `opt.${key}.${v}`;
  const named = t(choice);
  return named !== choice ? named : String(v);
}

// listOrder puts the names a form asks first in its order; the rest follow
// as they come.
const listOrder = ['format', 'start_time', 'end_time', 'user_id', 'key_id', 'provider_id', 'endpoint_id',
  'session_id', 'model', 'endpoint', 'status_code', 'exclude_status_200', 'min_retry_count', 'result',
  'search', 'max_lines', 'header_lang', 'timezone', 'mode', 'passed', 'backup_job_id'];

function rank(k) {
  const i = listOrder.indexOf(k);
  return i < 0 ? listOrder.length : i;
}

// fillList shows o's set values in dl, a name and its value each. Times are
// read in o's own timezone when it has one (the zone the export was asked
// in), so they read as they were typed.
function fillList(dl, o, keepFalse, ownerName) {
  clear(dl);
  const entries = Object.entries(o && typeof o === 'object' ? o : {});
  entries.sort(([a], [b]) => rank(a) - rank(b));
  const zone = o && typeof o.timezone === 'string' ? o.timezone : '';
  for (const [k, v] of entries) {
    if (v === '' || v === null || v === undefined || (v === false && !keepFalse)) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    dl.append(el('div', {}, el('dt', {}, label(k)), el('dd', {}, shown(k, v, ownerName, zone))));
  }
  dl.hidden = !dl.firstChild;
}

function fmtDuration(ms) {
  if (ms < 1000) return `${fmtInt(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return `${fmtInt(m)} min ${Math.round(s - m * 60)} s`;
}

// fmtTime is a time in the page's language, in the browser's zone or in
// zone (an IANA name) when given and known.
export function fmtTime(iso, zone) {
  if (!iso) return '—';
  const d = new Date(iso);
  const o = { dateStyle: 'medium', timeStyle: 'medium' };
  const locale = currentLang() === 'zh' ? 'zh-CN' : 'en';
  if (zone) {
    try {
      return new Intl.DateTimeFormat(locale, { ...o, timeZone: zone }).format(d);
    } catch { /* an unknown zone: the browser's */ }
  }
  return new Intl.DateTimeFormat(locale, o).format(d);
}

function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

function fmtInt(n) {
  return Number(n).toLocaleString(currentLang() === 'zh' ? 'zh-CN' : 'en');
}

// percentOf is what the bar shows: the API's percent, 100 once succeeded.
function percentOf(job) {
  if (job.status === 'succeeded') return 100;
  return job.progress && job.progress.percent ? job.progress.percent : 0;
}

export class JobList {
  constructor({ list, more, typeFilter, statusFilter, me, onUnauthorized, ownerName }) {
    Object.assign(this, { list, more, typeFilter, statusFilter, me, onUnauthorized, ownerName });
    this.entries = new Map();
    this.cursor = '';
    this.listError = el('p', { class: 'error', role: 'alert', hidden: true });
    this.list.before(this.listError);
    this.life = new AbortController();
    this.more.addEventListener('click', () => this.load(false));
    this.pollTimer = setInterval(() => this.poll(), pollEvery);
  }

  // stop ends every stream and timer (sign-out).
  stop() {
    this.listError.remove();
    this.life.abort();
    clearInterval(this.pollTimer);
    for (const e of this.entries.values()) if (e.stream) e.stream.abort();
  }

  query() {
    const q = new URLSearchParams({ limit: String(pageSize) });
    if (this.typeFilter.value) q.set('type', this.typeFilter.value);
    if (this.statusFilter.value) q.set('status', this.statusFilter.value);
    if (this.cursor) q.set('cursor', this.cursor);
    return q;
  }

  // load fetches the first page (fresh) or the next one.
  async load(fresh = true) {
    if (fresh) {
      for (const e of this.entries.values()) if (e.stream) e.stream.abort();
      this.entries.clear();
      this.cursor = '';
    }
    this.more.disabled = true;
    this.listError.hidden = true;
    try {
      const page = await api('GET', '/api/v1/exports?' + this.query());
      if (fresh) clear(this.list);
      for (const job of page.data) this.put(job, false);
      this.cursor = page.next_cursor || '';
      this.empty();
    } catch (err) {
      this.fail(err);
    } finally {
      this.more.disabled = false;
      this.more.hidden = !this.cursor;
    }
    this.follow();
  }

  empty() {
    const none = this.list.querySelector('.none');
    if (this.entries.size === 0 && !none) this.list.append(el('li', { class: 'none' }, t('noJobs')));
    if (this.entries.size > 0 && none) none.remove();
  }

  fail(err) {
    if (err instanceof ApiError && err.status === 401) return this.onUnauthorized(err);
    this.listError.textContent = describe(err);
    this.listError.hidden = false;
  }

  // add shows a job just created, at the top.
  add(job) {
    this.put(job, true);
    this.empty();
    this.follow();
  }

  put(job, atTop) {
    let e = this.entries.get(job.id);
    if (!e) {
      e = { job, node: this.card(job.id), stream: null };
      this.entries.set(job.id, e);
      if (atTop) this.list.prepend(e.node);
      else this.list.append(e.node);
    }
    this.update(job);
  }

  // follow starts event streams for active jobs, up to maxStreams.
  follow() {
    let streams = [...this.entries.values()].filter((e) => e.stream).length;
    for (const e of this.entries.values()) {
      if (streams >= maxStreams) break;
      if (!e.stream && !ended(e.job.status)) {
        this.stream(e);
        streams++;
      }
    }
  }

  async stream(e) {
    const ctl = new AbortController();
    e.stream = ctl;
    const stop = () => ctl.abort();
    this.life.signal.addEventListener('abort', stop, { once: true });
    let lastId = '';
    let failures = 0;
    while (!ctl.signal.aborted && !ended(e.job.status)) {
      try {
        lastId = await followJob(e.job.id, (job) => this.update(job), ctl.signal, lastId);
        failures = 0;
      } catch (err) {
        if (ctl.signal.aborted) break;
        if (err instanceof ApiError && err.status === 401) {
          this.onUnauthorized(err);
          break;
        }
        if (err instanceof ApiError && err.status === 404) break;
        failures++;
      }
      if (!ended(e.job.status)) await sleep(Math.min(1000 * 2 ** failures, 15000), ctl.signal);
    }
    if (e.stream === ctl) e.stream = null;
    if (!this.life.signal.aborted) this.follow();
  }

  // poll refreshes the active jobs that have no stream.
  async poll() {
    for (const e of this.entries.values()) {
      if (e.stream || ended(e.job.status)) continue;
      try {
        this.update(await api('GET', jobPath(e.job.id)));
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return this.onUnauthorized(err);
      }
    }
  }

  card(id) {
    const fact = (cls, label) => el('div', { class: 'fact ' + cls }, el('dt', {}, label), el('dd', {}));
    const node = el('li', { class: 'job', 'data-id': id },
      el('div', { class: 'job-head' },
        el('span', { class: 'type' }), el('span', { class: 'format' }), el('span', { class: 'status' }), el('code', { class: 'id' }, id)),
      el('dl', { class: 'kv job-params', hidden: true }),
      el('div', { class: 'progress' },
        el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, el('div', { class: 'fill' })),
        el('span', { class: 'percent' })),
      el('p', { class: 'note', hidden: true }),
      el('dl', { class: 'facts' },
        fact('rows', ''), fact('size', ''), fact('sha256', ''), fact('created', ''), fact('finished', ''), fact('owner', ''), fact('expires', '')),
      el('dl', { class: 'kv job-details', hidden: true }),
      el('p', { class: 'job-error', role: 'alert', hidden: true }),
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'download primary', hidden: true }),
        el('button', { type: 'button', class: 'cancel', hidden: true }),
        el('button', { type: 'button', class: 'delete danger', hidden: true }),
        el('button', { type: 'button', class: 'verify', hidden: true }),
        el('a', { class: 'link', rel: 'noreferrer', hidden: true })),
      el('p', { class: 'action-error', role: 'alert', hidden: true }));
    node.querySelector('.download').addEventListener('click', () => this.download(id));
    node.querySelector('.cancel').addEventListener('click', () => this.cancel(id, false));
    node.querySelector('.delete').addEventListener('click', () => this.cancel(id, true));
    node.querySelector('.verify').addEventListener('click', () => this.verify(id));
    return node;
  }

  // update shows job in its card; relabel redraws every card's words.
  update(job) {
    const e = this.entries.get(job.id);
    if (!e) return;
    e.job = job;
    const n = e.node;
    const q = (s) => n.querySelector(s);
    n.dataset.status = job.status;
    q('.type').textContent = t('type.' + job.type);
    q('.format').textContent = job.format;
    q('.status').textContent = t('status.' + job.status);
    q('.status').className = 'status status-' + job.status;

    const pct = percentOf(job);
    const p = job.progress || {};
    const unknown = !ended(job.status) && !(p.total > 0);
    const bar = q('.bar');
    bar.classList.toggle('indeterminate', unknown && job.status === 'running');
    bar.setAttribute('aria-valuenow', String(pct));
    q('.fill').style.width = pct + '%';
    q('.percent').textContent = `${pct.toFixed(pct === 100 || pct === 0 ? 0 : 1)}%`;
    const counts = p.done > 0 ? `${fmtInt(p.done)}${p.total > 0 ? ' / ' + fmtInt(p.total) : ''} ${p.unit || ''}`.trim() : '';
    const note = [p.note, ended(job.status) ? '' : counts].filter(Boolean).join(' · ');
    q('.note').textContent = note;
    q('.note').hidden = !note;

    // An unticked box is no choice; a detail's false (not passed, not
    // encrypted) is an answer.
    fillList(q('.job-params'), job.params, false, this.ownerName);

    const r = job.result;
    // A job without a file (a restore) has a result but nothing to download.
    const file = r && r.filename;
    fillList(q('.job-details'), r ? detailsShown(job.type, r.details) : null, true, this.ownerName);
    const set = (cls, label, value, title) => {
      const f = q('.fact.' + cls);
      f.hidden = value === undefined;
      f.querySelector('dt').textContent = label;
      const dd = f.querySelector('dd');
      dd.textContent = value === undefined ? '' : value;
      if (title) dd.title = title;
    };
    // Rows mean nothing for a dump, whose progress counts bytes.
    set('rows', t('rows'), r && (r.rows > 0 || p.unit !== 'bytes') ? fmtInt(r.rows) : undefined);
    set('size', t('size'), file ? fmtBytes(r.size_bytes) : undefined, file ? `${r.size_bytes} B` : '');
    set('sha256', t('sha256'), file ? r.sha256 : undefined);
    set('created', t('created'), fmtTime(job.created_at));
    set('finished', t('finished'), job.finished_at ? fmtTime(job.finished_at) : undefined);
    set('owner', t('owner'), this.me.admin ? this.ownerName(job.user_id) : undefined);
    set('expires', t('expires'), file && job.status === 'succeeded' ? fmtTime(r.expires_at) : undefined);

    const err = q('.job-error');
    err.hidden = !job.error;
    // error.detail, the raw cause, comes to administrators only.
    err.textContent = job.error ? job.error.message + (job.error.detail ? ' — ' + job.error.detail : '') : '';
    err.classList.toggle('soft', job.status !== 'failed');

    const dl = q('.download');
    dl.hidden = job.status !== 'succeeded' || !file;
    dl.textContent = t('download');
    const cancel = q('.cancel');
    cancel.hidden = ended(job.status);
    cancel.textContent = t('cancel');
    const del = q('.delete');
    del.hidden = job.status !== 'succeeded' || !file;
    del.textContent = t('deleteFile');
    const verify = q('.verify');
    verify.hidden = !(this.me.admin && job.type === 'database_backup' && job.status === 'succeeded');
    verify.textContent = t('verifyBackup');
    this.showLink(e);
  }

  // showLink shows the last download link asked for, worded in the page's
  // language now, until the job is no longer downloadable.
  showLink(e) {
    const a = e.node.querySelector('.link');
    if (e.job.status !== 'succeeded' || !e.link) {
      a.hidden = true;
      return;
    }
    a.href = e.link.url;
    a.textContent = t('linkReady', { time: fmtTime(e.link.expires_at) });
    a.hidden = false;
  }

  relabel() {
    for (const e of this.entries.values()) this.update(e.job);
    const none = this.list.querySelector('.none');
    if (none) none.textContent = t('noJobs');
  }

  actionError(id, err) {
    const e = this.entries.get(id);
    if (err instanceof ApiError && err.status === 401) return this.onUnauthorized(err);
    const p = e.node.querySelector('.action-error');
    p.textContent = err ? describe(err) : '';
    p.hidden = !err;
  }

  // download asks for a short-lived link, shows it, and follows it.
  async download(id) {
    const e = this.entries.get(id);
    this.actionError(id, null);
    try {
      e.link = await api('GET', jobPath(id) + '/download?redirect=false');
      this.showLink(e);
      const a = e.node.querySelector('.link');
      if (e.job.result) a.setAttribute('download', e.job.result.filename);
      a.click();
    } catch (err) {
      this.actionError(id, err);
      // A 409/410 means the job changed under us: show what it is now.
      if (err instanceof ApiError && (err.status === 409 || err.status === 410)) {
        try { this.update(await api('GET', jobPath(id))); } catch { /* the error above says enough */ }
      }
    }
  }

  // verify queues a restore drill of a succeeded backup and shows it.
  async verify(id) {
    this.actionError(id, null);
    try {
      this.add(await api('POST', '/api/v1/exports', { type: 'backup_verify', params: { backup_job_id: id } }));
    } catch (err) {
      this.actionError(id, err);
    }
  }

  // cancel stops an active job, or deletes a finished job's file.
  async cancel(id, deleting) {
    if (deleting && !window.confirm(t('confirmDelete'))) return;
    this.actionError(id, null);
    try {
      this.update(await api('DELETE', jobPath(id)));
    } catch (err) {
      this.actionError(id, err);
    }
  }
}
