// The fleet page's script, an ES module served as a file (the CSP allows no inline
// script). It reads the hub's HTTP API on the same origin and renders with DOM APIs only:
// names, labels, messages and field paths come from agents and Git, so they are only ever
// set as textContent, never parsed as HTML. Kept as text here so tsc alone builds the hub
// (no bundler); the real-browser test in integration-tests/src/ui/ exercises it.
// (No backticks or dollar-brace in the script: it lives in a template literal.)
// Credentials and the watch-stream reader come first, from page-auth.ts.
import { PAGE_AUTH_SCRIPT } from './page-auth.js';

/** The page's ES module. */
export const PAGE_SCRIPT =
  PAGE_AUTH_SCRIPT +
  String.raw`
const CLUSTER_STATES = ['Pending', 'Progressing', 'Waiting', 'Ready', 'OutOfSync', 'Failed', 'Offline'];
const ROLLOUT_PHASES = ['Waiting', 'Updating', 'Healthy', 'Failed', 'RolledBack', 'Skipped'];
const ROLLOUT_STATES = ['AwaitingApproval', 'Soaking', 'Paused', 'Halted', 'Aborted', 'Completed', 'Superseded'];
// Rollouts in these phases are over and hold nobody back: not shown.
const ROLLOUTS_DONE = ['Completed', 'Superseded'];
const MAX_ROLLOUTS = 20;
const DEPLOYMENT_STATES = ['Pending', 'Progressing', 'Waiting', 'Ready', 'OutOfSync', 'Drifted', 'Degraded', 'Failed', 'Offline'];
// Reconnect backoff of the watch stream (with jitter), and how often lagging views refresh.
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;
const RENDER_COALESCE_MS = 100;
const REFRESH_AFTER_CHANGE_MS = 1000;
const CLOCK_MS = 15000;
const MAX_DRIFT_ROWS = 200;
const MAX_FAILED_ROWS = 200;

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

const view = {
  clusters: new Map(),
  selector: '',
  source: null,
  generation: 0,
  retryMs: RETRY_MIN_MS,
  retryTimer: 0,
  renderTimer: 0,
  refreshTimer: 0,
  detailToken: 0,
};

const byId = (id) => document.getElementById(id);

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function stateEl(state) {
  const s = el('span', state || 'Unknown', 'state');
  if ([...DEPLOYMENT_STATES, ...ROLLOUT_PHASES, ...ROLLOUT_STATES].includes(state)) s.classList.add('state-' + state);
  return s;
}

function shaEl(sha) {
  if (!sha) return el('span', '—', 'zero');
  const c = el('code', String(sha).slice(0, 7));
  c.title = String(sha);
  return c;
}

function ago(iso, now) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

function timeEl(iso, now) {
  if (!iso) return el('span', 'never', 'zero');
  const t = el('time', ago(iso, now));
  t.dateTime = String(iso);
  t.title = String(iso);
  return t;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.append(c);
    else td.textContent = c === undefined || c === null ? '' : String(c);
    tr.append(td);
  }
  return tr;
}

// One pass: rows go into a fragment and replace the body at once.
function fillTable(table, rows, emptyText) {
  const body = table.tBodies[0];
  const frag = document.createDocumentFragment();
  for (const r of rows) frag.append(r);
  if (rows.length === 0) {
    const td = el('td', emptyText, 'empty');
    td.colSpan = table.tHead.rows[0].cells.length;
    const tr = document.createElement('tr');
    tr.append(td);
    frag.append(tr);
  }
  body.replaceChildren(frag);
}

function showError(id, message) {
  const p = byId(id);
  p.textContent = message || '';
  p.hidden = !message;
}

async function getJson(path) {
  const res = await fetch(path, { headers: authHeaders({ accept: 'application/json' }) });
  if (!res.ok) {
    const message = await errorMessageOf(res);
    if (res.status === 401 || res.status === 403) askForToken(message);
    throw new ApiError(message, res.status);
  }
  return res.json();
}

function counts(listId, states, tally) {
  const frag = document.createDocumentFragment();
  for (const s of states) {
    const li = el('li');
    li.append(stateEl(s), el('span', tally[s] || 0, 'n'));
    frag.append(li);
  }
  byId(listId).replaceChildren(frag);
}

function labelsEl(labels) {
  const span = el('span');
  for (const [k, v] of Object.entries(labels || {})) span.append(el('code', k + '=' + v, 'label'));
  return span;
}

function selectedCluster() {
  const h = location.hash;
  if (!h.startsWith('#cluster=')) return '';
  try {
    return decodeURIComponent(h.slice('#cluster='.length));
  } catch {
    return '';
  }
}

function renderClusters() {
  view.renderTimer = 0;
  const now = Date.now();
  const selected = selectedCluster();
  const list = [...view.clusters.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const tally = {};
  const rows = [];
  for (const c of list) {
    tally[c.state] = (tally[c.state] || 0) + 1;
    const link = el('a', c.name);
    link.href = '#cluster=' + encodeURIComponent(c.name);
    const tr = row([
      link,
      labelsEl(c.labels),
      c.connected ? 'yes' : 'no',
      stateEl(c.state),
      shaEl(c.desiredRevision),
      shaEl(c.appliedRevision),
      timeEl(c.lastSeen, now),
      c.degraded ? [c.message, 'degraded: ' + c.degraded].filter(Boolean).join(' — ') : c.message,
    ]);
    if (c.name === selected) tr.setAttribute('aria-current', 'true');
    rows.push(tr);
  }
  counts('cluster-counts', CLUSTER_STATES, tally);
  fillTable(byId('clusters'), rows, view.selector ? 'No cluster matches this selector.' : 'No clusters yet.');
  byId('clusters-caption').textContent =
    list.length + (list.length === 1 ? ' cluster' : ' clusters') +
    (view.selector ? ' matching ' + view.selector : '');
}

function queueRender() {
  if (!view.renderTimer) view.renderTimer = setTimeout(renderClusters, RENDER_COALESCE_MS);
}

async function loadBundles() {
  try {
    const { bundles } = await getJson('/api/v1/bundles');
    const head = byId('bundles-head');
    if (head.cells.length === 2) {
      for (const s of DEPLOYMENT_STATES) {
        const th = el('th', s, 'num');
        th.scope = 'col';
        head.append(th);
      }
    }
    const tally = {};
    const rows = bundles.map((b) => {
      const cells = [b.name, b.clusters];
      for (const s of DEPLOYMENT_STATES) {
        const n = (b.states && b.states[s]) || 0;
        tally[s] = (tally[s] || 0) + n;
        cells.push(el('span', n, n ? 'count state-' + s : 'zero'));
      }
      const tr = row(cells);
      for (let i = 1; i < tr.cells.length; i++) tr.cells[i].className = 'num';
      return tr;
    });
    counts('deployment-counts', DEPLOYMENT_STATES, tally);
    fillTable(byId('bundles'), rows, 'No bundles.');
    showError('bundles-error', '');
  } catch (err) {
    showError('bundles-error', 'Bundles: ' + err.message);
  }
}

// Source errors and failed deployments on top of the page: a bundle that did not render,
// or a source that cannot be fetched, is the first thing to see.
function sourceProblems(sources) {
  const items = [];
  for (const s of sources) {
    if (s.error) {
      const li = el('li');
      li.append(el('span', 'Source ' + s.name + ': ', 'what'), el('span', s.error));
      items.push(li);
    }
    for (const e of s.renderErrors || []) {
      const li = el('li');
      const what = e.bundle ? 'Bundle ' + e.bundle : 'Source ' + s.name;
      const where = e.clusterCount
        ? ' (' + e.clusters.join(', ') + (e.clusterCount > e.clusters.length ? ' and ' + (e.clusterCount - e.clusters.length) + ' more' : '') + ')'
        : '';
      li.append(el('span', what + ' failed to render at ' + String(s.renderedRevision).slice(0, 7) + where + ': ', 'what'), el('code', e.message));
      items.push(li);
    }
  }
  return items;
}

async function loadProblems() {
  const errors = [];
  let items = [];
  let failed = [];
  try {
    items = sourceProblems((await getJson('/api/v1/sources')).sources || []);
  } catch (err) {
    errors.push('Sources: ' + err.message);
  }
  try {
    failed = (await getJson('/api/v1/deployments?state=Failed')).deployments || [];
  } catch (err) {
    errors.push('Failed deployments: ' + err.message);
  }
  byId('source-problems').replaceChildren(...items);
  byId('source-problems').hidden = items.length === 0;
  const rows = failed.slice(0, MAX_FAILED_ROWS).map((d) => row([d.bundle, d.cluster, d.reason]));
  fillTable(byId('failed'), rows, 'No failed bundle deployments.');
  byId('failed').hidden = failed.length === 0;
  byId('failed-caption').textContent = failed.length + ' failed bundle deployment' + (failed.length === 1 ? '' : 's') +
    (failed.length > rows.length ? ' (' + rows.length + ' shown)' : '');
  showError('problems-error', errors.join(' — '));
  byId('problems').hidden = items.length === 0 && failed.length === 0 && errors.length === 0;
}

async function loadDrift() {
  try {
    const { entries } = await getJson('/api/v1/drift?since=24h&limit=' + MAX_DRIFT_ROWS);
    const now = Date.now();
    const rows = [];
    for (const e of entries) {
      for (const d of e.drift || []) {
        if (rows.length >= MAX_DRIFT_ROWS) break;
        const object = d.kind + ' ' + (d.namespace ? d.namespace + '/' : '') + d.name;
        rows.push(row([
          timeEl(e.time, now),
          e.kind === 'drift-corrected' ? 'corrected' : 'detected',
          e.cluster,
          object + (d.bundle ? ' (bundle ' + d.bundle + ')' : ''),
          (d.fields || []).join(', '),
          (d.changedBy || []).join(', ') || 'unknown',
        ]));
      }
    }
    fillTable(byId('drift'), rows, 'No drift in the last 24 hours.');
    showError('drift-error', '');
  } catch (err) {
    showError('drift-error', 'Drift: ' + err.message);
  }
}

async function loadDetail() {
  const name = selectedCluster();
  const section = byId('detail');
  const token = ++view.detailToken;
  if (!name) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  byId('detail-title').textContent = 'Cluster ' + name;
  const errors = [];
  try {
    const d = await getJson('/api/v1/clusters/' + encodeURIComponent(name));
    if (token !== view.detailToken) return;
    fillTable(byId('deployments'), (d.deployments || []).map((b) => row([
      b.bundle,
      stateEl(b.state),
      b.reason,
      b.created + ' created, ' + b.configured + ' configured, ' + b.unchanged + ' unchanged, ' +
        b.deleted + ' deleted, ' + b.failed + ' failed',
      b.drifted,
      b.health || 'unknown',
      b.lastError,
    ])), 'No bundle deployments.');
  } catch (err) {
    if (token !== view.detailToken) return;
    fillTable(byId('deployments'), [], 'Not available.');
    errors.push(err.message);
  }
  try {
    const h = await getJson('/api/v1/history?cluster=' + encodeURIComponent(name) + '&limit=20');
    if (token !== view.detailToken) return;
    const now = Date.now();
    fillTable(byId('history'), h.entries.map((e) => row([
      timeEl(e.time, now), e.kind, shaEl(e.revision), e.result, e.message,
    ])), 'No history.');
  } catch (err) {
    if (token !== view.detailToken) return;
    fillTable(byId('history'), [], 'Not available.');
    errors.push('History: ' + err.message);
  }
  showError('detail-error', errors.join(' — '));
}

// Every rollout that is not over: its stages with clusters per phase, soak time left, and
// why it halted or rolled back. Refreshed with the rest on every status change.
function rolloutEl(r) {
  const box = el('article', undefined, 'rollout');
  const h = el('h3');
  h.append(el('span', r.bundle + ' '), shaEl(r.revision), el('span', ' '), stateEl(r.phase));
  box.append(h);
  if (r.reason) box.append(el('p', r.reason, r.phase === 'Halted' || r.phase === 'RolledBack' || r.phase === 'Aborted' ? 'error' : 'reason'));
  const table = el('table');
  const head = el('tr');
  for (const t of ['Stage', 'State', ...ROLLOUT_PHASES, 'Soak']) {
    const th = el('th', t);
    th.scope = 'col';
    head.append(th);
  }
  const thead = el('thead');
  thead.append(head);
  table.append(el('caption', 'Stages of ' + r.id), thead, el('tbody'));
  fillTable(table, (r.stages || []).map((s) => {
    const cells = [(s.index + 1) + '. ' + s.name, stateEl(s.state)];
    for (const p of ROLLOUT_PHASES) {
      const n = (s.phases && s.phases[p]) || 0;
      cells.push(el('span', n, n ? 'count state-' + p : 'zero'));
    }
    cells.push(s.state === 'Soaking' ? Math.ceil(s.soakRemainingMs / 1000) + ' s left' : s.soakMs ? Math.round(s.soakMs / 1000) + ' s' : '');
    return row(cells);
  }), 'No stages.');
  box.append(table);
  return box;
}

async function loadRollouts() {
  try {
    const { rollouts } = await getJson('/api/v1/rollouts');
    const live = rollouts.filter((r) => !ROLLOUTS_DONE.includes(r.phase)).slice(0, MAX_ROLLOUTS);
    const full = await Promise.all(live.map((r) => getJson('/api/v1/rollouts/' + encodeURIComponent(r.bundle))));
    byId('rollouts').replaceChildren(...full.map(rolloutEl));
    byId('rollouts-section').hidden = full.length === 0;
    showError('rollouts-error', '');
  } catch (err) {
    showError('rollouts-error', 'Rollouts: ' + err.message);
  }
}

function refreshAll() {
  view.refreshTimer = 0;
  void loadRollouts();
  void loadProblems();
  void loadBundles();
  void loadDrift();
  void loadDetail();
}

// At most one refresh of bundles, drift and the open cluster per interval, however many changes arrive.
function refreshSoon(delay) {
  if (delay === 0) clearTimeout(view.refreshTimer);
  else if (view.refreshTimer) return;
  view.refreshTimer = setTimeout(refreshAll, delay === undefined ? REFRESH_AFTER_CHANGE_MS : delay);
}

function setConnected(live) {
  const c = byId('connection');
  c.textContent = live ? 'Live' : 'Disconnected';
  c.className = 'connection ' + (live ? 'live' : 'down');
  byId('banner').hidden = live;
}

function parse(data) {
  try {
    const c = JSON.parse(data);
    return c && typeof c.name === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}

// The watch stream feeds the clusters table: snapshots are gathered until "synced",
// then shown at once; each "changed" replaces one cluster. view.source aborts it.
function connect() {
  clearTimeout(view.retryTimer);
  if (view.source) view.source.abort();
  const generation = ++view.generation;
  const url = '/api/v1/watch' + (view.selector ? '?selector=' + encodeURIComponent(view.selector) : '');
  const source = new AbortController();
  view.source = source;
  let snapshot = new Map();
  let synced = false;
  const onEvent = (type, data) => {
    if (generation !== view.generation) return;
    if (type === 'snapshot') {
      const c = parse(data);
      if (c) snapshot.set(c.name, c);
    } else if (type === 'synced') {
      synced = true;
      view.clusters = snapshot;
      snapshot = new Map();
      view.retryMs = RETRY_MIN_MS;
      setConnected(true);
      renderClusters();
      refreshSoon(0);
    } else if (type === 'changed') {
      const c = parse(data);
      if (!c) return;
      if (!synced) return void snapshot.set(c.name, c);
      view.clusters.set(c.name, c);
      queueRender();
      refreshSoon();
    }
  };
  // An ended or failed stream is retried with backoff and jitter; missing or refused
  // credentials wait for a token instead.
  const lost = (err) => {
    if (generation !== view.generation) return;
    source.abort();
    view.source = null;
    if (err && (err.status === 401 || err.status === 403)) return askForToken(err.message);
    setConnected(false);
    const delay = view.retryMs * (0.5 + Math.random() / 2);
    view.retryMs = Math.min(view.retryMs * 2, RETRY_MAX_MS);
    view.retryTimer = setTimeout(connect, delay);
  };
  readEvents(url, source.signal, onEvent).then(() => lost(), lost);
}

async function applySelector(text) {
  const selector = text.trim();
  try {
    // Asked first so a bad selector shows the hub's message (a stream cannot carry it);
    // a revision no cluster runs keeps the answer empty, since only the validation matters.
    await getJson('/api/v1/clusters?selector=' + encodeURIComponent(selector) + '&revision=ffffffffff');
  } catch (err) {
    if (err instanceof ApiError && err.status === 400) {
      showError('selector-error', 'Selector: ' + err.message);
      return;
    }
  }
  showError('selector-error', '');
  view.selector = selector;
  view.retryMs = RETRY_MIN_MS;
  connect();
}

function start() {
  auth.onToken = connect;
  byId('filter').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void applySelector(byId('selector').value);
  });
  window.addEventListener('hashchange', () => {
    renderClusters();
    void loadDetail().then(() => byId('detail').scrollIntoView({ block: 'nearest' }));
  });
  setInterval(() => {
    if (view.source) renderClusters();
    if (view.source && !byId('rollouts-section').hidden) void loadRollouts();
  }, CLOCK_MS);
  setConnected(false);
  byId('banner').hidden = true;
  byId('connection').textContent = 'Connecting…';
  connect();
}

start();
`;
