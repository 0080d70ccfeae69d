// What the CLI's HTTP commands (status, get, describe, drift, history, watch, wait) show
// the hub to be allowed to read fleet status: a token given with --token-file, else the
// administrator certificate when the admin directory holds one, else $FLOTILLA_TOKEN.
// The token never appears in output or errors: messages name the file or variable only.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { errorMessage } from '@flotilla/common';
import { adminDirOf } from './admin-dir.js';
import { UsageError } from './io.js';
import type { CliIo } from './io.js';

/** Credentials for the hub's HTTP API; empty when there are none (an --insecure hub needs none). */
export interface HubCredentials {
  /** The administrator's client certificate and key (PEM). */
  client?: { cert: Buffer; key: Buffer };
  /** The Authorization header value ("Bearer flt_..."). */
  authorization?: string;
}

/** Usage line of --token-file. */
export const TOKEN_FILE_USAGE =
  '  --token-file FILE   API token for an https hub (else admin.crt of the admin directory when present, else $FLOTILLA_TOKEN)';

function bearer(token: string, from: string): string {
  const t = token.trim();
  // Checked without echoing it: a stray file could be anything, including another secret.
  if (!t || /\s/.test(t)) throw new UsageError(`${from} does not hold a single API token`);
  return `Bearer ${t}`;
}

function readOptional(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** The credentials of this invocation; a UsageError when --token-file cannot be read. */
export function hubCredentials(tokenFile: string | undefined, io: CliIo): HubCredentials {
  if (tokenFile) {
    const file = resolve(io.cwd, tokenFile);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--token-file: cannot read ${file}: ${errorMessage(err)}`);
    }
    return { authorization: bearer(text, `--token-file ${file}`) };
  }
  const dir = adminDirOf(undefined, io);
  if (dir) {
    const cert = readOptional(resolve(io.cwd, dir, 'admin.crt'));
    const key = cert && readOptional(resolve(io.cwd, dir, 'admin.key'));
    if (cert && key) return { client: { cert, key } };
  }
  const env = io.env.FLOTILLA_TOKEN;
  return env ? { authorization: bearer(env, '$FLOTILLA_TOKEN') } : {};
}
