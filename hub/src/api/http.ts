// The HTTP JSON API (node:http, no framework: a handful of read-only routes), documented
// in docs/api.md. Every route reads the same status model and history as gRPC and CLI.
//   GET /api/v1/clusters[?selector=&revision=&bundleDigest=]   → { clusters }
//   GET /api/v1/clusters/{name}                                 → cluster + deployments, or 404
//   GET /api/v1/clusters/{name}/capabilities                    → reported + default Helm capabilities
//   GET /api/v1/bundles, /api/v1/bundles/{name}                  → per-state counts (+ deployments)
//   GET /api/v1/deployments[?selector=&bundle=&cluster=&state=]  → { deployments }
//   GET /api/v1/history[?cluster=&bundle=&revision=&bundleDigest=&kind=&since=&until=&limit=]
//   GET /api/v1/drift[?cluster=&since=24h]                        → drift events
//   GET /api/v1/watch[?selector=]                                 → Server-Sent Events
//   GET /api/v1/sources, /api/v1/sources/{name}, /api/v1/hub, /healthz, /readyz, /metrics
//   GET /api/v1/rollouts, /api/v1/rollouts/{bundle}, /api/v1/rollouts/{bundle}/history
//   POST /api/v1/rollouts/{bundle}/{approve|pause|resume|abort|retry}[?revision=SHA]
// Errors are { error: { code, message } } with a 4xx/5xx status. With identities on
// (deps.access), every /api/v1/* read needs an API token or the administrator certificate
// (access.ts): 401 without, 403 for a cluster's certificate; a rollout action needs the
// administrator certificate or a token with the write scope (403 for a read-only token).
// Health, metrics, the page's files and push webhooks (their own HMAC) stay open.
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ErrorCode, Logger } from '@flotilla/common';
import {
  FlotillaError,
  NotFoundError,
  UnavailableError,
  ValidationError,
  errorMessage,
} from '@flotilla/common';
import { METRICS_CONTENT_TYPE } from '../metrics/registry.js';
import type { PresentedCredentials, ReadAccess, Reader } from './access.js';
import { ReadForbiddenError, actorOf } from './access.js';
import { viewFor } from './scope.js';
import type { AuditResult, AuditSink } from '../audit/audit-log.js';
import {
  kindsParam,
  limitParam,
  revisionParam,
  selectorParam,
  stateParam,
  timeParam,
} from './query.js';
import type {
  CapabilitiesQuery,
  HistoryReader,
  MetricsText,
  Readiness,
  RolloutsApi,
  SourceStatus,
  SourcesQuery,
  StatusQuery,
} from './types.js';
import type { RolloutAction } from '../rollout/machine.js';
import { actionParam } from './rollouts-api.js';
import { writerOf } from './access.js';
import { sendUiAsset, uiAsset } from './ui/serve.js';
import { jsonBytesOf } from '../status/cluster-json.js';
import type { JsonBytes } from '../status/cluster-json.js';

/** What the HTTP API reads from. */
export interface HttpApiDeps {
  status: StatusQuery;
  sources: SourcesQuery;
  readiness: Readiness;
  logger: Logger;
  /** The event log; history routes answer 503 without it. */
  history?: HistoryReader;
  /** /metrics answers 404 without it. */
  metrics?: MetricsText;
  now?: () => number;
  /** Push webhooks (`POST /api/v1/webhooks/{source}`, docs/sources.md); 404 without it. */
  webhooks?: WebhookReceiver;
  /** Who may read /api/v1/*; every reader without it (--insecure mode). */
  access?: ReadAccess;
  /** Clusters' Helm capabilities (`flotilla render --hub`); 404 without it. */
  capabilities?: CapabilitiesQuery;
  /** Rollouts; their routes answer 503 without it. */
  rollouts?: RolloutsApi;
  /** Where rollout actions are recorded; none: not recorded. */
  audit?: AuditSink;
}

/** Answers a push webhook for a source (WebhookHandler in source/webhook.ts implements it). */
export interface WebhookReceiver {
  handle(req: IncomingMessage, source: string): Promise<{ status: number; body: unknown }>;
}

const WEBHOOK_PATH = /^\/api\/v1\/webhooks\/([^/]+)\/?$/;
const ROLLOUT_ACTION_PATH = /^\/api\/v1\/rollouts\/([^/]+)\/([a-z]+)\/?$/;

