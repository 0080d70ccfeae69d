// Plays the Deployment controller on bare test API servers, which run no controllers: a
// Deployment never gets Pods there, so its health is whatever its status subresource
// says. This writes that status the way the real controller would once a rollout is done
// (observedGeneration = generation, every replica updated and available), for the
// Deployments whose image the test calls good; a bad image never becomes available
// (its status is left as the API server has it: generation not observed).
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import { errorMessage } from '@flotilla/common';

/** A running fake controller; stop() ends its loop. */
export interface DeploymentController {
  /** Status writes done, per cluster (for messages). */
  readonly writes: Map<string, number>;
  stop(): Promise<void>;
}

/** Options of playDeploymentController. */
export interface DeploymentControllerOptions {
  /** Cluster name → kubeconfig path. */
  clusters: ReadonlyMap<string, string>;
  namespace: string;
  name: string;
  /** True when a Deployment with this image becomes available on this cluster (now). */
  available(image: string, cluster: string): boolean;
  /** How often it looks (default 250 ms): a controller's reaction time, not a test sleep. */
  intervalMs?: number;
}

/** Starts the fake controller over every cluster. */
export function playDeploymentController(opts: DeploymentControllerOptions): DeploymentController {
  const apis = new Map(
    [...opts.clusters].map(([name, path]) => {
      const kc = new KubeConfig();
      kc.loadFromFile(path);
      return [name, kc.makeApiClient(AppsV1Api)];
    }),
  );
  const writes = new Map<string, number>();
  let stopped = false;
  const reconcile = async (cluster: string, apps: AppsV1Api): Promise<void> => {
    let d;
    try {
      d = await apps.readNamespacedDeployment({ name: opts.name, namespace: opts.namespace });
    } catch {
      return; // not there yet
    }
    const generation = d.metadata?.generation ?? 0;
    const image = d.spec?.template.spec?.containers[0]?.image ?? '';
    const replicas = d.spec?.replicas ?? 1;
    if ((d.status?.observedGeneration ?? 0) >= generation || !opts.available(image, cluster))
      return;
    d.status = {
      observedGeneration: generation,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
      conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
    };
    try {
      await apps.replaceNamespacedDeploymentStatus({
        name: opts.name,
        namespace: opts.namespace,
        body: d,
      });
      writes.set(cluster, (writes.get(cluster) ?? 0) + 1);
    } catch (err) {
      // A conflict with the agent's apply: the next round reads it again.
      if (!/409|Conflict/i.test(errorMessage(err))) throw err;
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await Promise.all([...apis].map(([c, apps]) => reconcile(c, apps).catch(() => undefined)));
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
    }
  })();
  return {
    writes,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
