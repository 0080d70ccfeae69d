// serviceAccountKubeconfig(): a kubeconfig that acts as a ServiceAccount, with a real token
// minted through the TokenRequest API (the binaries cluster's kube-apiserver is started
// with the service-account issuer and keys). A process run with it has exactly the RBAC
// the account was granted, not the test's admin rights. The token lives in its own file,
// named by the kubeconfig's `tokenFile`, and is re-minted at 80 % of its lifetime, as the
// kubelet rotates a pod's projected token; readers must re-read the file (the agent's
// kubeconfig loader does, every minute).
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { TestCluster } from './cluster.js';

/** Options of serviceAccountKubeconfig(). */
export interface ServiceAccountKubeconfigOptions {
  namespace: string;
  /** The ServiceAccount's name; it must exist. */
  name: string;
  /** Where the kubeconfig and the token file go (default: a new temp dir, removed by stop()). */
  dir?: string;
  /** Requested token lifetime in seconds (default 3600; the API server's minimum is 600). */
  expirationSeconds?: number;
  /** Called when a refresh fails (it is tried again 30 s later); default: ignored. */
  onRefreshError?: (err: unknown) => void;
}

/** A kubeconfig acting as a ServiceAccount. */
export interface ServiceAccountKubeconfig {
  kubeconfigPath: string;
  /** Holds the current token (mode 0600), rewritten on refresh. */
  tokenFile: string;
  /** When the current token expires. */
  expiresAt(): Date;
  /** Mints a new token now (also done on a timer at 80 % of the lifetime). */
  refresh(): Promise<void>;
  /** Stops refreshing; removes the directory when it made it. Idempotent. */
  stop(): Promise<void>;
}

/** Default token lifetime: 1 h, longer than any one test; refreshed for longer runs (the demo). */
export const SERVICE_ACCOUNT_TOKEN_SECONDS = 3_600;
const REFRESH_RETRY_MS = 30_000;

/** Mints a token for namespace/name with the cluster's admin kubeconfig and writes a kubeconfig using it. */
export async function serviceAccountKubeconfig(
  cluster: TestCluster,
  opts: ServiceAccountKubeconfigOptions,
): Promise<ServiceAccountKubeconfig> {
  // Loaded here, like startCluster's kubeconfig mode: processes that need no cluster skip it.
  const { CoreV1Api, KubeConfig } = await import('@kubernetes/client-node');
  const admin = new KubeConfig();
  admin.loadFromFile(cluster.kubeconfigPath);
  const server = admin.getCurrentCluster();
  if (!server) throw new Error(`${cluster.kubeconfigPath} has no current cluster`);
  const core = admin.makeApiClient(CoreV1Api);
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), `flotilla-sa-${opts.name}-`)));
  if (!ownDir) await mkdir(dir, { recursive: true, mode: 0o700 });
  const tokenFile = join(dir, `${opts.namespace}-${opts.name}.token`);
  const kubeconfigPath = join(dir, `${opts.namespace}-${opts.name}.kubeconfig`);
  const seconds = opts.expirationSeconds ?? SERVICE_ACCOUNT_TOKEN_SECONDS;
  let expires = new Date(0);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = (delayMs: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      refresh().catch((err: unknown) => {
        opts.onRefreshError?.(err);
        schedule(REFRESH_RETRY_MS);
      });
    }, delayMs);
    // A test process ends when its tests do, whatever the next refresh.
    timer.unref();
  };
  const refresh = async (): Promise<void> => {
    const res = await core.createNamespacedServiceAccountToken({
      name: opts.name,
      namespace: opts.namespace,
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences: [], expirationSeconds: seconds },
      },
    });
    const token = res.status?.token;
    if (!token)
      throw new Error(`TokenRequest for ${opts.namespace}/${opts.name} returned no token`);
    // Written aside and renamed: a reader never sees half a token.
    await writeFile(`${tokenFile}.new`, token, { mode: 0o600 });
    await rename(`${tokenFile}.new`, tokenFile);
    expires = new Date(res.status?.expirationTimestamp ?? Date.now() + seconds * 1000);
    clearTimeout(timer);
    schedule(Math.max(1_000, (expires.getTime() - Date.now()) * 0.8));
  };

  await refresh();
  const clusterEntry: Record<string, unknown> = { server: server.server };
  if (server.caData) clusterEntry['certificate-authority-data'] = server.caData;
  if (server.caFile) clusterEntry['certificate-authority'] = server.caFile;
  if (server.skipTLSVerify) clusterEntry['insecure-skip-tls-verify'] = true;
  const user = `system:serviceaccount:${opts.namespace}:${opts.name}`;
  await writeFile(
    kubeconfigPath,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: cluster.name, cluster: clusterEntry }],
      // tokenFile is kubectl's and the agent's key; @kubernetes/client-node reads token-file (once).
      users: [{ name: user, user: { tokenFile, 'token-file': tokenFile } }],
      contexts: [{ name: cluster.name, context: { cluster: cluster.name, user } }],
      'current-context': cluster.name,
    }),
    { mode: 0o600 },
  );
  return {
    kubeconfigPath,
    tokenFile,
    expiresAt: () => expires,
    refresh,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
