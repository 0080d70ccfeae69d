// The fleet page's credentials and watch stream, the first part of its script (see
// page-script.ts). A hub with identities answers the API only with credentials: the page
// then asks for an API token, keeps it in sessionStorage (this tab only, gone when it
// closes) and sends it as a Bearer header. EventSource cannot send headers, so the watch
// stream is read with fetch() and a streaming body reader.
// (No backticks or dollar-brace in the script: it lives in a template literal.)

/** The start of the page's ES module: token handling and the watch-stream reader. */
export const PAGE_AUTH_SCRIPT = String.raw`// Flotilla fleet page (read-only). Served by the hub; see docs/api.md "Web page" and "Access".
const TOKEN_KEY = 'flotilla.apiToken';

const auth = {
  // Called once a token has been accepted, to (re)load everything.
  onToken: () => {},
};

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

function authHeaders(extra) {
  const headers = Object.assign({}, extra);
  const token = storedToken();
  if (token) headers.authorization = 'Bearer ' + token;
  return headers;
}

async function errorMessageOf(res) {
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.message === 'string') return body.error.message;
  } catch {
    // Not the API's JSON: the status says enough.
  }
  return 'the hub answered HTTP ' + res.status;
}

// Shows the token form; a refused stored token is forgotten so it is not sent again.
function askForToken(message) {
  if (storedToken()) {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Storage disabled: nothing was kept.
    }
  }
  const form = document.getElementById('auth');
  const wasHidden = form.hidden;
  form.hidden = false;
  const p = document.getElementById('auth-error');
  p.textContent = message || '';
  p.hidden = !message;
  const c = document.getElementById('connection');
  c.textContent = 'Token needed';
  c.className = 'connection down';
  document.getElementById('banner').hidden = true;
  if (wasHidden) document.getElementById('token').focus();
}

// A candidate token is tried on a cheap read before it is kept.
async function submitToken(ev) {
  ev.preventDefault();
  const input = document.getElementById('token');
  const token = input.value.trim();
  if (!token) return;
  const res = await fetch('/api/v1/clusters?revision=ffffffffff', {
    headers: { accept: 'application/json', authorization: 'Bearer ' + token },
  }).catch(() => undefined);
  if (!res) return askForToken('The hub cannot be reached.');
  if (!res.ok) return askForToken(await errorMessageOf(res));
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    return askForToken('This browser keeps no session storage, so the token cannot be used.');
  }
  input.value = '';
  document.getElementById('auth').hidden = true;
  auth.onToken();
}

// Server-Sent Events over fetch: calls onEvent(type, data) per event until the stream
// ends (resolves) or fails (rejects); 401 and 403 reject with err.status set.
async function readEvents(url, signal, onEvent) {
  const res = await fetch(url, {
    headers: authHeaders({ accept: 'text/event-stream' }),
    cache: 'no-store',
    signal,
  });
  if (!res.ok || !res.body) {
    const err = new Error(await errorMessageOf(res));
    err.status = res.status;
    throw err;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) type = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) onEvent(type, data.join('\n'));
    }
  }
}

document.getElementById('auth').addEventListener('submit', (ev) => void submitToken(ev));
`;
