// Calls to hubexport's API with the signed-in token. Errors carry the API's
// own words (error.message) and the fields at fault.

const tokenKey = 'hubexport.token';

export function token() {
  return sessionStorage.getItem(tokenKey) || '';
}

export function setToken(v) {
  if (v) sessionStorage.setItem(tokenKey, v);
  else sessionStorage.removeItem(tokenKey);
}

export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || {};
  }
}

// NetworkError: the server did not answer at all.
export class NetworkError extends Error {}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: a proxy's page, say
  }
  const e = body && body.error;
  if (e && e.message) return new ApiError(res.status, e.code, e.message, e.fields);
  return new ApiError(res.status, 'http_' + res.status, `HTTP ${res.status} ${res.statusText}`.trim());
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const tok = token();
  if (tok) h.Authorization = 'Bearer ' + tok;
  return h;
}

async function send(path, init) {
  try {
    return await fetch(path, { cache: 'no-store', credentials: 'omit', ...init });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new NetworkError(err.message);
  }
}

// api calls method path with an optional JSON body and returns the decoded
// answer, or throws ApiError / NetworkError.
export async function api(method, path, body, extraHeaders) {
  const init = { method, headers: headers(extraHeaders) };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await send(path, init);
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  return res.json();
}

export function jobPath(id) {
  return '/api/v1/exports/' + encodeURIComponent(id);
}

// followJob reads the job's server-sent events and calls onJob with each
// job object, until the stream ends or signal aborts. EventSource cannot send
// an Authorization header, so this reads the stream with fetch and parses
// the frames itself. It returns the last event id seen (for Last-Event-ID).
export async function followJob(id, onJob, signal, lastEventId) {
  const extra = { Accept: 'text/event-stream' };
  if (lastEventId) extra['Last-Event-ID'] = lastEventId;
  const res = await send(jobPath(id) + '/events', { headers: headers(extra), signal });
  if (!res.ok) throw await errorOf(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let lastId = lastEventId || '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      for (;;) {
        const m = /\r\n\r\n|\n\n|\r\r/.exec(buf);
        if (!m) break;
        const frame = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        const ev = parseFrame(frame);
        if (ev.id !== undefined) lastId = ev.id;
        if (ev.event === 'job' && ev.data !== '') onJob(JSON.parse(ev.data));
      }
    }
  } finally {
    reader.releaseLock();
  }
  return lastId;
}

// parseFrame reads one event's lines as the SSE standard says: comments
// start with ':', "field: value" drops one space, data lines join with \n.
export function parseFrame(frame) {
  const ev = { event: 'message', data: '' };
  const data = [];
  for (const line of frame.split(/\r\n|\n|\r/)) {
    if (line === '' || line.startsWith(':')) continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') ev.event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') ev.id = value;
  }
  ev.data = data.join('\n');
  return ev;
}