/** Interval of keep-alive comments on a watch stream (15 s), so proxies keep it open. */
export const WATCH_KEEPALIVE_MS = 15_000;

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_LARGE: 413,
  UNAVAILABLE: 503,
};

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Bytes of JSON a list answer gathers before writing them (64 KiB). */
export const JSON_CHUNK_BYTES = 64 * 1024;

// Lists of the whole fleet are megabytes of JSON: written as small chunks (chunked
// encoding) instead of one giant string, so no request allocates the answer in one
// piece. Large one-off allocations are what kept the hub's RSS high after queries.
function sendList(
  res: ServerResponse,
  key: string,
  items: readonly unknown[],
  head: object = {},
): void {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  const opening = JSON.stringify(head).slice(0, -1);
  res.write(`${opening}${opening.length > 1 ? ',' : ''}${JSON.stringify(key)}:[`);
  // Items are joined per chunk: one flat string per write, not a rope grown item by item.
  let parts: string[] = [];
  let size = 0;
  for (let i = 0; i < items.length; i++) {
    const json = JSON.stringify(items[i]);
    parts.push(json);
    size += json.length;
    if (size >= JSON_CHUNK_BYTES) {
      res.write((i + 1 > parts.length ? ',' : '') + parts.join(','));
      parts = [];
      size = 0;
    }
  }
  res.end(`${items.length > parts.length && parts.length > 0 ? ',' : ''}${parts.join(',')}]}`);
}

const LIST_END = Buffer.from(']}');
const NOTHING = Buffer.alloc(0);
const EVENT_END = Buffer.from('\n\n');

// items[from, to) as one buffer: lead, the items separated by commas (one before the
// first too when comma), trail.
function joinedBytes(
  items: readonly JsonBytes[],
  from: number,
  to: number,
  lead: Buffer,
  trail: Buffer,
  comma: boolean,
): Buffer {
  let size = lead.length + trail.length + (to - from);
  for (let i = from; i < to; i++)
    size += (items[i] as JsonBytes).end - (items[i] as JsonBytes).start;
  const out = Buffer.allocUnsafe(size);
  let o = lead.copy(out, 0);
  for (let i = from; i < to; i++) {
    const j = items[i] as JsonBytes;
    if (i > from || comma) out[o++] = 0x2c;
    o += j.bytes.copy(out, o, j.start, j.end);
  }
  o += trail.copy(out, o);
  return o === size ? out : out.subarray(0, o);
}

// A list of items already serialized as UTF-8 JSON (cached per cluster by the status
// model): chunks are copies of those bytes, with no text to join and encode per request
// (30× the cost for the fleet-wide lists, measured; 1 MB per list at 1,000 clusters).
function sendBytesList(
  res: ServerResponse,
  key: string,
  items: readonly JsonBytes[],
  head: object = {},
): void {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  const opening = JSON.stringify(head).slice(0, -1);
  let lead = Buffer.from(`${opening}${opening.length > 1 ? ',' : ''}${JSON.stringify(key)}:[`);
  let from = 0;
  let size = 0;
  for (let i = 0; i < items.length; i++) {
    size += (items[i] as JsonBytes).end - (items[i] as JsonBytes).start + 1;
    if (size < JSON_CHUNK_BYTES) continue;
    res.write(joinedBytes(items, from, i + 1, lead, NOTHING, from > 0));
    lead = NOTHING;
    from = i + 1;
    size = 0;
  }
  res.end(joinedBytes(items, from, items.length, lead, LIST_END, from > 0));
}

function sendError(res: ServerResponse, err: FlotillaError): void {
  // RFC 9110: a 401 names the scheme that would be accepted.
  const headers: Record<string, string> =
    err.code === 'UNAUTHENTICATED' ? { 'www-authenticate': 'Bearer realm="flotilla"' } : {};
  send(
    res,
    HTTP_STATUS[err.code] ?? 500,
    { error: { code: err.code, message: err.message } },
    headers,
  );
}

/** The credentials of a request: its Authorization header and a TLS client certificate. */
function credentialsOf(req: IncomingMessage): PresentedCredentials {
  const socket = req.socket as Partial<TLSSocket>;
  const cert = socket.getPeerCertificate?.();
  // An empty object means no certificate was sent.
  const sent = cert !== undefined && cert !== null && Object.keys(cert).length > 0;
  const trusted = sent && socket.authorized === true;
  return {
    authorization: req.headers.authorization,
    ...(trusted ? { peerCertificate: cert } : {}),
    ...(sent && !trusted ? { untrustedCertificate: true } : {}),
    from: req.socket.remoteAddress,
  };
}

function history(deps: HttpApiDeps): HistoryReader {
  if (!deps.history) throw new UnavailableError('history');
  return deps.history;
}

