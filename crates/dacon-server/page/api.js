// The server's JSON API. The token (when the server wants one) comes from
// the address `dacon serve` printed and goes in a header; event streams and
// download links carry it in the query.

const params = new URLSearchParams(location.search);
const token = params.get('token') || sessionStorage.getItem('dacon-token') || '';
if (params.get('token')) sessionStorage.setItem('dacon-token', token);

function headers(extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function check(res) {
  if (res.ok) return res;
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  throw new ApiError(res.status, body);
}

export async function get(path) {
  return (await check(await fetch(path, { headers: headers() }))).json();
}

export async function bytes(path) {
  return (await check(await fetch(path, { headers: headers() }))).arrayBuffer();
}

export async function image(path) {
  const blob = await (await check(await fetch(path, { headers: headers() }))).blob();
  return URL.createObjectURL(blob);
}

export async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(body),
  });
  return (await check(res)).json();
}

export function withToken(path) {
  return token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : path;
}

export function events(onEvent) {
  const es = new EventSource(withToken('/api/events'));
  es.onmessage = (m) => onEvent(JSON.parse(m.data));
  return es;
}
