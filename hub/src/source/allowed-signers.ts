// OpenSSH allowed_signers files (ssh-keygen(1) "ALLOWED SIGNERS", git's
// gpg.ssh.allowedSignersFile): `principals [options] keytype base64-key [comment]`.
// Read once at start; every problem is a ConfigError naming the field and the line.
import { readFile } from 'node:fs/promises';
import { ConfigError } from '@flotilla/common';
import {
  SshFormatError,
  SshUnsupportedError,
  loadSshPublicKey,
  sshFingerprint,
  sshKeyType,
} from './sshsig.js';

/** One trusted key from an allowed_signers file. */
export interface AllowedSigner {
  /** Principals as written, e.g. "alice@example.com,bob@example.com": who signed, for logs and status. */
  principals: string;
  /** `namespaces="…"` pattern list; undefined = every namespace. */
  namespaces: string | undefined;
  /** `valid-after` / `valid-before`, Unix seconds; undefined = unbounded. */
  validAfter: number | undefined;
  validBefore: number | undefined;
  /** The public key blob (compared byte for byte with the signature's key). */
  publicKey: Buffer;
  /** "SHA256:…" as ssh-keygen prints it. */
  fingerprint: string;
  /** Where it was read, e.g. "sources[0].verify.sshAllowedSigners[1] line 3". */
  origin: string;
}

/** Parses an allowed_signers text; throws ConfigError naming `field` and the line. */
export function parseAllowedSigners(text: string, field: string): AllowedSigner[] {
  const signers: AllowedSigner[] = [];
  for (const [i, rawLine] of text.split('\n').entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      signers.push({ ...parseLine(line), origin: `${field} line ${i + 1}` });
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      throw new ConfigError(field, `line ${i + 1}: ${err.message}`);
    }
  }
  if (signers.length === 0) throw new ConfigError(field, 'holds no allowed signers');
  return signers;
}

/** Reads allowed_signers files; errors name `${field}[j]`. */
export async function readAllowedSigners(
  files: readonly string[],
  field: string,
): Promise<AllowedSigner[]> {
  const all: AllowedSigner[] = [];
  for (const [j, file] of files.entries()) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${field}[${j}]`, `cannot read ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    all.push(...parseAllowedSigners(text, `${field}[${j}]`));
  }
  return all;
}

/** Whether `namespace` matches an OpenSSH pattern list ("git,file", "*", "!secret,*"). */
export function namespaceAllowed(patterns: string | undefined, namespace: string): boolean {
  if (patterns === undefined) return true;
  let matched = false;
  for (const p of patterns.split(',')) {
    const negated = p.startsWith('!');
    if (!globMatch(negated ? p.slice(1) : p, namespace)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

class LineError extends Error {}

const LINE_FORMAT = 'expected "principals [options] keytype base64-key [comment]"';

type ParsedLine = Omit<AllowedSigner, 'origin'>;

function parseLine(line: string): ParsedLine {
  const [principals, afterPrincipals] = takeToken(line);
  if (principals === '' || looksLikeKeyType(principals)) throw new LineError(LINE_FORMAT);
  let rest = afterPrincipals;
  let options: Record<string, string | true> = {};
  const [next] = takeToken(rest);
  if (!looksLikeKeyType(next)) {
    const [opts, afterOpts] = takeToken(rest);
    options = parseOptions(opts);
    rest = afterOpts;
  }
  const [keyType, afterType] = takeToken(rest);
  const [base64] = takeToken(afterType);
  if (keyType === '' || base64 === '')
    throw new LineError('expected "principals [options] keytype base64-key"');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64))
    throw new LineError(`the ${keyType} key is not base64`);
  const blob = Buffer.from(base64, 'base64');
  try {
    const inner = sshKeyType(blob);
    if (inner !== keyType) throw new LineError(`the key is a ${inner} key, not ${keyType}`);
    loadSshPublicKey(blob);
  } catch (err) {
    if (err instanceof LineError) throw err;
    if (err instanceof SshUnsupportedError) throw new LineError(err.message);
    if (err instanceof SshFormatError)
      throw new LineError(`the ${keyType} key is malformed (${err.message})`);
    throw err;
  }
  const time = (name: string): number | undefined => {
    const v = options[name];
    if (v === undefined) return undefined;
    if (v === true) throw new LineError(`option ${name} needs a value`);
    return parseSshTime(v, name);
  };
  const ns = options['namespaces'];
  if (ns === true) throw new LineError('option namespaces needs a value');
  return {
    principals: unquote(principals),
    namespaces: ns,
    validAfter: time('valid-after'),
    validBefore: time('valid-before'),
    publicKey: blob,
    fingerprint: sshFingerprint(blob),
  };
}

// OpenSSH's key type names (sshkey.c), certificates included: anything else is options.
const KEY_TYPE =
  /^(?:ssh-ed25519|ssh-rsa|ssh-dss|ssh-xmss|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519|sk-ecdsa-sha2-nistp256)(?:@openssh\.com|-cert-v01@openssh\.com)?$/;
const looksLikeKeyType = (t: string): boolean => KEY_TYPE.test(t);

const unquote = (t: string): string =>
  t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;

/** Splits off the first whitespace-delimited token (quotes keep spaces inside); returns [token, rest]. */
function takeToken(s: string): [string, string] {
  let quoted = false;
  let i = 0;
  for (; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === ' ' || ch === '\t')) break;
  }
  if (quoted) throw new LineError('unterminated quote');
  return [s.slice(0, i), s.slice(i).trimStart()];
}

const KNOWN_OPTIONS = new Set(['namespaces', 'valid-after', 'valid-before']);

/** `name[="value"],…` → map; refuses cert-authority and unknown options. */
function parseOptions(s: string): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (const opt of splitUnquoted(s)) {
    const eq = opt.indexOf('=');
    const name = (eq === -1 ? opt : opt.slice(0, eq)).toLowerCase();
    if (name === 'cert-authority')
      throw new LineError(
        'cert-authority lines (SSH certificates) are not supported; list the signing keys themselves',
      );
    if (!KNOWN_OPTIONS.has(name))
      throw new LineError(
        `unknown option "${name}" (expected namespaces, valid-after, valid-before)`,
      );
    out[name] = eq === -1 ? true : unquote(opt.slice(eq + 1));
  }
  return out;
}

function splitUnquoted(s: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '"') quoted = !quoted;
    else if (s[i] === ',' && !quoted) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts.filter((p) => p !== '');
}

/**
 * An allowed_signers timestamp in Unix seconds: YYYYMMDD or YYYYMMDDHHMM[SS], in the local
 * time zone unless suffixed with Z (UTC) — ssh-keygen's rule, so one file means the same
 * to git and to the hub on the same machine.
 */
function parseSshTime(v: string, name = 'timestamp'): number {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$/i.exec(v);
  if (!m) throw new LineError(`${name}="${v}" is not YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((x) => Number(x ?? 0)) as number[];
  const parts = [y!, mo! - 1, d!, h!, mi!, s!] as const;
  const ms = m[7] ? Date.UTC(...parts) : new Date(...parts).getTime();
  const back = m[7] ? new Date(ms).getUTCDate() : new Date(ms).getDate();
  if (mo! < 1 || mo! > 12 || back !== d || h! > 23 || mi! > 59 || s! > 59)
    throw new LineError(`${name}="${v}" is not a valid date and time`);
  return Math.floor(ms / 1000);
}

/** `*` and `?` wildcards, as OpenSSH's match_pattern. */
function globMatch(pattern: string, s: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(s);
}
