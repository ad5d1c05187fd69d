// The administrators' pages: webhook endpoints with their delivery logs, and
// the audit trail. Each page draws itself into its section when shown.

import { api, ApiError } from './api.js';
import { t } from './i18n.js';
import { el, clear } from './dom.js';
import { describe, fmtTime } from './jobs.js';
import { zonedToUTC, showFieldErrors, splitLines } from './forms.js';

const eventTypes = ['export.succeeded', 'export.failed', 'export.canceled', 'backup.overdue', 'backup.verified', 'backup.verify_failed'];
const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

function errorLine() {
  return el('p', { class: 'error', role: 'alert', hidden: true });
}

function showErr(node, err) {
  node.textContent = err ? describe(err) : '';
  node.hidden = !err;
}

function button(label, cls, onClick) {
  const b = el('button', { type: 'button', class: cls || '' }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await onClick();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// pager lists pages of path into list, with a "load more" button.
function pager(path, list, more, errLine, draw, onUnauthorized) {
  let cursor = '';
  const load = async (fresh) => {
    if (fresh) cursor = '';
    more.disabled = true;
    showErr(errLine, null);
    try {
      const sep = path().includes('?') ? '&' : '?';
      const page = await api('GET', path() + sep + 'limit=20' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      if (fresh) clear(list);
      for (const item of page.data) list.append(draw(item));
      if (fresh && page.data.length === 0) list.append(el('li', { class: 'none' }, t('nothingYet')));
      cursor = page.next_cursor || '';
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return onUnauthorized(err);
      showErr(errLine, err);
    } finally {
      more.disabled = false;
      more.hidden = !cursor;
    }
  };
  more.addEventListener('click', () => load(false));
  return load;
}

// ---- webhooks

export function webhooksPage(section, { onUnauthorized }) {
  clear(section);
  const guard = (err, line) => {
    if (err instanceof ApiError && err.status === 401) return onUnauthorized(err);
    showErr(line, err);
  };

  // The form to add an endpoint.
  const form = el('form', { id: 'webhook-form', novalidate: true });
  const url = el('input', { id: 'wh-url', name: 'url', type: 'url', placeholder: 'https://', autocomplete: 'off', spellcheck: 'false' });
  const desc = el('input', { id: 'wh-desc', name: 'description', type: 'text', autocomplete: 'off' });
  const enabled = el('input', { id: 'wh-enabled', name: 'enabled', type: 'checkbox', checked: true });
  const events = el('fieldset', { class: 'events' }, el('legend', {}, t('wh.events')),
    ...eventTypes.map((e) => el('label', { class: 'inline' }, el('input', { type: 'checkbox', name: 'events', value: e, checked: true }), ' ', e)));
  const formErr = errorLine();
  const secretBox = el('div', { class: 'secret', hidden: true });
  form.append(
    el('div', { class: 'grid' },
      el('div', { class: 'field' }, el('label', { for: 'wh-url' }, t('wh.url')), url),
      el('div', { class: 'field' }, el('label', { for: 'wh-desc' }, t('wh.description')), desc),
      el('div', { class: 'field check' }, enabled, el('label', { for: 'wh-enabled' }, t('wh.enabled')))),
    events,
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'primary' }, t('wh.add'))),
    formErr);

  const showSecret = (ep) => {
    clear(secretBox);
    secretBox.append(el('p', {}, t('wh.secretOnce', { url: ep.url })), el('code', { class: 'secret-value' }, ep.secret));
    secretBox.hidden = false;
  };

  const list = el('ul', { class: 'items', id: 'webhooks' });
  const more = el('button', { type: 'button', class: 'more', hidden: true }, t('loadMore'));
  const listErr = errorLine();

  const drawDelivery = (d, ep, line) => {
    const attempts = el('ol', { class: 'attempts' }, ...d.attempts.map((a) => el('li', {},
      `#${a.attempt} · ${fmtTime(a.at)} · ${a.status_code ? 'HTTP ' + a.status_code : '—'} · ${a.latency_ms} ms`,
      a.error ? el('span', { class: 'soft-error' }, ' · ' + a.error) : null)));
    const node = el('li', { class: 'item delivery', 'data-id': d.id },
      el('div', { class: 'item-head' },
        el('span', { class: 'title' }, d.event_type),
        el('span', { class: 'status status-' + d.status }, t('dstatus.' + d.status)),
        el('code', { class: 'id' }, d.id)),
      el('p', { class: 'meta' }, `${t('created')}: ${fmtTime(d.created_at)}`,
        d.next_attempt_at ? ` · ${t('wh.nextAttempt')}: ${fmtTime(d.next_attempt_at)}` : ''),
      attempts);
    node.append(el('div', { class: 'actions' }, button(t('wh.resend'), '', async () => {
      try {
        const again = await api('POST', `/api/v1/webhooks/${encodeURIComponent(ep.id)}/deliveries/${encodeURIComponent(d.id)}/resend`);
        node.replaceWith(drawDelivery(again, ep, line));
      } catch (err) {
        guard(err, line);
      }
    })));
    return node;
  };

  const drawEndpoint = (ep) => {
    const line = errorLine();
    const deliveries = el('ul', { class: 'items nested', hidden: true });
    const moreDeliveries = el('button', { type: 'button', class: 'more', hidden: true }, t('loadMore'));
    const deliveriesErr = errorLine();
    const loadDeliveries = pager(() => `/api/v1/webhooks/${encodeURIComponent(ep.id)}/deliveries`, deliveries, moreDeliveries, deliveriesErr,
      (d) => drawDelivery(d, ep, deliveriesErr), onUnauthorized);
    const node = el('li', { class: 'item webhook', 'data-id': ep.id });
    const redraw = (next) => node.replaceWith(drawEndpoint(next));
    const act = (label, cls, fn) => button(label, cls, async () => {
      showErr(line, null);
      try {
        await fn();
      } catch (err) {
        guard(err, line);
      }
    });
    const parts = [
      el('div', { class: 'item-head' },
        el('span', { class: 'title' }, ep.url),
        el('span', { class: 'status ' + (ep.enabled ? 'status-succeeded' : 'status-canceled') }, ep.enabled ? t('wh.on') : t('wh.off')),
        el('code', { class: 'id' }, ep.id)),
      ep.description ? el('p', {}, ep.description) : null,
      el('p', { class: 'meta' }, `${t('wh.events')}: ${ep.events.join(', ')} · ${t('created')}: ${fmtTime(ep.created_at)}`),
      ep.disabled_reason ? el('p', { class: 'job-error soft' }, ep.disabled_reason) : null,
      el('div', { class: 'actions' },
        act(ep.enabled ? t('wh.disable') : t('wh.enable'), '', async () => redraw(await api('PATCH', '/api/v1/webhooks/' + encodeURIComponent(ep.id), { enabled: !ep.enabled }))),
        act(t('wh.test'), '', async () => {
          await api('POST', `/api/v1/webhooks/${encodeURIComponent(ep.id)}/test`);
          deliveries.hidden = false;
          await loadDeliveries(true);
        }),
        act(t('wh.rotate'), '', async () => {
          if (!window.confirm(t('wh.confirmRotate'))) return;
          const next = await api('POST', `/api/v1/webhooks/${encodeURIComponent(ep.id)}/rotate`);
          showSecret(next);
          redraw(next);
        }),
        act(t('wh.deliveries'), 'toggle', async () => {
          deliveries.hidden = !deliveries.hidden;
          if (!deliveries.hidden) await loadDeliveries(true);
          else moreDeliveries.hidden = true;
        }),
        act(t('wh.delete'), 'danger', async () => {
          if (!window.confirm(t('wh.confirmDelete', { url: ep.url }))) return;
          await api('DELETE', '/api/v1/webhooks/' + encodeURIComponent(ep.id));
          node.remove();
        })),
      line, deliveriesErr, deliveries, moreDeliveries];
    node.append(...parts.filter(Boolean));
    return node;
  };

  const load = pager(() => '/api/v1/webhooks', list, more, listErr, drawEndpoint, onUnauthorized);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showErr(formErr, null);
    const body = {
      url: url.value.trim(),
      events: [...form.querySelectorAll('input[name="events"]:checked')].map((i) => i.value),
      description: desc.value.trim(),
      enabled: enabled.checked,
    };
    try {
      const ep = await api('POST', '/api/v1/webhooks', body);
      showSecret(ep);
      form.reset();
      await load(true);
    } catch (err) {
      guard(err, formErr);
    }
  });

  section.append(
    el('div', { class: 'card' }, el('h2', {}, t('wh.new')), el('p', { class: 'muted' }, t('wh.help')), form, secretBox),
    el('div', { class: 'card' },
      el('div', { class: 'list-head' }, el('h2', {}, t('pageWebhooks')), el('span', { class: 'spacer' }), button(t('refresh'), '', () => load(true))),
      listErr, list, more));
  load(true);
}

