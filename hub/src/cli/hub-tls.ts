// TLS for the CLI's HTTP commands (status, get, describe, drift, watch, wait). The hub
// serves HTTPS with a certificate from its own CA, which no system trust store holds:
// the CLI trusts --ca-file, $FLOTILLA_CA_FILE, or ca.crt of the admin directory when one
// is there, so nobody has to set NODE_EXTRA_CA_CERTS. Global fetch takes no CA, hence
// node:https for an https hub with a CA file.
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { FlotillaError, errorMessage } from '@flotilla/common';
import { adminDirOf } from './admin-dir.js';
import type { Fetch } from './hub-client.js';
import { TOKEN_FILE_USAGE, hubCredentials } from './hub-credentials.js';
import type { HubCredentials } from './hub-credentials.js';
import { UsageError } from './io.js';
import type { CliIo } from './io.js';

/** parseArgs options of every command that talks to the hub over HTTP: its CA and an API token. */
export const CA_FILE_OPTION = {
  'ca-file': { type: 'string' },
  'token-file': { type: 'string' },
} as const;

/** Usage lines of --ca-file and --token-file. */
export const CA_FILE_USAGE = `  --ca-file FILE      CA of an https hub (default $FLOTILLA_CA_FILE, else ca.crt in the admin directory when present)
${TOKEN_FILE_USAGE}`;

/** The hub's certificate could not be verified; the message names the fix. */
export class HubTlsError extends FlotillaError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}

// Node's codes for "the chain does not end at a CA we trust".
const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
]);

/** The CA file for an https hub: --ca-file, $FLOTILLA_CA_FILE, else ca.crt of the admin directory when it exists. */
export function caFileOf(flag: string | undefined, io: CliIo): string | undefined {
  const explicit = flag ?? io.env.FLOTILLA_CA_FILE;
  if (explicit) return resolve(io.cwd, explicit);
  const dir = adminDirOf(undefined, io);
  const file = dir ? resolve(io.cwd, dir, 'ca.crt') : undefined;
  return file && existsSync(file) ? file : undefined;
}

function codeOf(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  return String(e.code ?? e.cause?.code ?? '');
}

/** A TLS failure as an error naming the fix; other errors unchanged. */
export function tlsHint(err: unknown, url: string, caFile: string | undefined): unknown {
  const code = codeOf(err);
  const origin = new URL(url).origin;
  if (UNKNOWN_CA.has(code)) {
    const fix = caFile
      ? `${caFile} is not the CA that signed it: pass the hub's ca.crt with --ca-file`
      : "pass --ca-file with the hub's ca.crt (or set FLOTILLA_CA_FILE, or FLOTILLA_ADMIN_DIR to the admin directory holding it)";
    return new HubTlsError(
      `hub at ${origin}: certificate signed by unknown authority (${code}): ${fix}`,
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new HubTlsError(
      `hub at ${origin}: its certificate is not valid for "${new URL(url).hostname}": use a name from the hub's identity.hosts, or add this one there and restart the hub`,
    );
  }
  // A TLS listener hangs up on plain HTTP: the usual cause is http:// against a default (TLS) hub.
  if (url.startsWith('http:') && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET')) {
    return new HubTlsError(
      `hub at ${origin} closed the connection (${code}): it probably serves HTTPS (the default): use https://`,
    );
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO') {
    return new HubTlsError(
      `hub at ${origin} does not speak TLS (${code}): it runs --insecure; use http://`,
    );
  }
  return err;
}

function httpsFetch(
  url: string,
  ca: Buffer,
  init: Parameters<Fetch>[1],
  creds: HubCredentials,
): ReturnType<Fetch> {
  const options = {
    ca,
    method: init?.method ?? 'GET',
    ...(init?.signal ? { signal: init.signal } : {}),
    ...(creds.client ?? {}),
    ...(creds.authorization ? { headers: { authorization: creds.authorization } } : {}),
  };
  return new Promise((done, fail) => {
    const req = httpsRequest(url, options, (res) => {
      const status = res.statusCode ?? 0;
      done({
        ok: status >= 200 && status < 300,
        status,
        text: async () => {
          const chunks: Buffer[] = [];
          for await (const c of res) chunks.push(c as Buffer);
          return Buffer.concat(chunks).toString('utf8');
        },
        // A getter: turning the response into a web stream starts reading it, which text() must not race.
        get body() {
          return Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
        },
      });
    });
    req.on('error', fail);
    req.end();
  });
}

/**
 * The Fetch a command uses: an injected one as is (tests); else global fetch, or for an
 * https hub with a CA file node:https trusting it, presenting the CLI's credentials
 * (hub-credentials.ts). TLS failures become HubTlsErrors.
 */
export function hubFetch(
  fetchFn: Fetch,
  caFlag: string | undefined,
  io: CliIo,
  tokenFile?: string,
): Fetch {
  if (fetchFn !== fetch) return fetchFn;
  const creds = hubCredentials(tokenFile, io);
  const caFile = caFileOf(caFlag, io);
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (err) {
      throw new UsageError(`--ca-file: cannot read ${caFile}: ${errorMessage(err)}`);
    }
  }
  return async (url, init) => {
    try {
      if (ca && url.startsWith('https:')) return await httpsFetch(url, ca, init, creds);
      // A token goes over TLS only; an --insecure (http) hub asks for none.
      const headers = creds.authorization && url.startsWith('https:');
      return await fetch(
        url,
        headers ? { ...init, headers: { authorization: creds.authorization as string } } : init,
      );
    } catch (err) {
      throw tlsHint(err, url, caFile);
    }
  };
}
