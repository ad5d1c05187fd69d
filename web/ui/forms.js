// One form per export type, built from a short description of its fields.
// Field names are the API's params names, so the API's field errors
// ("params.start_time") point back at the input.

import { api } from './api.js';
import { t } from './i18n.js';
import { el, clear } from './dom.js';

const commonEndpoints = ['/v1/messages', '/v1/messages/count_tokens', '/v1/chat/completions', '/v1/responses', '/v1/responses/compact'];

// The export types the page knows. adminOnly types are never shown to a
// user; a type the server does not run (per /me) is not shown either.
export const exportTypes = [
  {
    type: 'usage_logs',
    formats: ['csv', 'csv.gz', 'xlsx', 'jsonl', 'parquet'],
    fields: [
      { name: 'start_time', kind: 'datetime' },
      { name: 'end_time', kind: 'datetime' },
      { name: 'user_id', kind: 'select', source: 'users', admin: true },
      { name: 'key_id', kind: 'select', source: 'keys' },
      { name: 'provider_id', kind: 'select', source: 'providers', admin: true },
      { name: 'session_id', kind: 'text', max: 64 },
      { name: 'model', kind: 'text', max: 128 },
      { name: 'endpoint', kind: 'text', max: 256, suggest: commonEndpoints },
      { name: 'status_code', kind: 'int', min: 100, max: 599 },
      { name: 'exclude_status_200', kind: 'check' },
      { name: 'min_retry_count', kind: 'int', min: 0 },
      { name: 'header_lang', kind: 'choice', options: ['zh', 'en'], uiLang: true },
      { name: 'timezone', kind: 'timezone' },
    ],
  },
  {
    type: 'probe_logs',
    adminOnly: true,
    fields: [
      { name: 'endpoint_id', kind: 'select', source: 'endpoints' },
      { name: 'result', kind: 'choice', options: ['all', 'ok', 'fail'] },
      { name: 'search', kind: 'text', max: 256 },
      { name: 'max_lines', kind: 'int', min: 1, max: 100000, value: 100 },
      { name: 'start_time', kind: 'datetime' },
      { name: 'end_time', kind: 'datetime' },
      { name: 'timezone', kind: 'timezone' },
    ],
  },
  {
    type: 'database_backup',
    adminOnly: true,
    fields: [
      { name: 'mode', kind: 'choice', options: ['full', 'exclude_logs', 'ledger_only'] },
      // Unchecked sends nothing: the server's policy may encrypt anyway, and
      // encrypt:false is refused where it does.
      { name: 'encrypt', kind: 'check' },
      { name: 'age_recipients', kind: 'lines', hint: 'recipientsHint' },
    ],
  },
  {
    type: 'session_request',
    adminOnly: true,
    fields: [
      { name: 'session_id', kind: 'text', max: 64, required: true },
      { name: 'sequence', kind: 'int', min: 1 },
      { name: 'view', kind: 'choice', options: ['after', 'before'] },
      { name: 'whole_session', kind: 'check' },
    ],
  },
];

// visibleTypes are the types me may ask for.
export function visibleTypes(me) {
  return exportTypes.filter(
    (x) => (me.admin || !x.adminOnly) && (!Array.isArray(me.export_types) || me.export_types.includes(x.type)),
  );
}

const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
let zoneList = null;
function zones() {
  if (!zoneList) {
    zoneList = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
    if (!zoneList.includes('UTC')) zoneList = ['UTC', ...zoneList];
  }
  return zoneList;
}

// Lists behind the selectors, loaded once per sign-in.
const cache = new Map();
export function forgetLookups() {
  cache.clear();
}
export function lookup(path) {
  if (!cache.has(path)) {
    const p = api('GET', path).then((r) => r.data);
    p.catch(() => cache.delete(path));
    cache.set(path, p);
  }
  return cache.get(path);
}

function flags(item) {
  const f = [];
  if (item.deleted) f.push(t('deleted'));
  else if (item.enabled === false) f.push(t('disabled'));
  return f.length ? ` (${f.join(', ')})` : '';
}

