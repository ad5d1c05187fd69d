// hubexport's page: sign in, request exports, follow and download them.

import { api, ApiError, setToken, token } from './api.js';
import { t, translate, setLang, currentLang } from './i18n.js';
import { el, clear } from './dom.js';
import { buildForm, request, showFieldErrors, visibleTypes, forgetLookups, lookup } from './forms.js';
import { JobList, describe } from './jobs.js';
import { schedulesPage, webhooksPage, auditPage } from './admin.js';

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  types: [],
  type: null,
  jobs: null,
  page: 'exports',
  users: new Map(), // id → name, for the owner column of an admin's list
};

// The pages; admin pages are shown to administrators only. mount draws a
// page each time it is shown.
const pages = [
  { id: 'exports', label: 'pageExports', admin: false },
  { id: 'schedules', label: 'pageSchedules', admin: false, mount: schedulesPage },
  { id: 'webhooks', label: 'pageWebhooks', admin: true, mount: webhooksPage },
  { id: 'audit', label: 'pageAudit', admin: true, mount: auditPage },
];

function randomKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

function showError(node, err) {
  node.textContent = err ? describe(err) : '';
  node.hidden = !err;
}

// ---- sign in and out

async function signIn(tok, quiet) {
  setToken(tok);
  try {
    state.me = await api('GET', '/api/v1/me');
  } catch (err) {
    setToken('');
    showSignIn(quiet && err instanceof ApiError && err.status === 401 ? null : err);
    return;
  }
  showApp();
}

function signOut(err) {
  setToken('');
  if (state.jobs) state.jobs.stop();
  state.jobs = null;
  state.me = null;
  state.users.clear();
  forgetLookups();
  showSignIn(err || null);
}

function showSignIn(err) {
  $('token').value = '';
  $('signin-view').hidden = false;
  for (const p of pages) {
    $('page-' + p.id).hidden = true;
    if (p.mount) clear($('page-' + p.id));
  }
  $('nav').hidden = true;
  $('whoami').hidden = true;
  $('signout').hidden = true;
  showError($('signin-error'), err);
  $('token').focus();
}

function showApp() {
  $('signin-view').hidden = true;
  showError($('signin-error'), null);
  $('signout').hidden = false;
  state.types = visibleTypes(state.me);
  if (!state.types.some((x) => x.type === state.type)) state.type = state.types.length ? state.types[0].type : null;
  renderChrome();
  renderTypes();
  renderForm();
  renderFilters();
  state.jobs = new JobList({
    list: $('jobs'),
    more: $('more'),
    typeFilter: $('filter-type'),
    statusFilter: $('filter-status'),
    me: state.me,
    onUnauthorized: (err) => signOut(err),
    ownerName,
  });
  if (state.me.admin) {
    lookup('/api/v1/hub/users').then((users) => {
      for (const u of users) state.users.set(u.id, u.name);
      if (state.jobs) state.jobs.relabel();
    }, () => {});
  }
  state.jobs.load();
  showPage(state.page);
}

function ownerName(id) {
  if (id === -1) return 'Admin Token';
  const name = state.users.get(id);
  return name ? `${name} #${id}` : `#${id}`;
}

// ---- header, navigation, pages

function renderChrome() {
  const me = state.me;
  const who = $('whoami');
  clear(who);
  if (me) {
    who.append(el('span', { class: 'who-name' }, me.name), el('span', { class: 'who-key' }, me.key_name));
    if (me.admin) who.append(el('span', { class: 'badge' }, t('adminBadge')));
    who.hidden = false;
  }
  const nav = $('nav');
  clear(nav);
  const visible = pages.filter((p) => !p.admin || (me && me.admin));
  for (const p of visible) {
    const a = el('a', { href: '#' + p.id, 'data-page': p.id }, t(p.label));
    if (p.id === state.page) a.setAttribute('aria-current', 'page');
    nav.append(a);
  }
  nav.hidden = !me || visible.length < 2;
}

