// The HTTP JSON API (node:http, no framework: a handful of read-only routes).
//   GET /api/v1/clusters[?selector=env=prod]  → { clusters: [...] }
//   GET /api/v1/clusters/{name}              → a cluster, or 404 NOT_FOUND
//   GET /api/v1/sources                       → { sources: [...] }
//   GET /healthz, /readyz
// Errors are { error: { code, message } } with a 4xx/5xx status.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ErrorCode, Logger } from '@flotilla/common';
import { FlotillaError, NotFoundError, UnavailableError, ValidationError, errorMessage, parseSelector } from '@flotilla/common';
import type { Readiness, SourcesQuery, StatusQuery } from './types.js';

/** What the HTTP API reads from. */
export interface HttpApiDeps {
  status: StatusQuery;
  sources: SourcesQuery;
  readiness: Readiness;
  logger: Logger;
}

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_LARGE: 413,
  UNAVAILABLE: 503,
};

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: FlotillaError): void {
  send(res, HTTP_STATUS[err.code] ?? 500, { error: { code: err.code, message: err.message } });
}

/** Routes one request; throws FlotillaError for 4xx/5xx answers. */
function route(req: IncomingMessage, res: ServerResponse, deps: HttpApiDeps): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new ValidationError(`method ${req.method ?? ''} is not allowed; the API is read-only (GET)`);
  }
  if (path === '/healthz') return send(res, 200, { status: 'ok' });
  if (path === '/readyz') {
    const { ready, reasons } = deps.readiness.check();
    return send(res, ready ? 200 : 503, { ready, reasons });
  }
  if (path === '/api/v1/clusters') {
    const text = url.searchParams.get('selector') ?? url.searchParams.get('labelSelector') ?? '';
    const selector = text.trim() === '' ? undefined : parseSelector(text);
    return send(res, 200, { clusters: deps.status.list(selector) });
  }
  const one = /^\/api\/v1\/clusters\/([^/]+)$/.exec(path);
  if (one) {
    const name = decodeURIComponent(one[1] as string);
    const cluster = deps.status.get(name);
    if (!cluster) throw new NotFoundError('cluster', name);
    return send(res, 200, cluster);
  }
  if (path === '/api/v1/sources') return send(res, 200, { sources: deps.sources.sources() });
  throw new NotFoundError('path', path);
}

/** A started HTTP API server. */
export interface RunningHttpApi {
  server: Server;
  port: number;
  stop(): Promise<void>;
}

/** Starts the HTTP API on host:port (port 0 picks a free one). */
export async function startHttpApi(host: string, port: number, deps: HttpApiDeps): Promise<RunningHttpApi> {
  const server = createServer((req, res) => {
    try {
      route(req, res, deps);
    } catch (err) {
      if (err instanceof FlotillaError) return sendError(res, err);
      deps.logger.error({ err: errorMessage(err), path: req.url }, 'HTTP API request failed');
      send(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new UnavailableError(`HTTP listen address ${host}:${port}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections would hold close() open until they time out.
        server.closeAllConnections();
      }),
  };
}