const sources = {
  users: { path: () => '/api/v1/hub/users', all: 'opt.allUsers', label: (u) => `${u.name} #${u.id}${flags(u)}` },
  keys: {
    path: (form) => {
      const uid = form.elements.user_id && form.elements.user_id.value;
      return '/api/v1/hub/keys' + (uid ? '?user_id=' + encodeURIComponent(uid) : '');
    },
    all: 'opt.allKeys',
    label: (k) => `${k.name} #${k.id}${flags(k)}`,
  },
  providers: {
    path: () => '/api/v1/hub/providers',
    all: 'opt.allProviders',
    extra: [{ value: '0', label: 'opt.noProvider' }],
    label: (p) => `${p.name} #${p.id}${flags(p)}`,
  },
  endpoints: {
    path: () => '/api/v1/hub/endpoints',
    all: 'opt.allEndpoints',
    label: (e) => `#${e.id} ${e.label || e.vendor} · ${e.url}${flags(e)}`,
  },
};

async function fillSelect(select, source, form) {
  const src = sources[source];
  const keep = select.dataset.want || select.value;
  delete select.dataset.want;
  clear(select);
  select.append(el('option', { value: '' }, t(src.all)));
  for (const x of src.extra || []) select.append(el('option', { value: x.value }, t(x.label)));
  select.disabled = true;
  const loading = el('option', { value: '', disabled: true }, t('loading'));
  select.append(loading);
  try {
    const list = await lookup(src.path(form));
    loading.remove();
    for (const item of list) select.append(el('option', { value: String(item.id) }, src.label(item)));
    select.value = [...select.options].some((o) => o.value === keep) ? keep : '';
  } catch (err) {
    loading.textContent = t('loadFailed', { message: err.message });
  } finally {
    select.disabled = false;
  }
}

function field(spec, me, form) {
  const id = 'f-' + spec.name;
  const label = el('label', { for: id }, t('field.' + spec.name));
  let input;
  switch (spec.kind) {
    case 'datetime':
      input = el('input', { id, name: spec.name, type: 'datetime-local', step: '1' });
      break;
    case 'text':
      input = el('input', { id, name: spec.name, type: 'text', maxlength: String(spec.max), autocomplete: 'off', spellcheck: 'false' });
      if (spec.required) input.required = true;
      if (spec.suggest) {
        const list = el('datalist', { id: id + '-list' }, ...spec.suggest.map((v) => el('option', { value: v })));
        input.setAttribute('list', list.id);
        label.append(list);
      }
      break;
    case 'int':
      // A text box, not type=number: a number box hides what was typed when
      // it is not a number, and the API should be the one to say what is wrong.
      input = el('input', { id, name: spec.name, type: 'text', inputmode: 'numeric', autocomplete: 'off' });
      if (spec.value !== undefined) input.value = String(spec.value);
      break;
    case 'check':
      input = el('input', { id, name: spec.name, type: 'checkbox' });
      return el('div', { class: 'field check', 'data-field': spec.name }, input, label, el('span', { class: 'field-error', hidden: true }));
    case 'lines':
      input = el('textarea', { id, name: spec.name, rows: '2', autocomplete: 'off', spellcheck: 'false' });
      return el('div', { class: 'field wide', 'data-field': spec.name }, label, input, spec.hint ? el('small', {}, t(spec.hint)) : null,
        el('span', { class: 'field-error', hidden: true }));
    case 'choice':
      input = el('select', { id, name: spec.name }, ...spec.options.map((o) => el('option', { value: o }, t(`opt.${spec.name}.${o}`))));
      if (spec.uiLang && spec.options.includes(document.documentElement.lang.slice(0, 2))) input.value = document.documentElement.lang.slice(0, 2);
      break;
    case 'select':
      input = el('select', { id, name: spec.name });
      fillSelect(input, spec.source, form);
      break;
    case 'timezone': {
      input = el('input', { id, name: spec.name, type: 'text', value: browserZone, autocomplete: 'off', spellcheck: 'false' });
      const list = el('datalist', { id: id + '-list' }, ...zones().map((z) => el('option', { value: z })));
      input.setAttribute('list', list.id);
      label.append(list);
      return el('div', { class: 'field', 'data-field': spec.name }, label, input, el('small', {}, t('tzHint')), el('span', { class: 'field-error', hidden: true }));
    }
  }
  return el('div', { class: 'field', 'data-field': spec.name }, label, input, el('span', { class: 'field-error', hidden: true }));
}

