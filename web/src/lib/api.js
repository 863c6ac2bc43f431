// The pages' pixplane client: where the API is, the caller's token, JSON calls with clear
// errors, and the live change stream (SSE) authenticated by single-use stream tickets.

const TOKEN_KEY = 'pixplane.token';

// The API's base URL: same origin by default; `#api=URL` (or window.PIXPLANE_API, set by an
// integrating page before the bundle loads) points the page at an API on another origin,
// which must list this page's origin in PIXPLANE_CORS_ORIGINS.
export function apiBase() {
  const h = new URLSearchParams(location.hash.slice(1));
  const b = h.get('api') || window.PIXPLANE_API || location.origin;
  return b.replace(/\/+$/, '');
}

// The caller's JWT. Order: the integrating app's hook (window.PIXPLANE_GET_TOKEN, an async
// function), `#token=JWT` in the fragment (never sent to any server, so never in a log;
// moved to sessionStorage and removed from the address bar), then sessionStorage.
export async function token() {
  if (typeof window.PIXPLANE_GET_TOKEN === 'function') return window.PIXPLANE_GET_TOKEN();
  const h = new URLSearchParams(location.hash.slice(1));
  const t = h.get('token');
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    h.delete('token');
    const rest = h.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t.trim());
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// The `sub` claim of the current token (display only: the server decides who the caller is).
export async function whoami() {
  const t = await token();
  try {
    const p = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(p)).sub || null;
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(status, body, headers) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.body = body;
    this.headers = headers;
  }
}

// Read-your-writes (docs/standby-reads.md): a write's answer carries the primary's WAL
// position in Pixplane-Read-After; every later call echoes the latest one seen (kept for the
// tab's session, across the pages), so a read the API would serve from a standby that has not
// replayed it goes to the primary instead.
const READ_AFTER = 'Pixplane-Read-After';
const READ_AFTER_KEY = 'pixplane.readAfter';

function lsnValue(text) {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text || '');
  return m ? (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]) : null;
}

function keepReadAfter(headers) {
  const seen = headers.get(READ_AFTER);
  const v = lsnValue(seen);
  const kept = lsnValue(sessionStorage.getItem(READ_AFTER_KEY));
  if (v !== null && (kept === null || v > kept)) sessionStorage.setItem(READ_AFTER_KEY, seen);
}

// One API call. `body` is sent as JSON; answers are parsed as JSON. A non-2xx answer
// throws ApiError (status, code, body); `ok` lists extra statuses treated as answers.
export async function call(method, path, body, { headers = {}, ok = [], signal } = {}) {
  const t = await token();
  const h = { ...headers };
  if (t) h.Authorization = 'Bearer ' + t;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const readAfter = sessionStorage.getItem(READ_AFTER_KEY);
  if (lsnValue(readAfter) !== null) h[READ_AFTER] = readAfter;
  const r = await fetch(apiBase() + path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  keepReadAfter(r.headers);
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!r.ok && !ok.includes(r.status)) throw new ApiError(r.status, json, r.headers);
  return { status: r.status, body: json, headers: r.headers };
}

// The change stream: EventSource on /sync/stream with a fresh single-use ticket for each
// connection (EventSource cannot send Authorization). Reconnects with backoff from the last
// cursor seen (`since`), so nothing is missed. onDelta(delta) gets each SyncDelta;
// onState('live' | 'reconnecting' | 'resync') reports the connection. Returns { close }.
export function liveStream(onDelta, onState = () => {}, since = null) {
  let es = null;
  let closed = false;
  let delay = 500;
  let cursor = since;
  let timer = null;

  const open = async () => {
    if (closed) return;
    try {
      const { body } = await call('POST', '/sync/stream-ticket');
      const q = new URLSearchParams({ ticket: body.ticket });
      if (cursor) q.set('since', cursor);
      es = new EventSource(apiBase() + '/sync/stream?' + q);
    } catch {
      return retry();
    }
    es.addEventListener('open', () => {
      delay = 500;
      onState('live');
    });
    es.addEventListener('sync', (ev) => {
      cursor = ev.lastEventId || cursor;
      onDelta(JSON.parse(ev.data));
    });
    es.addEventListener('error', (ev) => {
      let code = null;
      try {
        code = JSON.parse(ev.data).error.code;
      } catch {
        code = null;
      }
      if (code === 'full_resync_required') {
        cursor = null;
        onState('resync');
      }
      es.close(); // tickets are single-use: the next connection takes a fresh one
      retry();
    });
  };
  const retry = () => {
    if (closed) return;
    onState('reconnecting');
    timer = setTimeout(open, delay);
    delay = Math.min(delay * 2, 15000);
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (es) es.close();
    },
  };
}

export function fmtBytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}
