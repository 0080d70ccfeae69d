// Bounded HTTP(S) GETs for chart repositories and OCI registries. Everything from
// outside is bounded here, at the edge: a whole request (redirects included) has one
// deadline, a body over its byte limit is cut off as soon as it is seen (by
// Content-Length or while streaming), redirects are few, and credentials are never sent
// to another origin than the one they were given for. Messages never hold a header.
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ChartFetchError } from './errors.js';

/** How to reach one origin: TLS trust, plain HTTP, credentials as a header. */
export interface HttpAccess {
  /** PEM CA bundle trusted in addition to nothing else (a custom CA); undefined: the system's. */
  caPem?: string | undefined;
  /** Skip TLS verification (tests and labs only; default false). */
  insecureSkipTlsVerify?: boolean | undefined;
  /** The Authorization header value, sent only to the request's own origin. */
  authorization?: string | undefined;
}

/** One GET. */
export interface HttpGet {
  url: URL;
  access: HttpAccess;
  /** Largest body accepted; larger is a TOO_LARGE ChartFetchError. */
  maxBytes: number;
  /** Deadline of the whole request, redirects included (ms). */
  timeoutMs: number;
  /** Extra request headers (Accept, If-None-Match). */
  headers?: Readonly<Record<string, string>>;
  /** What is fetched, for messages ("index.yaml of https://charts.example.com"). */
  what: string;
}

/** A response: status, headers and the whole (bounded) body. */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The URL that answered (after redirects). */
  url: URL;
}

/** Redirects followed at most (5). */
export const MAX_REDIRECTS = 5;

/** GETs a URL within the limits; rejects with ChartFetchError (never with a header in it). */
export async function httpGet(req: HttpGet): Promise<HttpResponse> {
  const deadline = Date.now() + req.timeoutMs;
  let url = req.url;
  for (let hop = 0; ; hop++) {
    // Credentials stay with the origin they were configured for.
    const sameOrigin = url.origin === req.url.origin;
    const res = await getOnce(url, req, deadline, sameOrigin);
    if (res.status >= 300 && res.status < 400 && res.headers.location) {
      if (hop >= MAX_REDIRECTS)
        throw new ChartFetchError(
          'UNAVAILABLE',
          `${req.what}: more than ${MAX_REDIRECTS} redirects`,
        );
      const next = new URL(res.headers.location, url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:')
        throw new ChartFetchError('UNAVAILABLE', `${req.what}: redirect to a ${next.protocol} URL`);
      url = next;
      continue;
    }
    return res;
  }
}

function getOnce(
  url: URL,
  req: HttpGet,
  deadline: number,
  withAuth: boolean,
): Promise<HttpResponse> {
  const left = deadline - Date.now();
  if (left <= 0) return Promise.reject(timeout(req));
  const https = url.protocol === 'https:';
  const headers: Record<string, string> = {
    'user-agent': 'flotilla-hub',
    ...req.headers,
    ...(withAuth && req.access.authorization ? { authorization: req.access.authorization } : {}),
  };
  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    const fail = (err: ChartFetchError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      r.destroy();
      reject(err);
    };
    const onResponse = (res: IncomingMessage): void => {
      const status = res.statusCode ?? 0;
      // A redirect's body is not read; an error's only as far as the limit.
      if (status >= 300 && status < 400) {
        res.resume();
        settled = true;
        clearTimeout(timer);
        resolve({ status, headers: res.headers, body: Buffer.alloc(0), url });
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > req.maxBytes)
        return fail(tooLarge(req, declared));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > req.maxBytes) return fail(tooLarge(req, size));
        chunks.push(chunk);
      });
      res.on('error', (err) => fail(unreachable(req, err)));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status, headers: res.headers, body: Buffer.concat(chunks), url });
      });
    };
    const options = {
      method: 'GET',
      headers,
      ...(https
        ? {
            ...(req.access.caPem !== undefined ? { ca: req.access.caPem } : {}),
            rejectUnauthorized: req.access.insecureSkipTlsVerify !== true,
          }
        : {}),
    };
    const r = https
      ? httpsRequest(url, options, onResponse)
      : httpRequest(url, options, onResponse);
    const timer = setTimeout(() => fail(timeout(req)), left);
    r.on('error', (err) => fail(unreachable(req, err)));
    r.end();
  });
}

function timeout(req: HttpGet): ChartFetchError {
  return new ChartFetchError(
    'UNAVAILABLE',
    `${req.what}: no complete answer within ${req.timeoutMs >= 1000 ? `${Math.round(req.timeoutMs / 1000)} s` : `${req.timeoutMs} ms`} (charts.fetchTimeout)`,
  );
}

function tooLarge(req: HttpGet, size: number): ChartFetchError {
  return new ChartFetchError(
    'TOO_LARGE',
    `${req.what} is over its limit of ${req.maxBytes} bytes (${size} bytes or more)`,
  );
}

function unreachable(req: HttpGet, err: Error & { code?: string }): ChartFetchError {
  // Node's messages name the address and the TLS problem; never a header.
  const code = err.code ? ` (${err.code})` : '';
  return new ChartFetchError(
    'UNAVAILABLE',
    `${req.what}: cannot connect: ${err.message}${code}`,
    err,
  );
}