// ---- audit trail

export function auditPage(section, { onUnauthorized }) {
  clear(section);
  const field = (name, input) => el('div', { class: 'field' }, el('label', { for: 'au-' + name }, t('au.' + name)), input);
  const actor = el('input', { id: 'au-actor', type: 'text', placeholder: 'admin_token, user:2', autocomplete: 'off', spellcheck: 'false' });
  const action = el('input', { id: 'au-action', type: 'text', placeholder: 'export.create, webhook.*', autocomplete: 'off', spellcheck: 'false' });
  const since = el('input', { id: 'au-since', type: 'datetime-local', step: '1' });
  const until = el('input', { id: 'au-until', type: 'datetime-local', step: '1' });
  const form = el('form', { id: 'audit-form', novalidate: true },
    el('div', { class: 'grid' }, field('actor', actor), field('action', action), field('since', since), field('until', until)),
    el('p', { class: 'muted small' }, t('au.zone', { zone: browserZone })),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', class: 'primary' }, t('au.apply'))));
  const list = el('ul', { class: 'items', id: 'audit' });
  const more = el('button', { type: 'button', class: 'more', hidden: true }, t('loadMore'));
  const err = errorLine();

  const path = () => {
    const q = new URLSearchParams();
    if (actor.value.trim()) q.set('actor', actor.value.trim());
    if (action.value.trim()) q.set('action', action.value.trim());
    if (since.value) q.set('since', zonedToUTC(since.value, browserZone));
    if (until.value) q.set('until', zonedToUTC(until.value, browserZone));
    const s = q.toString();
    return '/api/v1/audit' + (s ? '?' + s : '');
  };
  const draw = (e) => el('li', { class: 'item audit-entry', 'data-id': String(e.id) },
    el('div', { class: 'item-head' },
      el('span', { class: 'title' }, e.action),
      el('span', { class: 'status ' + (e.outcome === 'ok' ? 'status-succeeded' : 'status-failed') }, e.outcome),
      el('span', { class: 'id' }, fmtTime(e.at))),
    el('p', { class: 'meta' }, `${e.actor}${e.target ? ' → ' + e.target : ''}${e.address ? ' · ' + e.address : ''}`),
    e.params && Object.keys(e.params).length ? el('code', { class: 'params' }, JSON.stringify(e.params)) : null);
  const load = pager(path, list, more, err, draw, onUnauthorized);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load(true);
  });
  section.append(
    el('div', { class: 'card' }, el('h2', {}, t('pageAudit')), form),
    el('div', { class: 'card' }, err, list, more));
  load(true);
}