// buildForm fills form with the fields of type x for me.
export function buildForm(form, x, me) {
  clear(form);
  form.dataset.type = x.type;
  const grid = el('div', { class: 'grid' });
  if (x.formats) {
    grid.append(
      el('div', { class: 'field', 'data-field': 'format' },
        el('label', { for: 'f-format' }, t('field.format')),
        el('select', { id: 'f-format', name: 'format' }, ...x.formats.map((f) => el('option', { value: f }, f))),
        el('span', { class: 'field-error', hidden: true })),
    );
  }
  for (const spec of x.fields) {
    if (spec.admin && !me.admin) continue;
    grid.append(field(spec, me, form));
  }
  form.append(grid);
  // An admin's key list follows the chosen user.
  if (form.elements.user_id && form.elements.key_id) {
    form.elements.user_id.addEventListener('change', () => fillSelect(form.elements.key_id, 'keys', form));
  }
}

// request reads the form into the API's create body.
export function request(form, x) {
  const params = {};
  const tz = form.elements.timezone ? form.elements.timezone.value.trim() : '';
  for (const spec of x.fields) {
    const input = form.elements[spec.name];
    if (!input) continue;
    switch (spec.kind) {
      case 'check':
        if (input.checked) params[spec.name] = true;
        break;
      case 'int': {
        const v = input.value.trim();
        if (v !== '') params[spec.name] = /^-?\d+$/.test(v) ? Number(v) : v;
        break;
      }
      case 'select':
        if (input.value !== '') params[spec.name] = Number(input.value);
        break;
      case 'lines': {
        const lines = splitLines(input.value);
        if (lines.length) params[spec.name] = lines;
        break;
      }
      case 'datetime':
        if (input.value) params[spec.name] = zonedToUTC(input.value, tz || 'UTC');
        break;
      default:
        if (input.value.trim() !== '') params[spec.name] = input.value.trim();
    }
  }
  const body = { type: x.type, params };
  if (form.elements.format) body.format = form.elements.format.value;
  return body;
}

// splitLines reads one value per line, skipping blank lines and # comments.
export function splitLines(text) {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

// showFieldErrors marks the inputs the API named ("params.start_time" or
// "format") with its words; it returns the fields it could not place.
export function showFieldErrors(form, fields) {
  for (const e of form.querySelectorAll('.field-error')) {
    e.hidden = true;
    e.textContent = '';
  }
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
  const rest = {};
  for (const [name, msg] of Object.entries(fields || {})) {
    // "params.age_recipients[1]" is the age_recipients box.
    const box = form.querySelector(`[data-field="${CSS.escape(name.replace(/^params\./, '').replace(/\[\d+\]$/, ''))}"]`);
    if (!box) {
      rest[name] = msg;
      continue;
    }
    const err = box.querySelector('.field-error');
    err.textContent = msg;
    err.hidden = false;
    const input = box.querySelector('input, select, textarea');
    if (input) input.setAttribute('aria-invalid', 'true');
  }
  return rest;
}

// tzOffset is how far zone tz is ahead of UTC at instant ms, in ms.
function tzOffset(ms, tz) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(new Date(ms));
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  return wall - (ms - (((ms % 1000) + 1000) % 1000));
}

// zonedToUTC reads a datetime-local value as a wall-clock time in zone tz
// and returns the instant in RFC 3339 (UTC). An unknown zone is left for the
// API to reject: the time is then read as UTC.
export function zonedToUTC(local, tz) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?$/.exec(local);
  if (!m) return local;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0), Math.floor(+`0.${m[7] || 0}` * 1000));
  let ms = wall;
  try {
    ms = wall - tzOffset(wall, tz);
    ms = wall - tzOffset(ms, tz); // again, in case the offset changes in between (DST)
  } catch {
    ms = wall;
  }
  return new Date(ms).toISOString();
}