function knownCluster(deps: HttpApiDeps, name: string | null): string | undefined {
  if (!name) return undefined;
  if (!deps.status.get(name)) throw new NotFoundError('cluster', name);
  return name;
}

function historyRoute(
  res: ServerResponse,
  q: URLSearchParams,
  deps: HttpApiDeps,
  drift: boolean,
): void {
  const now = (deps.now ?? Date.now)();
  const entries = history(deps).query({
    cluster: knownCluster(deps, q.get('cluster')),
    bundle: q.get('bundle') ?? undefined,
    revision: revisionParam(q.get('revision')),
    bundleDigest: q.get('bundleDigest') ?? undefined,
    kinds: drift ? ['drift-detected', 'drift-corrected'] : kindsParam(q.getAll('kind')),
    sinceMs: timeParam(q.get('since') ?? (drift ? '24h' : null), 'since', now),
    untilMs: timeParam(q.get('until'), 'until', now),
    limit: limitParam(q.get('limit')),
  });
  // While a restarted hub replays its history, reads are partial: the answer says so.
  const partial = deps.readiness.check().degraded?.find((d) => d.reason === 'history')?.message;
  sendList(res, 'entries', entries, partial ? { partial } : {});
}

function watchRoute(
  req: IncomingMessage,
  res: ServerResponse,
  q: URLSearchParams,
  deps: HttpApiDeps,
  reader: Reader | undefined,
): void {
  const selector = selectorParam(q.get('selector'));
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const write = (type: string, json: JsonBytes): void => {
    res.write(joinedBytes([json], 0, 1, Buffer.from(`event: ${type}\ndata: `), EVENT_END, false));
  };
  // The views' JSON comes from the status model's cache: made once per change, it is then
  // what the next `flotilla status` list sends too, instead of being serialized again.
  for (const json of deps.status.listBytes(selector)) write('snapshot', json);
  res.write('event: synced\ndata: {}\n\n');
  const off = deps.status.onChange((c) => {
    if (!selector || selector.matches(c.labels))
      write(
        'changed',
        deps.status.clusterBytes?.(c.name) ?? jsonBytesOf(Buffer.from(JSON.stringify(c))),
      );
  });
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), WATCH_KEEPALIVE_MS);
  keepalive.unref();
  // Revoking the person or token ends the stream at once, with the reason as its last event.
  const untrack =
    reader && deps.access
      ? deps.access.track(reader, (why) => {
          res.write(
            `event: error\ndata: ${JSON.stringify({ code: 'UNAUTHENTICATED', message: why })}\n\n`,
          );
          // The connection may stay: every request on it is checked again, and refused.
          res.end();
        })
      : () => undefined;
  req.on('close', () => {
    off();
    untrack();
    clearInterval(keepalive);
  });
}

function rollouts(deps: HttpApiDeps): RolloutsApi {
  if (!deps.rollouts) throw new UnavailableError('rollouts');
  return deps.rollouts;
}

function rolloutsRoute(
  res: ServerResponse,
  path: string,
  q: URLSearchParams,
  deps: HttpApiDeps,
): void {
  // A hub without a rollout controller (tests, tools) simply has no rollouts.
  if (path === '/api/v1/rollouts') return send(res, 200, { rollouts: deps.rollouts?.list() ?? [] });
  const m = /^\/api\/v1\/rollouts\/([^/]+)(\/history)?$/.exec(path);
  if (!m) throw new NotFoundError('path', path);
  const bundle = decodeURIComponent(m[1] as string);
  if (m[2]) {
    const entries = history(deps).query({
      bundle,
      kinds: ['rollout'],
      limit: limitParam(q.get('limit')),
    });
    return sendList(res, 'entries', entries);
  }
  const view = deps.rollouts?.get(bundle);
  if (!view) throw new NotFoundError('rollout of bundle', bundle);
  return send(res, 200, view);
}

