// Pinned versions of the real servers the test environment runs, and the rules that
// locate their binaries. tools/build-k8s.sh and tools/build-nats.sh follow the same
// rules (cache root, version, file names): change both together.
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Kubernetes release of the cached kube-apiserver (override: FLOTILLA_K8S_VERSION). */
export const K8S_VERSION = 'v1.35.4';
/** nats-server release of the cached binary (override: FLOTILLA_NATS_VERSION). */
export const NATS_SERVER_VERSION = 'v2.12.2';
/** kustomize release of the cached program (override: FLOTILLA_KUSTOMIZE_VERSION). */
export const KUSTOMIZE_VERSION = 'v5.8.1';
/** helm release of the cached program (override: FLOTILLA_HELM_VERSION). */
export const HELM_VERSION = 'v3.19.5';
/** sops release of the cached program (override: FLOTILLA_SOPS_VERSION). */
export const SOPS_VERSION = 'v3.13.3';
/** CNCF Distribution release of the cached OCI registry (override: FLOTILLA_REGISTRY_VERSION). */
export const REGISTRY_VERSION = 'v3.1.2';
/** Toxiproxy release of the cached TCP fault proxy (override: FLOTILLA_TOXIPROXY_VERSION). */
export const TOXIPROXY_VERSION = 'v2.12.0';
/** k3s image used when a container runtime exists; same minor as K8S_VERSION where published. */
export const K3S_IMAGE = 'rancher/k3s:v1.35.4-k3s1';
/** NATS image used when a container runtime exists. */
export const NATS_IMAGE = 'nats:2.12-alpine';

/** Absolute paths of the server binaries the binaries mode runs. */
export interface BinaryPaths {
  kubeApiserver: string;
  etcd: string;
  natsServer: string;
  /** kustomize, run by the renderer for Kustomize bundles (tools/build-tools.sh). */
  kustomize: string;
  /** helm, run by the renderer for Helm bundles (tools/build-tools.sh). */
  helm: string;
  /** sops, run by the renderer for SOPS-encrypted files and by tests to encrypt (tools/build-tools.sh). */
  sops: string;
  /** CNCF Distribution's registry, the OCI registry of chart tests (tools/build-registry.sh). */
  registry: string;
  /** Toxiproxy's server, the TCP proxy of the network-fault tests (tools/build-toxiproxy.sh). */
  toxiproxy: string;
}

/** Cache root: FLOTILLA_CACHE_DIR, else $XDG_CACHE_HOME/flotilla, else ~/.cache/flotilla. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLOTILLA_CACHE_DIR) return env.FLOTILLA_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'flotilla');
}

/**
 * Where each binary is: FLOTILLA_KUBE_APISERVER / FLOTILLA_ETCD / FLOTILLA_NATS_SERVER
 * win, else the cache layout written by tools/build-*.sh. Read at call time, never at
 * import time, so a test can change the environment first.
 */
export function binaryPaths(env: NodeJS.ProcessEnv = process.env): BinaryPaths {
  const root = cacheRoot(env);
  const k8s = join(root, `k8s-${env.FLOTILLA_K8S_VERSION || K8S_VERSION}`);
  const nats = join(root, `nats-server-${env.FLOTILLA_NATS_VERSION || NATS_SERVER_VERSION}`);
  return {
    kubeApiserver: env.FLOTILLA_KUBE_APISERVER || join(k8s, 'kube-apiserver'),
    etcd: env.FLOTILLA_ETCD || join(k8s, 'etcd'),
    natsServer: env.FLOTILLA_NATS_SERVER || join(nats, 'nats-server'),
    kustomize:
      env.FLOTILLA_KUSTOMIZE ||
      join(
        root,
        `tools-kustomize-${env.FLOTILLA_KUSTOMIZE_VERSION || KUSTOMIZE_VERSION}`,
        'kustomize',
      ),
    helm:
      env.FLOTILLA_HELM ||
      join(root, `tools-helm-${env.FLOTILLA_HELM_VERSION || HELM_VERSION}`, 'helm'),
    sops:
      env.FLOTILLA_SOPS ||
      join(root, `tools-sops-${env.FLOTILLA_SOPS_VERSION || SOPS_VERSION}`, 'sops'),
    registry:
      env.FLOTILLA_REGISTRY ||
      join(root, `registry-${env.FLOTILLA_REGISTRY_VERSION || REGISTRY_VERSION}`, 'registry'),
    toxiproxy:
      env.FLOTILLA_TOXIPROXY ||
      join(root, `toxiproxy-${env.FLOTILLA_TOXIPROXY_VERSION || TOXIPROXY_VERSION}`, 'toxiproxy'),
  };
}

/** The hint every "binary missing" message ends with. */
export const PREREQS_HINT =
  'run integration-tests/tools/prereqs.sh (builds and caches the pinned binaries)';
