// How the hub reaches chart repositories and OCI registries: the `charts:` section of
// the hub config, compiled once at start (errors name the field), and the lookup of a
// URL's access (credentials, CA, plain HTTP) by the longest configured URL prefix.
// Credentials live in files or environment variables named here, never in Git, and are
// read when a request needs them (so a rotated file is picked up), never logged.
import { readFile } from 'node:fs/promises';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, durations, parseDuration } from '@flotilla/common';
import type { HttpAccess } from './http.js';
import { ChartFetchError } from './errors.js';

/** Where one secret is: a file (trailing newline ignored) or an environment variable. */
export interface SecretRef {
  file?: string;
  env?: string;
}

/** Access to the repositories and registries under one URL prefix. */
export interface ChartRepositoryAccess {
  /** URL prefix, e.g. "https://charts.example.com/" or "oci://registry.example.com/charts". */
  url: string;
  /** Basic auth (with password), or nothing. */
  username?: SecretRef;
  password?: SecretRef;
  /** A bearer token (instead of username/password). */
  token?: SecretRef;
  /** PEM file of the CA that signed the server's certificate (default: the system's CAs). */
  caFile?: string;
  /** OCI registries only: speak plain HTTP (default false; like helm's --plain-http). */
  plainHttp: boolean;
  /** Skip TLS verification (default false; labs only). */
  insecureSkipTlsVerify: boolean;
}

/** The compiled `charts:` settings; plain data (they cross into the render worker). */
export interface ChartSettings {
  /** Directory of downloaded charts (default "<cacheDir>-charts"). */
  cacheDir: string;
  /** Bytes of charts kept on disk; least recently used ones go first (default 1 GiB). */
  maxCacheBytes: number;
  /** Largest index.yaml or OCI tag list accepted (default 32 MiB). */
  maxIndexBytes: number;
  /** Largest chart archive accepted (default 20 MiB). */
  maxChartBytes: number;
  /** Deadline of one request to a repository or registry (default durations.chartFetchTimeout). */
  fetchTimeoutMs: number;
  /** Version ranges are resolved again this often at the same commit (default durations.chartResolveInterval). */
  resolveIntervalMs: number;
  repositories: ChartRepositoryAccess[];
}

/** Defaults of ChartSettings' sizes. */
export const CHART_DEFAULTS = {
  maxCacheBytes: 1024 * 1024 * 1024,
  maxIndexBytes: 32 * 1024 * 1024,
  maxChartBytes: 20 * 1024 * 1024,
} as const;

const FIELDS = [
  'cacheDir',
  'maxCacheBytes',
  'maxIndexBytes',
  'maxChartBytes',
  'fetchTimeout',
  'resolveInterval',
  'repositories',
];
const REPO_FIELDS = [
  'url',
  'usernameFile',
  'passwordFile',
  'tokenFile',
  'usernameEnv',
  'passwordEnv',
  'tokenEnv',
  'caFile',
  'plainHttp',
  'insecureSkipTlsVerify',
];

/** Settings with every default: no repository access configured. */
export function defaultChartSettings(cacheDir: string): ChartSettings {
  return {
    cacheDir,
    ...CHART_DEFAULTS,
    fetchTimeoutMs: durations.chartFetchTimeout,
    resolveIntervalMs: durations.chartResolveInterval,
    repositories: [],
  };
}

/** Chart cache of a renderer given no settings (`flotilla render`): ~/.cache/flotilla/charts. */
export function defaultChartCache(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'flotilla', 'charts');
}