// POST /api/v1/rollouts/{bundle}/{action}: a write, so it needs write access.
async function rolloutAction(
  req: IncomingMessage,
  match: RegExpExecArray,
  deps: HttpApiDeps,
): Promise<{ status: number; body: unknown }> {
  const bundle = decodeURIComponent(match[1] as string);
  let known: RolloutAction | undefined;
  try {
    known = actionParam(match[2]);
  } catch {
    // An unknown action is answered after the access check, and is not a write to record.
  }
  const record = (actor: string, result: AuditResult, message: string): void => {
    if (known)
      deps.audit?.record({ actor, action: `rollout.${known}`, target: bundle, result, message });
  };
  const reader = deps.access?.authorizeWrite(credentialsOf(req), (r, why) =>
    record(actorOf(r), 'denied', `rollout ${known ?? ''} of ${bundle} refused: ${why}`),
  );
  const action = actionParam(match[2]);
  const url = new URL(req.url ?? '/', 'http://localhost');
  const revision = revisionParam(url.searchParams.get('revision'));
  try {
    const view = await rollouts(deps).act(bundle, action, writerOf(reader), revision);
    record(actorOf(reader), 'ok', `rollout of ${bundle} ${action}: now ${view.phase}`);
    return { status: 200, body: view };
  } catch (err) {
    record(
      actorOf(reader),
      'failed',
      `rollout ${action} of ${bundle} failed: ${errorMessage(err)}`,
    );
    throw err;
  }
}

// Render errors name clusters: a limited reader sees only its own among them.
function visibleSources(sources: SourceStatus[], status: StatusQuery): SourceStatus[] {
  return sources.map((s) =>
    s.renderErrors
      ? {
          ...s,
          renderErrors: s.renderErrors.map((e) => {
            const clusters = e.clusters.filter((c) => status.get(c) !== undefined);
            return { ...e, clusters, clusterCount: clusters.length };
          }),
        }
      : s,
  );
}

/** Routes one request; throws FlotillaError for 4xx/5xx answers. */
function route(req: IncomingMessage, res: ServerResponse, all: HttpApiDeps): void {
  let deps = all;
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const q = url.searchParams;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new ValidationError(
      `method ${req.method ?? ''} is not allowed here; reads are GET, rollout actions POST /api/v1/rollouts/{bundle}/{action}`,
    );
  }
  if (path === '/healthz') return send(res, 200, { status: 'ok' });
  if (path === '/readyz') {
    // Open to anyone (probes): what is degraded is named here, explained at /api/v1/hub.
    const { ready, reasons, degraded = [] } = deps.readiness.check();
    const names = degraded.map((d) => (d.source ? `${d.reason}:${d.source}` : d.reason));
    return send(res, ready ? 200 : 503, { ready, reasons, degraded: names });
  }
  if (path === '/metrics') {
    if (!deps.metrics) throw new NotFoundError('path', path);
    const text = deps.metrics.render();
    res.writeHead(200, {
      'content-type': METRICS_CONTENT_TYPE,
      'content-length': Buffer.byteLength(text),
    });
    return void res.end(text);
  }
  let reader: Reader | undefined;
  if (deps.access && (path === '/api/v1' || path.startsWith('/api/v1/')))
    reader = deps.access.authorize(credentialsOf(req));
  // A token limited by a selector reads through a view of its clusters only.
  if (reader?.clusters) {
    deps = { ...deps, ...viewFor(reader, deps.status, deps.history) };
    if (path === '/api/v1/rollouts' || path.startsWith('/api/v1/rollouts/'))
      throw new ReadForbiddenError(
        `API token "${reader.name}" sees only clusters matching ${reader.clusters.text}: rollouts span the fleet`,
      );
  }
  if (path === '/api/v1/clusters') {
    const selector = selectorParam(q.get('selector') ?? q.get('labelSelector'));
    const filter = {
      selector,
      revision: revisionParam(q.get('revision')),
      bundleDigest: q.get('bundleDigest') ?? undefined,
    };
    // Pre-serialized views (cached per cluster until it changes): the fleet-wide list is
    // what dashboards poll.
    return sendBytesList(res, 'clusters', deps.status.listBytes(filter));
  }
  const caps = /^\/api\/v1\/clusters\/([^/]+)\/capabilities$/.exec(path);
  if (caps && deps.capabilities) {
    const name = decodeURIComponent(caps[1] as string);
    if (reader?.clusters && !deps.status.get(name)) throw new NotFoundError('cluster', name);
    const reported = deps.capabilities.reported(name);
    return send(res, 200, {
      cluster: name,
      reported: reported ?? null,
      default: deps.capabilities.defaults(),
    });
  }
  const one = /^\/api\/v1\/clusters\/([^/]+)$/.exec(path);
  if (one) {
    const name = decodeURIComponent(one[1] as string);
    const d = deps.status.describe(name);
    if (!d) throw new NotFoundError('cluster', name);
    return sendList(res, 'deployments', d.deployments, d.cluster);
  }
  if (path === '/api/v1/bundles') return send(res, 200, { bundles: deps.status.bundleSummaries() });
  const bundle = /^\/api\/v1\/bundles\/([^/]+)$/.exec(path);
  if (bundle) {
    const name = decodeURIComponent(bundle[1] as string);
    const summary = deps.status.bundleSummaries().find((b) => b.name === name);
    if (!summary) throw new NotFoundError('bundle', name);
    return sendBytesList(
      res,
      'deployments',
      deps.status.deploymentsBytes({ bundle: name }),
      summary,
    );
  }
  if (path === '/api/v1/deployments') {
    const filter = {
      selector: selectorParam(q.get('selector')),
      bundle: q.get('bundle') ?? undefined,
      cluster: knownCluster(deps, q.get('cluster')),
      state: stateParam(q.get('state')),
    };
    return sendBytesList(res, 'deployments', deps.status.deploymentsBytes(filter));
  }
  if (path === '/api/v1/history') return historyRoute(res, q, deps, false);
  if (path === '/api/v1/drift') return historyRoute(res, q, deps, true);
  if (path === '/api/v1/watch') return watchRoute(req, res, q, deps, reader);
  if (path === '/api/v1/rollouts' || path.startsWith('/api/v1/rollouts/'))
    return rolloutsRoute(res, path, q, deps);
  const sources = (): SourceStatus[] =>
    reader?.clusters ? visibleSources(deps.sources.sources(), deps.status) : deps.sources.sources();
  if (path === '/api/v1/sources') return send(res, 200, { sources: sources() });
  if (path === '/api/v1/hub') {
    const { ready, reasons, degraded = [] } = deps.readiness.check();
    return send(res, 200, { ready, reasons, degraded });
  }
  const source = /^\/api\/v1\/sources\/([^/]+)$/.exec(path);
  if (source) {
    const name = decodeURIComponent(source[1] as string);
    const found = sources().find((s) => s.name === name);
    if (!found) throw new NotFoundError('source', name);
    return send(res, 200, found);
  }
  // The read-only fleet page (docs/api.md, "Web page"): /, /ui and its versioned assets.
  const page = uiAsset(path);
  if (page) return sendUiAsset(req, res, page);
  throw new NotFoundError('path', path);
}

