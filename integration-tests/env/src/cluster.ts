// startCluster(): a real Kubernetes API for a test, from the cheapest source available.
// KUBECONFIG → that cluster; a container runtime → k3s; otherwise cached binaries.
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBinariesCluster } from './cluster-binaries.js';
import { PrerequisiteMissingError } from './errors.js';
import { removeOnExit } from './processes.js';
import { chooseRuntime } from './runtime.js';
import { binaryPaths, K3S_IMAGE, PREREQS_HINT } from './versions.js';

/** Where a test cluster comes from. */
export type ClusterMode = 'binaries' | 'k3s' | 'kubeconfig';

/** A Kubernetes API a test can use through `kubeconfigPath`. */
export interface TestCluster {
  /** Name given at start (also the kubeconfig context name in binaries mode). */
  name: string;
  mode: ClusterMode;
  /** A kubeconfig with cluster-admin rights; load with KubeConfig.loadFromFile(). */
  kubeconfigPath: string;
  /** API server URL. */
  server: string;
  /** Stops what startCluster() started and removes its temp dir; idempotent. */
  stop(): Promise<void>;
}

/** Options of startCluster(). */
export interface StartClusterOptions {
  /** Cluster name, used in logs and paths. Default "cluster-<n>". */
  name?: string;
  /** Directory for the server logs (kept after stop). Default: inside the temp dir. */
  logDir?: string;
}

let counter = 0;

/**
 * Starts (or attaches to) a Kubernetes API. With KUBECONFIG set every call returns that
 * cluster: tests must then create their own namespaces, as they share it.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<TestCluster> {
  const name = options.name ?? `cluster-${++counter}`;
  if (process.env.KUBECONFIG) return await attachKubeconfig(name, process.env.KUBECONFIG);
  const dir = await mkdtemp(join(tmpdir(), `flotilla-${name.replace(/[^a-zA-Z0-9-]/g, '-')}-`));
  const cleanup = async (): Promise<void> => {
    // FLOTILLA_KEEP_TMP=1 keeps data and logs to debug a failed run.
    if (process.env.FLOTILLA_KEEP_TMP !== '1') await rm(dir, { recursive: true, force: true });
  };
  if ((await chooseRuntime()) === 'containers') return startK3s(name, dir, cleanup);

  const bins = binaryPaths();
  for (const [what, path] of [
    ['kube-apiserver', bins.kubeApiserver],
    ['etcd', bins.etcd],
  ] as const) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      await cleanup();
      throw new PrerequisiteMissingError(
        what,
        `${PREREQS_HINT}, or set FLOTILLA_${what === 'etcd' ? 'ETCD' : 'KUBE_APISERVER'}`,
        `${path} not found`,
      );
    }
  }
  // On a start failure the temp dir is kept: the error message points at its logs.
  const cluster = await startBinariesCluster(name, dir, options.logDir ?? dir, bins);
  // Started: a crashed test must not leave etcd data behind (stop() is the normal path).
  removeOnExit(dir);
  return {
    name,
    mode: 'binaries',
    kubeconfigPath: cluster.kubeconfigPath,
    server: cluster.server,
    stop: once(async () => {
      await cluster.stop();
      await cleanup();
    }),
  };
}

// The Kubernetes client is loaded only where a kubeconfig is read: a process that starts
// only NATS or Git (a benchmark measuring its own memory) does not carry it.
async function attachKubeconfig(name: string, kubeconfigPath: string): Promise<TestCluster> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error(`KUBECONFIG ${kubeconfigPath} has no current cluster`);
  // Not ours to stop.
  return { name, mode: 'kubeconfig', kubeconfigPath, server, stop: async () => undefined };
}

async function startK3s(
  name: string,
  dir: string,
  cleanup: () => Promise<void>,
): Promise<TestCluster> {
  // Imported lazily: the module is only needed when a container runtime exists.
  const { K3sContainer } = await import('@testcontainers/k3s');
  const container = await new K3sContainer(process.env.FLOTILLA_K3S_IMAGE || K3S_IMAGE).start();
  const kubeconfigPath = join(dir, 'kubeconfig.yaml');
  await writeFile(kubeconfigPath, container.getKubeConfig(), { mode: 0o600 });
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    name,
    mode: 'k3s',
    kubeconfigPath,
    server: kc.getCurrentCluster()?.server ?? '',
    stop: once(async () => {
      await container.stop();
      await cleanup();
    }),
  };
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}
