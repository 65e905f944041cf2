// Talking to the app's JSON API from a signed-in page: the session cookie travels by itself,
// state-changing requests repeat the page's CSRF token, and X-Requested-With asks for a bare 401
// instead of a sign-in redirect or a Basic prompt.
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

export class ApiError extends Error {
  constructor(status, detail, problem) {
    super(detail);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(path, { method = 'GET', body, type, keepalive = false } = {}) {
  const headers = { 'X-Requested-With': 'prefloop', Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
  if (body !== undefined && typeof body !== 'string') {
    body = JSON.stringify(body);
    type = type ?? 'application/json';
  }
  if (type) headers['Content-Type'] = type;
  const res = await fetch(path, { method, headers, body, keepalive, credentials: 'same-origin' });
  if (res.status === 401) {
    location.assign('/login?next=' + encodeURIComponent(location.pathname));
    throw new ApiError(401, 'signed out');
  }
  if (!res.ok) {
    let problem = null;
    try { problem = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, problem?.detail ?? problem?.title ?? res.statusText, problem);
  }
  if (res.status === 204) return null;
  return (res.headers.get('content-type') ?? '').includes('json') ? res.json() : res.text();
}

export function csrfToken() {
  return csrf;
}

/** A UUID even outside a secure context (crypto.randomUUID needs HTTPS or localhost). */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

document.getElementById('sign-out')?.addEventListener('click', async () => {
  try { await api('/logout', { method: 'POST' }); } finally { location.assign('/login'); }
});