// ---- schedules: backups, and exports of any type with a window

const backupModes = ['full', 'exclude_logs', 'ledger_only'];
// The types a schedule can make, their formats, and whether they take a
// window; users may schedule usage_logs only.
const scheduleTypes = {
  database_backup: { formats: ['dump'], admin: true, windows: false },
  usage_logs: { formats: ['csv', 'csv.gz', 'xlsx', 'jsonl', 'parquet'], admin: false, windows: true },
  probe_logs: { formats: ['txt'], admin: true, windows: true },
};
const scheduleWindows = ['', 'previous_hour', 'previous_day', 'previous_week', 'previous_month', 'since_last'];

// verifyText says a schedule's drill policy and how its last drill went.
function verifyText(sch) {
  const v = sch.verify || 'none';
  if (v === 'none') return '';
  const policy = typeof v === 'object' ? t('sc.verify.nth', { n: v.every_nth }) : t('sc.verify.' + v);
  const last = sch.last_verified_at ? fmtTime(sch.last_verified_at) : '—';
  return `${policy} · ${t('sc.lastVerified')}: ${last}`;
}

export function schedulesPage(section, { onUnauthorized, me }) {
  clear(section);
  const admin = !!(me && me.admin);
  let editing = null; // the schedule being edited, or null for a new one
  const input = (name, attrs) => el('input', { id: 'sc-' + name.replace('.', '-'), name, type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
  const name = input('name');
  const cron = input('cron', { placeholder: '0 3 * * *' });
  const tz = input('timezone', { value: browserZone });
  const mode = el('select', { id: 'sc-mode', name: 'mode' }, ...backupModes.map((m) => el('option', { value: m }, t('opt.mode.' + m))));
  const types = Object.keys(scheduleTypes).filter((k) => admin || !scheduleTypes[k].admin);
  const jobType = el('select', { id: 'sc-job-type', name: 'job.type' }, ...types.map((k) => el('option', { value: k }, k)));
  const jobFormat = el('select', { id: 'sc-job-format', name: 'job.format' });
  const windowSel = el('select', { id: 'sc-window', name: 'window' }, ...scheduleWindows.map((w) => el('option', { value: w }, w ? t('sc.window.' + w) : '—')));
  const jobParams = el('textarea', { id: 'sc-job-params', name: 'job.params', rows: '2', autocomplete: 'off', spellcheck: 'false', placeholder: '{"header_lang": "en"}' });
  const keepLast = input('retention.keep_last', { inputmode: 'numeric', value: '7' });
  const maxAge = input('retention.max_age_days', { inputmode: 'numeric', value: '0' });
  const calendar = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
  const keepPeriod = Object.fromEntries(calendar.map((p) => [p, input('retention.keep_' + p, { inputmode: 'numeric', value: '0' })]));
  const verify = el('select', { id: 'sc-verify', name: 'verify' }, ...['none', 'every', 'every_nth'].map((v) => el('option', { value: v }, t('sc.verify.' + v))));
  const verifyNth = input('verify.every_nth', { inputmode: 'numeric', value: '7' });
  const enabled = el('input', { id: 'sc-enabled', name: 'enabled', type: 'checkbox', checked: true });
  const encrypt = el('input', { id: 'sc-encrypt', name: 'encrypt', type: 'checkbox' });
  const recipients = el('textarea', { id: 'sc-age_recipients', name: 'age_recipients', rows: '2', autocomplete: 'off', spellcheck: 'false' });
  const field = (key, control, hint) => el('div', { class: control.tagName === 'TEXTAREA' ? 'field wide' : 'field', 'data-field': control.name },
    el('label', { for: control.id }, t(key)), control, hint ? el('small', {}, hint) : null, el('span', { class: 'field-error', hidden: true }));
  const title = el('h2', {}, t('sc.new'));
  const submit = el('button', { type: 'submit', class: 'primary' }, t('sc.create'));
  const stopEditing = el('button', { type: 'button', hidden: true }, t('sc.cancelEdit'));
  const formErr = errorLine();
  const form = el('form', { id: 'schedule-form', novalidate: true },
    el('div', { class: 'grid' },
      field('sc.name', name),
      field('sc.cron', cron, t('sc.cronHelp')),
      field('field.timezone', tz),
      field('sc.jobType', jobType),
      field('sc.jobFormat', jobFormat),
      field('sc.window', windowSel, t('sc.windowHelp')),
      field('sc.jobParams', jobParams, t('sc.jobParamsHelp')),
      field('field.mode', mode),
      field('sc.keepLast', keepLast),
      ...calendar.map((p) => field('sc.keep.' + p, keepPeriod[p], p === 'hourly' ? t('sc.keepPeriodHelp') : null)),
      field('sc.maxAgeDays', maxAge, t('sc.maxAgeHelp')),
      field('sc.verify', verify, t('sc.verifyHelp')),
      field('sc.verifyNth', verifyNth),
      el('div', { class: 'field check', 'data-field': 'enabled' }, enabled, el('label', { for: 'sc-enabled' }, t('wh.enabled'))),
      el('div', { class: 'field check', 'data-field': 'encrypt' }, encrypt, el('label', { for: 'sc-encrypt' }, t('field.encrypt')),
        el('span', { class: 'field-error', hidden: true })),
      field('field.age_recipients', recipients, t('recipientsHint'))),
    el('div', { class: 'form-actions actions' }, submit, stopEditing),
    formErr);

  // Only the chosen type's fields show: a backup's mode, drills and
  // encryption; another type's format, window and params.
  const showType = (keepFormat) => {
    const spec = scheduleTypes[jobType.value] || scheduleTypes.usage_logs;
    const backup = jobType.value === 'database_backup';
    const was = jobFormat.value;
    clear(jobFormat);
    jobFormat.append(...spec.formats.map((f) => el('option', { value: f }, f)));
    if (keepFormat && spec.formats.includes(keepFormat)) jobFormat.value = keepFormat;
    else if (spec.formats.includes(was)) jobFormat.value = was;
    for (const n of ['mode', 'verify', 'verify.every_nth', 'encrypt', 'age_recipients']) {
      const f = form.querySelector(`[data-field="${n}"]`);
      if (f) f.hidden = !backup;
    }
    for (const n of ['job.format', 'job.params']) form.querySelector(`[data-field="${n}"]`).hidden = backup;
    form.querySelector('[data-field="window"]').hidden = !spec.windows;
  };
  jobType.addEventListener('change', () => showType());
  jobType.value = admin ? 'database_backup' : 'usage_logs';

  const edit = (sch) => {
    editing = sch;
    title.textContent = sch ? t('sc.edit', { name: sch.name }) : t('sc.new');
    submit.textContent = sch ? t('sc.save') : t('sc.create');
    stopEditing.hidden = !sch;
    form.reset();
    jobType.disabled = !!sch;
    jobType.value = admin ? 'database_backup' : 'usage_logs';
    showType();
    if (sch) {
      const job = sch.job || { type: 'database_backup', format: 'dump' };
      jobType.value = job.type;
      showType(job.format);
      windowSel.value = sch.window || '';
      jobParams.value = job.params && Object.keys(job.params).length ? JSON.stringify(job.params) : '';
      name.value = sch.name;
      cron.value = sch.cron;
      tz.value = sch.timezone;
      if (sch.mode) mode.value = sch.mode;
      keepLast.value = String(sch.retention.keep_last);
      maxAge.value = String(sch.retention.max_age_days);
      for (const p of calendar) keepPeriod[p].value = String(sch.retention['keep_' + p] || 0);
      const v = sch.verify || 'none';
      verify.value = typeof v === 'string' ? v : 'every_nth';
      if (typeof v === 'object') verifyNth.value = String(v.every_nth);
      enabled.checked = sch.enabled;
      encrypt.checked = sch.encrypt;
      recipients.value = (sch.age_recipients || []).join('\n');
      form.scrollIntoView({ block: 'nearest' });
    }
    showFieldErrors(form, {});
    showErr(formErr, null);
  };
  stopEditing.addEventListener('click', () => edit(null));

  const list = el('ul', { class: 'items', id: 'schedules' });
  const more = el('button', { type: 'button', class: 'more', hidden: true }, t('loadMore'));
  const listErr = errorLine();

  const draw = (sch) => {
    const line = errorLine();
    const node = el('li', { class: 'item schedule', 'data-id': sch.id });
    const act = (label, cls, fn) => button(label, cls, async () => {
      showErr(line, null);
      try {
        await fn();
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return onUnauthorized(err);
        showErr(line, err);
      }
    });
    const r = sch.retention;
    const when = [
      sch.next_run_at ? `${t('sc.nextRun')}: ${fmtTime(sch.next_run_at)}` : '',
      `${t('sc.lastSuccess')}: ${sch.last_success_at ? fmtTime(sch.last_success_at) : '—'}`,
      verifyText(sch),
    ].filter(Boolean).join(' · ');
    const drillFailed = sch.last_verify && !sch.last_verify.passed;
    node.append(...[
      el('div', { class: 'item-head' },
        el('span', { class: 'title' }, sch.name),
        el('span', { class: 'status ' + (sch.enabled ? 'status-succeeded' : 'status-canceled') }, sch.enabled ? t('wh.on') : t('wh.off')),
        sch.overdue_since ? el('span', { class: 'status status-failed' }, t('sc.overdue')) : null,
        sch.encrypt ? el('span', { class: 'status status-succeeded' }, t('sc.encrypted')) : null,
        drillFailed ? el('span', { class: 'status status-failed verify-failed' }, t('sc.verifyFailed')) : null,
        el('code', { class: 'id' }, sch.id)),
      el('p', { class: 'meta' }, `${sch.cron} (${sch.timezone}) · ${sch.job && sch.job.type !== 'database_backup' ? `${sch.job.type} ${sch.job.format}${sch.window ? ' · ' + t('sc.window.' + sch.window) : ''}` : t('opt.mode.' + sch.mode)} · ${t('sc.retention', { n: r.keep_last })}${calendar.filter((p) => r['keep_' + p]).map((p) => ' · ' + t('sc.keeps.' + p, { n: r['keep_' + p] })).join('')}${r.max_age_days ? ' · ' + t('sc.maxAge', { d: r.max_age_days }) : ''}`),
      el('p', { class: 'meta' }, when),
      sch.overdue_since ? el('p', { class: 'job-error' }, t('sc.overdueSince', { time: fmtTime(sch.overdue_since) })) : null,
      sch.disabled_reason ? el('p', { class: 'job-error disabled-reason' }, sch.disabled_reason) : null,
      drillFailed ? el('p', { class: 'job-error' }, t('sc.verifyFailedAt', { time: fmtTime(sch.last_verify.at), job: sch.last_verify.job_id })) : null,
      el('div', { class: 'actions' },
        act(t('sc.editButton'), '', async () => edit(sch)),
        act(sch.enabled ? t('wh.disable') : t('wh.enable'), '', async () => {
          node.replaceWith(draw(await api('PATCH', '/api/v1/schedules/' + encodeURIComponent(sch.id), { enabled: !sch.enabled })));
        }),
        act(t('wh.delete'), 'danger', async () => {
          if (!window.confirm(t('sc.confirmDelete', { name: sch.name }))) return;
          await api('DELETE', '/api/v1/schedules/' + encodeURIComponent(sch.id));
          node.remove();
          if (editing && editing.id === sch.id) edit(null);
        })),
      line,
    ].filter(Boolean));
    return node;
  };
  const load = pager(() => '/api/v1/schedules', list, more, listErr, draw, onUnauthorized);

  const int = (v) => (/^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v.trim());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showErr(formErr, null);
    showFieldErrors(form, {});
    const backup = jobType.value === 'database_backup';
    let params = {};
    if (!backup && jobParams.value.trim()) {
      try {
        params = JSON.parse(jobParams.value);
      } catch {
        showFieldErrors(form, { 'job.params': t('sc.jobParamsBad') });
        return;
      }
    }
    const body = {
      name: name.value.trim(),
      cron: cron.value.trim(),
      timezone: tz.value.trim(),
      retention: {
        keep_last: int(keepLast.value),
        ...Object.fromEntries(calendar.map((p) => ['keep_' + p, int(keepPeriod[p].value)])),
        max_age_days: int(maxAge.value),
      },
      enabled: enabled.checked,
    };
    if (backup) {
      body.mode = mode.value;
      body.verify = verify.value === 'every_nth' ? { every_nth: int(verifyNth.value) } : verify.value;
      // The schedule's own recipients, replaced whole; unchecked encrypt is
      // left out, so a server whose policy encrypts never sees false.
      body.age_recipients = splitLines(recipients.value);
      if (encrypt.checked) body.encrypt = true;
    } else {
      body.job = { type: jobType.value, format: jobFormat.value, params };
      if (scheduleTypes[jobType.value].windows) body.window = windowSel.value;
    }
    try {
      if (editing) await api('PATCH', '/api/v1/schedules/' + encodeURIComponent(editing.id), body);
      else await api('POST', '/api/v1/schedules', body);
      edit(null);
      await load(true);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return onUnauthorized(err);
      if (err instanceof ApiError) showFieldErrors(form, err.fields);
      showErr(formErr, err);
    }
  });

  showType();
  section.append(
    el('div', { class: 'card' }, title, el('p', { class: 'muted' }, t('sc.help')), form),
    el('div', { class: 'card' },
      el('div', { class: 'list-head' }, el('h2', {}, t('pageSchedules')), el('span', { class: 'spacer' }), button(t('refresh'), '', () => load(true))),
      listErr, list, more));
  load(true);
}
