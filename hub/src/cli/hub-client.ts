// How CLI commands talk to the hub: its HTTP JSON API, base URL from --hub-url,
// $FLOTILLA_HUB_URL or the default. Errors carry the hub's code and message; a 401 also
// says how to give the CLI credentials (hub-credentials.ts).
import { UnavailableError } from '@flotilla/common';
import { HubTlsError } from './hub-tls.js';
import { UsageError } from './io.js';
import type { CliIo } from './io.js';

/** Hub URL when neither --hub-url nor FLOTILLA_HUB_URL is given. */
export const DEFAULT_HUB_URL = 'http://127.0.0.1:7080';

/** A fetch function, injectable for tests. */
export type Fetch = (
  url: string,
  init?: { signal?: AbortSignal; method?: 'GET' | 'POST' },
) => Promise<{
  ok: boolean;
  status: number;
  text(): Promise<string>;
  body?: ReadableStream<Uint8Array> | null;
}>;

/** What a 401 from the hub adds to its message: how to give the CLI credentials. */
export const CREDENTIALS_HINT =
  'the hub needs credentials: set FLOTILLA_TOKEN (flotilla token create NAME) or use the admin directory (FLOTILLA_ADMIN_DIR, holding admin.crt and admin.key)';

/** The hub answered with an error status; code is its stable error code. */
export class HubError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

/** The hub's base URL for this invocation; a UsageError when it is not a URL. */
export function hubBase(flag: string | undefined, io: CliIo, defaultUrl = DEFAULT_HUB_URL): string {
  const base = (flag ?? io.env.FLOTILLA_HUB_URL ?? defaultUrl).replace(/\/+$/, '');
  try {
    new URL(base);
  } catch {
    throw new UsageError(`--hub-url: "${base}" is not a URL`);
  }
  return base;
}

/** GETs url and parses the JSON body; throws UnavailableError or HubError. */
export async function getJson(fetchFn: Fetch, url: string): Promise<unknown> {
  return requestJson(fetchFn, url, 'GET');
}

/** POSTs to url (no body) and parses the JSON answer; throws UnavailableError or HubError. */
export async function postJson(fetchFn: Fetch, url: string): Promise<unknown> {
  return requestJson(fetchFn, url, 'POST');
}

async function requestJson(fetchFn: Fetch, url: string, method: 'GET' | 'POST'): Promise<unknown> {
  let res: Awaited<ReturnType<Fetch>>;
  try {
    res = await fetchFn(url, method === 'GET' ? undefined : { method });
  } catch (err) {
    // A TLS failure already names its fix (--ca-file); waiting will not help.
    if (err instanceof HubTlsError) throw err;
    throw new UnavailableError(`hub at ${new URL(url).origin}`, {
      cause: (err as Error).cause ?? err,
    });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`hub answered ${res.status} with a non-JSON body from ${url}`);
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error;
    const hint = res.status === 401 ? `; ${CREDENTIALS_HINT}` : '';
    throw new HubError(
      res.status,
      e?.code ?? '',
      `hub answered ${res.status} ${e?.code ?? ''}: ${e?.message ?? text}${hint}`.trim(),
    );
  }
  return body;
}

/** A query string from the parameters that are set. */
export function queryString(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