/** A started HTTP API server. */
export interface RunningHttpApi {
  server: Server;
  port: number;
  stop(): Promise<void>;
}

/** The serving certificate and key (PEM) for HTTPS. */
export interface HttpTls {
  certPem: string;
  keyPem: string;
  /** CA whose client certificates are requested (not required: tokens work too) and verified. */
  caPem?: string;
}

/** Starts the HTTP API on host:port (port 0 picks a free one); HTTPS when tls is given. */
export async function startHttpApi(
  host: string,
  port: number,
  deps: HttpApiDeps,
  tls?: HttpTls,
): Promise<RunningHttpApi> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const hook =
      req.method === 'POST' && deps.webhooks
        ? WEBHOOK_PATH.exec(new URL(req.url ?? '/', 'http://localhost').pathname)
        : null;
    const act =
      req.method === 'POST'
        ? ROLLOUT_ACTION_PATH.exec(new URL(req.url ?? '/', 'http://localhost').pathname)
        : null;
    if (act) {
      req.resume();
      rolloutAction(req, act, deps).then(
        (r) => send(res, r.status, r.body),
        (err: unknown) => {
          if (err instanceof FlotillaError) return sendError(res, err);
          deps.logger.error({ err: errorMessage(err) }, 'rollout action failed');
          send(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
        },
      );
      return;
    }
    if (hook && deps.webhooks) {
      deps.webhooks.handle(req, decodeURIComponent(hook[1] as string)).then(
        (r) => send(res, r.status, r.body),
        (err: unknown) => (
          deps.logger.error({ err: errorMessage(err) }, 'webhook failed'),
          send(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } })
        ),
      );
      return;
    }
    try {
      route(req, res, deps);
    } catch (err) {
      if (err instanceof FlotillaError) return sendError(res, err);
      deps.logger.error({ err: errorMessage(err), path: req.url }, 'HTTP API request failed');
      send(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
    }
  };
  const server: Server = tls
    ? createTlsServer(
        {
          cert: tls.certPem,
          key: tls.keyPem,
          // A client certificate is asked for, never required: the route decides (access.ts).
          ...(tls.caPem ? { ca: tls.caPem, requestCert: true, rejectUnauthorized: false } : {}),
        },
        handler,
      )
    : createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new UnavailableError(`HTTP listen address ${host}:${port}`, { cause: err })),
    );
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (and watch streams) would hold close() open until they time out.
        server.closeAllConnections();
      }),
  };
}
