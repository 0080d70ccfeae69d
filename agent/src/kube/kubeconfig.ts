// Loading a kubeconfig without loading @kubernetes/client-node: importing that package
// costs about 75 MiB of RSS (it loads every generated API model), which alone would
// break the agent's 100 MiB budget. Tokens, token files, client certificates, basic
// auth, CA bundles, several KUBECONFIG files and in-cluster service accounts are read
// here; only kubeconfigs that need exec or auth-provider plugins, or a proxy, import
// the library, lazily, and use its KubeConfig.
import { readFileSync, statSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { parseYamlObject } from '@flotilla/common';

/** What the raw-JSON client needs from a kubeconfig; @kubernetes/client-node's KubeConfig satisfies it too. */
export interface KubeConfigSource {
  getCurrentCluster(): { server: string; proxyUrl?: string } | null;
  /** Sets TLS material and auth headers on request options (called per request: tokens expire). */
  applyToHTTPSOptions(opts: RequestOptions): Promise<void>;
}

type Named<T> = { name?: string } & T;
type Entry = Record<string, unknown>;

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A service-account token file is re-read this often (1 min): the kubelet rotates it. */
const TOKEN_FILE_REFRESH_MS = 60_000;

function str(e: Entry | undefined, key: string): string | undefined {
  const v = e?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function merged(files: string[]): { config: Entry; dirOf: Map<Entry, string> } {
  const config: Entry = { clusters: [], users: [], contexts: [] };
  const dirOf = new Map<Entry, string>();
  for (const file of files) {
    const doc = parseYamlObject(readFileSync(file, 'utf8'), file);
    for (const list of ['clusters', 'users', 'contexts'] as const) {
      for (const item of (Array.isArray(doc[list]) ? doc[list] : []) as Named<Entry>[]) {
        // The first file that defines a name wins, as kubectl merges.
        if ((config[list] as Named<Entry>[]).some((x) => x.name === item.name)) continue;
        (config[list] as Named<Entry>[]).push(item);
        dirOf.set(item, dirname(file));
      }
    }
    config['current-context'] ??= doc['current-context'];
  }
  return { config, dirOf };
}

function pick(
  list: unknown,
  name: string | undefined,
  field: string,
  what: string,
): { entry: Entry; item: Entry } {
  const item = ((Array.isArray(list) ? list : []) as Named<Entry>[]).find((x) => x.name === name);
  const entry = item?.[field];
  if (!item || typeof entry !== 'object' || entry === null)
    throw new Error(`kubeconfig has no ${what} named "${name ?? ''}"`);
  return { entry: entry as Entry, item };
}

/** Reads an inline base64 value or a file (relative to the kubeconfig's directory). */
function material(e: Entry, dataKey: string, fileKey: string, dir: string): Buffer | undefined {
  const data = str(e, dataKey);
  if (data) return Buffer.from(data, 'base64');
  const file = str(e, fileKey);
  return file ? readFileSync(isAbsolute(file) ? file : join(dir, file)) : undefined;
}

function tokenReader(file: string): () => string {
  let value = '';
  let readAt = 0;
  return () => {
    if (Date.now() - readAt > TOKEN_FILE_REFRESH_MS) {
      value = readFileSync(file, 'utf8').trim();
      readAt = Date.now();
    }
    return value;
  };
}

function inCluster(): KubeConfigSource {
  const host = process.env.KUBERNETES_SERVICE_HOST as string;
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${process.env.KUBERNETES_SERVICE_PORT ?? '443'}`;
  const ca = readFileSync(join(SA_DIR, 'ca.crt'));
  const token = tokenReader(join(SA_DIR, 'token'));
  return {
    getCurrentCluster: () => ({ server }),
    applyToHTTPSOptions: async (opts) => {
      opts.ca = ca;
      opts.headers = { ...(opts.headers ?? {}), authorization: `Bearer ${token()}` };
    },
  };
}

/** The library's KubeConfig, imported only when a plugin or proxy needs it. */
function viaLibrary(
  path: string | undefined,
  server: string,
  proxyUrl: string | undefined,
): KubeConfigSource {
  const kc = import('@kubernetes/client-node').then((m) => {
    const k = new m.KubeConfig();
    if (path) k.loadFromFile(path);
    else k.loadFromDefault();
    return k;
  });
  return {
    getCurrentCluster: () => ({ server, ...(proxyUrl ? { proxyUrl } : {}) }),
    applyToHTTPSOptions: async (opts) => (await kc).applyToHTTPSOptions(opts),
  };
}

function fromFiles(files: string[], path: string | undefined): KubeConfigSource {
  const { config, dirOf } = merged(files);
  const contextName = str(config, 'current-context');
  const { entry: context } = pick(config.contexts, contextName, 'context', 'context');
  const { entry: cluster, item: clusterItem } = pick(
    config.clusters,
    str(context, 'cluster'),
    'cluster',
    'cluster',
  );
  const { entry: user, item: userItem } = pick(config.users, str(context, 'user'), 'user', 'user');
  const server = str(cluster, 'server');
  if (!server)
    throw new Error(`cluster "${str(context, 'cluster') ?? ''}" in the kubeconfig has no server`);
  const proxyUrl = str(cluster, 'proxy-url');
  if (user.exec || user['auth-provider'] || proxyUrl) return viaLibrary(path, server, proxyUrl);
  const cdir = dirOf.get(clusterItem) ?? '.';
  const udir = dirOf.get(userItem) ?? '.';
  const ca = material(cluster, 'certificate-authority-data', 'certificate-authority', cdir);
  const cert = material(user, 'client-certificate-data', 'client-certificate', udir);
  const key = material(user, 'client-key-data', 'client-key', udir);
  const insecure = cluster['insecure-skip-tls-verify'] === true;
  const servername = str(cluster, 'tls-server-name');
  const tokenFile = str(user, 'tokenFile');
  const token = tokenFile
    ? tokenReader(isAbsolute(tokenFile) ? tokenFile : join(udir, tokenFile))
    : () => str(user, 'token');
  const basic = str(user, 'username')
    ? `${str(user, 'username')}:${str(user, 'password') ?? ''}`
    : undefined;
  return {
    getCurrentCluster: () => ({ server }),
    applyToHTTPSOptions: async (opts) => {
      if (ca) opts.ca = ca;
      if (cert) opts.cert = cert;
      if (key) opts.key = key;
      if (insecure) opts.rejectUnauthorized = false;
      if (servername) opts.servername = servername;
      const t = token();
      if (t) opts.headers = { ...(opts.headers ?? {}), authorization: `Bearer ${t}` };
      else if (basic) opts.auth = basic;
    },
  };
}

function exists(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Loads a kubeconfig: this file when given, else KUBECONFIG (several files merged), ~/.kube/config, or the in-cluster service account. */
export function loadKubeConfig(path?: string): KubeConfigSource {
  if (path) {
    // --kubeconfig falls back to KUBECONFIG, which may list several files.
    const files = path.split(delimiter).filter((f) => f !== '');
    return files.length > 1 ? fromFiles(files.filter(exists), undefined) : fromFiles([path], path);
  }
  const env = (process.env.KUBECONFIG ?? '').split(':').filter((f) => f !== '' && exists(f));
  if (env.length > 0) return fromFiles(env, undefined);
  const home = join(homedir(), '.kube', 'config');
  if (exists(home)) return fromFiles([home], home);
  if (process.env.KUBERNETES_SERVICE_HOST) return inCluster();
  throw new Error(
    'no kubeconfig: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a cluster',
  );
}