function showPage(id) {
  const page = pages.find((p) => p.id === id && (!p.admin || state.me.admin)) || pages[0];
  state.page = page.id;
  for (const p of pages) {
    const node = $('page-' + p.id);
    if (p.id !== page.id) {
      node.hidden = true;
      if (p.mount) clear(node);
    }
  }
  const node = $('page-' + page.id);
  if (page.mount) page.mount(node, { onUnauthorized: (err) => signOut(err), me: state.me });
  node.hidden = false;
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.dataset.page === page.id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---- the export form

function renderTypes() {
  const tabs = $('type-tabs');
  clear(tabs);
  for (const x of state.types) {
    const b = el('button', { type: 'button', role: 'tab', 'data-type': x.type, 'aria-selected': String(x.type === state.type) }, t('type.' + x.type));
    b.addEventListener('click', () => {
      if (state.type === x.type) return;
      state.type = x.type;
      renderTypes();
      renderForm();
    });
    tabs.append(b);
  }
  $('no-types').hidden = state.types.length > 0;
  $('create').hidden = state.types.length === 0;
}

function formValues(form) {
  const v = {};
  for (const i of form.elements) if (i.name) v[i.name] = i.type === 'checkbox' ? i.checked : i.value;
  return v;
}

function renderForm(keep) {
  const form = $('export-form');
  showError($('create-error'), null);
  const x = state.types.find((y) => y.type === state.type);
  if (!x) {
    clear(form);
    return;
  }
  buildForm(form, x, state.me);
  if (keep && keep.type === x.type) {
    for (const i of form.elements) {
      if (!(i.name in keep.values)) continue;
      if (i.type === 'checkbox') i.checked = keep.values[i.name];
      else {
        i.value = keep.values[i.name];
        if (i.tagName === 'SELECT') i.dataset.want = keep.values[i.name];
      }
    }
  }
}

async function submitExport(ev) {
  ev.preventDefault();
  const form = $('export-form');
  const x = state.types.find((y) => y.type === state.type);
  if (!x) return;
  const button = $('create');
  button.disabled = true;
  button.textContent = t('creating');
  showError($('create-error'), null);
  showFieldErrors(form, {});
  try {
    const job = await api('POST', '/api/v1/exports', request(form, x), { 'Idempotency-Key': randomKey() });
    state.jobs.add(job);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut(err);
    if (err instanceof ApiError) showFieldErrors(form, err.fields);
    showError($('create-error'), err);
  } finally {
    button.disabled = false;
    button.textContent = t('create');
  }
}

// ---- job list filters

function renderFilters() {
  const type = $('filter-type');
  const status = $('filter-status');
  const keepType = type.value;
  const keepStatus = status.value;
  clear(type);
  type.append(el('option', { value: '' }, t('anyType')));
  for (const x of state.types) type.append(el('option', { value: x.type }, t('type.' + x.type)));
  type.value = keepType;
  clear(status);
  status.append(el('option', { value: '' }, t('anyStatus')));
  for (const s of ['queued', 'running', 'succeeded', 'failed', 'canceled', 'expired']) status.append(el('option', { value: s }, t('status.' + s)));
  status.value = keepStatus;
}

// ---- language

function renderLang() {
  $('lang').textContent = t('otherLang');
  translate();
}

function switchLang() {
  setLang(currentLang() === 'zh' ? 'en' : 'zh');
  renderLang();
  if (!state.me) return;
  const form = $('export-form');
  const keep = { type: form.dataset.type, values: formValues(form) };
  renderChrome();
  renderTypes();
  renderForm(keep);
  renderFilters();
  if (state.jobs) state.jobs.relabel();
  if (state.page !== 'exports') showPage(state.page);
}

// ---- start

function boot() {
  renderLang();
  $('lang').addEventListener('click', switchLang);
  $('signout').addEventListener('click', () => signOut());
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const tok = $('token').value.trim();
    if (tok) signIn(tok, false);
  });
  $('export-form').addEventListener('submit', submitExport);
  $('refresh').addEventListener('click', () => state.jobs && state.jobs.load());
  $('filter-type').addEventListener('change', () => state.jobs && state.jobs.load());
  $('filter-status').addEventListener('change', () => state.jobs && state.jobs.load());
  $('nav').addEventListener('click', (ev) => {
    const a = ev.target.closest('a[data-page]');
    if (!a) return;
    ev.preventDefault();
    history.replaceState(null, '', '#' + a.dataset.page);
    showPage(a.dataset.page);
  });
  if (location.hash.length > 1) state.page = location.hash.slice(1);
  if (token()) signIn(token(), true);
  else showSignIn(null);
}

boot();
