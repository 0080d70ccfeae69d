// Raw JSON over HTTPS to the API server. Raw on purpose: the typed model classes of
// @kubernetes/client-node drop unknown fields, which would hide typos from
// fieldValidation=Strict. Auth and TLS still come from the user's kubeconfig.
import type * as Http from 'node:http';
import * as https from 'node:https';
import { http } from '../node-http.js';
import type { KubeConfigSource } from './kubeconfig.js';
import { KubeApiError, KubeConnectionError } from './errors.js';

/** One request to the API server. */
export interface KubeHttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Absolute API path, e.g. "/api/v1/namespaces/default/configmaps". */
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Content type of the body (default application/json). */
  contentType?: string;
  /** Accept header (default application/json), e.g. to ask for aggregated discovery. */
  accept?: string;
  signal?: AbortSignal;
}

/** Sends a request and returns the parsed JSON answer; throws typed errors. */
export type KubeHttp = (req: KubeHttpRequest) => Promise<unknown>;

/** Per-request timeout (30 s): long enough for a large apply, short enough to notice a dead server. */
export const KUBE_REQUEST_TIMEOUT_MS = 30_000;

/** Opens a long-lived GET (a watch) and resolves with the response body stream once the status is 200. */
export type KubeStreamOpen = (req: KubeHttpRequest) => Promise<Http.IncomingMessage>;

/** Builds a KubeHttp from a loaded KubeConfig, with one keep-alive connection pool. */
export async function createKubeHttp(
  kc: KubeConfigSource,
): Promise<{ send: KubeHttp; open: KubeStreamOpen; close(): void }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new KubeConnectionError('GET', '/', new Error('kubeconfig has no current cluster'));
  const base = new URL(cluster.server);
  const tls: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(tls);
  // A proxy agent from the kubeconfig is kept as is; otherwise our own pooled agent.
  const agent = cluster.proxyUrl
    ? (tls.agent as Http.Agent)
    : base.protocol === 'http:'
      ? new http.Agent({ keepAlive: true, maxSockets: 32 })
      : new https.Agent({
          keepAlive: true,
          maxSockets: 32,
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          ...(tls.rejectUnauthorized === undefined
            ? {}
            : { rejectUnauthorized: tls.rejectUnauthorized }),
          ...(tls.servername ? { servername: tls.servername } : {}),
        });
  const headersFor = async (): Promise<Record<string, string>> => {
    // Headers are computed per request: exec and OIDC tokens expire.
    const auth: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(auth);
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [k, v] of Object.entries(auth.headers ?? {}))
      if (typeof v === 'string') headers[k.toLowerCase()] = v;
    if (auth.auth) headers.authorization = `Basic ${Buffer.from(auth.auth).toString('base64')}`;
    return headers;
  };
  const send: KubeHttp = async (req) => roundTrip(base, agent, await headersFor(), req);
  // Watches get their own pool: a long-lived response must never hold a socket that applies wait for.
  // One socket per watched kind, however many kinds: no socket limit here.
  const watchAgent = cluster.proxyUrl
    ? agent
    : base.protocol === 'http:'
      ? new http.Agent({ keepAlive: false, maxSockets: Infinity })
      : new https.Agent({
          ...(agent as https.Agent).options,
          keepAlive: false,
          maxSockets: Infinity,
        });
  const open: KubeStreamOpen = async (req) => openStream(base, watchAgent, await headersFor(), req);
  return {
    send,
    open,
    close: () => {
      agent.destroy();
      watchAgent.destroy();
    },
  };
}

function openStream(
  base: URL,
  agent: Http.Agent,
  headers: Record<string, string>,
  req: KubeHttpRequest,
): Promise<Http.IncomingMessage> {
  const lib = base.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const r = lib.request(
      {
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port || undefined,
        method: 'GET',
        path: buildPath(base, req),
        headers,
        agent,
        signal: req.signal,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status === 200) return resolve(res);
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', (err) => reject(new KubeConnectionError('GET', req.path, err)));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let st: { message?: string; reason?: string } = {};
          try {
            st = JSON.parse(text) as typeof st;
          } catch {
            // not a Status body; the raw text is the message
          }
          reject(
            new KubeApiError(
              'GET',
              req.path,
              status,
              st.reason ?? '',
              st.message ?? text.slice(0, 500),
            ),
          );
        });
      },
    );
    r.on('error', (err) => reject(new KubeConnectionError('GET', req.path, err)));
    r.end();
  });
}

function buildPath(base: URL, req: KubeHttpRequest): string {
  const prefix = base.pathname.replace(/\/$/, '');
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) qs.set(k, v);
  const q = qs.toString();
  return `${prefix}${req.path}${q ? `?${q}` : ''}`;
}

function roundTrip(
  base: URL,
  agent: Http.Agent,
  headers: Record<string, string>,
  req: KubeHttpRequest,
): Promise<unknown> {
  const body = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  if (req.accept) headers.accept = req.accept;
  if (body) {
    headers['content-type'] = req.contentType ?? 'application/json';
    headers['content-length'] = String(body.length);
  }
  const lib = base.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const r = lib.request(
      {
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port || undefined,
        method: req.method,
        path: buildPath(base, req),
        headers,
        agent,
        timeout: KUBE_REQUEST_TIMEOUT_MS,
        signal: req.signal,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', (err) => reject(new KubeConnectionError(req.method, req.path, err)));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          const status = res.statusCode ?? 0;
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          if (status >= 200 && status < 300) return resolve(json);
          const st = (json ?? {}) as { message?: string; reason?: string };
          reject(
            new KubeApiError(
              req.method,
              req.path,
              status,
              st.reason ?? '',
              st.message ?? text.slice(0, 500),
            ),
          );
        });
      },
    );
    r.on('timeout', () => r.destroy(new Error(`no answer within ${KUBE_REQUEST_TIMEOUT_MS} ms`)));
    r.on('error', (err) => reject(new KubeConnectionError(req.method, req.path, err)));
    r.end(body);
  });
}
