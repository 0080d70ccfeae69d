// Render failures as alerts: one per bundle and revision (a cluster's whole desired state
// counts as its own "bundle"), naming the clusters it keeps from that revision, however
// many clusters the bundle targets and however often the hub renders the revision.
import type { NewRenderFailure } from '../status/render-failures.js';
import type { Alert } from './notifier.js';

/** Cluster names an alert lists (20); clusterCount has the rest. */
export const MAX_ALERT_CLUSTERS = 20;

/** One alert per bundle and revision among failures no status record held before. */
export function renderFailureAlerts(fresh: readonly NewRenderFailure[], now = Date.now): Alert[] {
  const byKey = new Map<string, Alert & { clusters: string[]; clusterCount: number }>();
  for (const { cluster, failure: f } of fresh) {
    const key = `${f.bundle || `cluster:${cluster}`}\0${f.revision}`;
    let a = byKey.get(key);
    if (!a) {
      a = {
        kind: 'render',
        cluster: '',
        bundle: f.bundle,
        revision: f.revision,
        message: f.message,
        time: new Date(now()).toISOString(),
        clusters: [],
        clusterCount: 0,
        servingRevision: f.servingRevision,
      };
      byKey.set(key, a);
    }
    a.clusterCount++;
    if (a.clusters.length < MAX_ALERT_CLUSTERS) a.clusters.push(cluster);
  }
  for (const a of byKey.values()) if (a.clusterCount === 1) a.cluster = a.clusters[0] ?? '';
  return [...byKey.values()];
}