/** Compiles `charts:` of the hub config (top = the file's mapping); throws ConfigError. */
export function compileChartSettings(
  top: Record<string, unknown>,
  file: string,
  hubCacheDir: string,
): ChartSettings {
  const fail = (field: string, problem: string): never => {
    throw new ConfigError(`charts.${field}`, problem, { file });
  };
  const raw = top.charts ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError('charts', 'must be a mapping', { file });
  const c = raw as Record<string, unknown>;
  for (const key of Object.keys(c))
    if (!FIELDS.includes(key)) fail(key, `unknown field (allowed: ${FIELDS.join(', ')})`);
  const dflt = defaultChartSettings(`${hubCacheDir.replace(/\/+$/, '')}-charts`);
  const bytes = (key: keyof typeof CHART_DEFAULTS, min: number): number => {
    const v = c[key] ?? CHART_DEFAULTS[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      fail(key, `must be a whole number of bytes, at least ${min}`);
    return v as number;
  };
  const duration = (key: string, fallback: number, min: number, minText: string): number => {
    const v = c[key];
    if (v === undefined || v === null) return fallback;
    let ms = 0;
    try {
      ms = parseDuration(v as string);
    } catch (err) {
      fail(key, (err as Error).message);
    }
    if (ms < min) fail(key, `must be at least ${minText}`);
    return ms;
  };
  const cacheDir = c.cacheDir ?? dflt.cacheDir;
  if (typeof cacheDir !== 'string' || cacheDir.trim() === '') fail('cacheDir', 'must be a path');
  const repos = c.repositories ?? [];
  if (!Array.isArray(repos)) fail('repositories', 'must be a list');
  return {
    cacheDir: cacheDir as string,
    maxCacheBytes: bytes('maxCacheBytes', 1024 * 1024),
    maxIndexBytes: bytes('maxIndexBytes', 1024),
    maxChartBytes: bytes('maxChartBytes', 1024),
    fetchTimeoutMs: duration('fetchTimeout', dflt.fetchTimeoutMs, 100, '100ms'),
    resolveIntervalMs: duration('resolveInterval', dflt.resolveIntervalMs, 1000, '1s'),
    repositories: (repos as unknown[]).map((r, i) =>
      compileRepository(r, `repositories[${i}]`, fail),
    ),
  };
}

function compileRepository(
  raw: unknown,
  at: string,
  fail: (field: string, problem: string) => never,
): ChartRepositoryAccess {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(at, 'must be a mapping');
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r))
    if (!REPO_FIELDS.includes(key))
      fail(`${at}.${key}`, `unknown field (allowed: ${REPO_FIELDS.join(', ')})`);
  const str = (key: string): string | undefined => {
    const v = r[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.trim() === '')
      fail(`${at}.${key}`, 'must be a non-empty string');
    return v as string;
  };
  const url = str('url') ?? fail(`${at}.url`, 'is required');
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    fail(`${at}.url`, `"${url}" is not a URL (https://…, http://… or oci://…)`);
  }
  if (!['https:', 'http:', 'oci:'].includes((parsed as URL).protocol))
    fail(`${at}.url`, `must start with https://, http:// or oci://`);
  if ((parsed as URL).username || (parsed as URL).password)
    fail(`${at}.url`, 'must not hold credentials: use usernameFile/passwordFile or tokenFile');
  const secret = (kind: 'username' | 'password' | 'token'): SecretRef | undefined => {
    const file = str(`${kind}File`);
    const env = str(`${kind}Env`);
    if (file !== undefined && env !== undefined)
      fail(`${at}.${kind}File`, `give ${kind}File or ${kind}Env, not both`);
    if (file !== undefined) readable(file, `${at}.${kind}File`, fail);
    return file !== undefined ? { file } : env !== undefined ? { env } : undefined;
  };
  const username = secret('username');
  const password = secret('password');
  const token = secret('token');
  if ((username === undefined) !== (password === undefined))
    fail(
      `${at}.${username ? 'passwordFile' : 'usernameFile'}`,
      'username and password go together',
    );
  if (token && username)
    fail(`${at}.tokenFile`, 'give a token or a username and password, not both');
  const caFile = str('caFile');
  if (caFile !== undefined) readable(caFile, `${at}.caFile`, fail);
  const flag = (key: string): boolean => {
    const v = r[key] ?? false;
    if (typeof v !== 'boolean') fail(`${at}.${key}`, 'must be true or false');
    return v as boolean;
  };
  return {
    url,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(token ? { token } : {}),
    ...(caFile !== undefined ? { caFile } : {}),
    plainHttp: flag('plainHttp'),
    insecureSkipTlsVerify: flag('insecureSkipTlsVerify'),
  };
}

// Checked at start, so a missing file stops the hub with the field's name rather than
// failing every bundle that uses the repository.
function readable(path: string, field: string, fail: (f: string, p: string) => never): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    fail(field, `cannot read "${path}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** The configured access whose url is the longest prefix of `url` (at a "/" boundary). */
export function accessFor(
  settings: Pick<ChartSettings, 'repositories'>,
  url: string,
): ChartRepositoryAccess | undefined {
  let best: ChartRepositoryAccess | undefined;
  for (const r of settings.repositories) {
    const prefix = r.url;
    const fits =
      url === prefix ||
      url === prefix.replace(/\/+$/, '') ||
      (url.startsWith(prefix) && (prefix.endsWith('/') || url[prefix.length] === '/'));
    if (fits && (!best || prefix.length > best.url.length)) best = r;
  }
  return best;
}

/** The HTTP access (CA, TLS check, Authorization header) for a configured entry. */
export async function httpAccess(
  entry: ChartRepositoryAccess | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<HttpAccess & { basic?: { username: string; password: string } }> {
  if (!entry) return {};
  const caPem = entry.caFile
    ? await readSecret({ file: entry.caFile }, 'caFile', entry, env)
    : undefined;
  const out: HttpAccess & { basic?: { username: string; password: string } } = {
    ...(caPem !== undefined ? { caPem } : {}),
    insecureSkipTlsVerify: entry.insecureSkipTlsVerify,
  };
  if (entry.token) {
    out.authorization = `Bearer ${await readSecret(entry.token, 'token', entry, env)}`;
  } else if (entry.username && entry.password) {
    const username = await readSecret(entry.username, 'username', entry, env);
    const password = await readSecret(entry.password, 'password', entry, env);
    out.basic = { username, password };
    out.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }
  return out;
}

// The message names where the secret should be, never what it holds.
async function readSecret(
  ref: SecretRef,
  what: string,
  entry: ChartRepositoryAccess,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  if (ref.env !== undefined) {
    const v = env[ref.env];
    if (v === undefined || v === '')
      throw new ChartFetchError(
        'UNAUTHENTICATED',
        `the ${what} for ${entry.url} is read from $${ref.env}, which is not set (hub config charts.repositories)`,
      );
    return v;
  }
  try {
    const text = await readFile(ref.file as string, 'utf8');
    return what === 'caFile' ? text : text.replace(/\r?\n$/, '');
  } catch (err) {
    throw new ChartFetchError(
      'UNAUTHENTICATED',
      `cannot read the ${what} file for ${entry.url} (${(err as NodeJS.ErrnoException).code ?? 'error'}; hub config charts.repositories)`,
    );
  }
}
