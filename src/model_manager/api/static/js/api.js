// Every call goes through the REST API and its guards, as any other client's would: same origin, JSON
// bodies on writes, and `Authorization: Bearer` when the user gave a token. The token lives in
// sessionStorage (this tab only, gone when it closes) and never in a URL.

const TOKEN_KEY = 'model-manager-token';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error || 'http_error';
    this.solution = body?.solution || '';
    this.body = body;
  }
}

let askForToken = null;

/** Set the function that asks the user for a token (returns a promise of the token, or null). */
export function onTokenNeeded(ask) {
  askForToken = ask;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  declined = false;
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(json) {
  const out = { Accept: 'application/json' };
  if (json) out['Content-Type'] = 'application/json';
  const t = token();
  if (t) out.Authorization = `Bearer ${t}`;
  return out;
}

let pendingToken = null;
let declined = false;

async function tokenFromUser() {
  // Once the user closed the prompt without a token, polls do not reopen it: the Token button does.
  if (!askForToken || declined) return null;
  // One prompt for every call that got a 401 meanwhile.
  pendingToken ??= askForToken().then((given) => {
    declined = !given;
    return given;
  }).finally(() => { pendingToken = null; });
  return pendingToken;
}

/** The JSON answer of `path`; throws ApiError with the error envelope's code, message and solution. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const json = body !== undefined;
    const response = await fetch(path, {
      method,
      headers: headers(json),
      body: json ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (response.status === 401 && attempt < 3) {
      const given = await tokenFromUser();
      if (given) { setToken(given); continue; }
    }
    if (!response.ok || (data && data.success === false)) throw new ApiError(response.status, data);
    return data;
  }
}

/** Follow a Server-Sent Events stream with fetch (EventSource cannot send a token); calls
 * `onEvent({event, data})` per event and resolves when the stream ends. */
export async function followEvents(path, onEvent, signal) {
  const response = await fetch(path, { headers: { ...headers(false), Accept: 'text/event-stream' }, signal, cache: 'no-store' });
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    throw new ApiError(response.status, data);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replaceAll('\r\n', '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseEvent(block);
      if (event) onEvent(event);
    }
  }
}

function parseEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue; // a comment: the server's keep-alive ping
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  return { event, data: JSON.parse(data.join('\n')) };
}
