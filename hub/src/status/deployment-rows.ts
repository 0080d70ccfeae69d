// A cluster's deployment rows (every bundle), kept per record until the record or the
// cluster's delivery state changes, with each row's JSON as UTF-8 bytes. A fleet query
// during a commit's fan-out (`flotilla get deployments -l env=prod` over 1,000 clusters ×
// 5 bundles) used to rebuild and serialize every row on every request; now it only picks
// cached rows of the clusters that match, and rebuilds those of the clusters that changed
// since. The rows of a cluster share one buffer: one allocation per cluster, not per row
// (a buffer costs ~250 bytes beside its contents, a row ~500).
import { ownBytes } from './cluster-json.js';
import type { JsonBytes } from './cluster-json.js';
import type { BundleDeployment } from './deployments.js';
import { deploymentsOf } from './deployments.js';
import type { ClusterRecord, ClusterState } from './model.js';

/** One deployment with its JSON. */
export interface DeploymentRow {
  deployment: BundleDeployment;
  json: JsonBytes;
}

/** Deployment rows per cluster record, cached until its stamp or delivery state changes. */
export class DeploymentRowsCache {
  // Keyed by the record object: a restored record is a new object, a new entry.
  private readonly cache = new WeakMap<ClusterRecord, { key: string; rows: DeploymentRow[] }>();

  /**
   * Every deployment of rec, sorted by bundle. `stamp` must change whenever the record
   * changes (FleetStatus counts its touches); the delivery state is the time-dependent
   * part (a cluster turns Offline without a touch).
   */
  rows(rec: ClusterRecord, stamp: number, clusterState: ClusterState): readonly DeploymentRow[] {
    const key = `${stamp}|${clusterState}`;
    const hit = this.cache.get(rec);
    if (hit?.key === key) return hit.rows;
    const deployments = deploymentsOf(rec, clusterState);
    const texts = deployments.map((d) => JSON.stringify(d));
    const text = texts.join('');
    const bytes = ownBytes(text);
    // ASCII: one byte per character, no need to measure each row.
    const ascii = bytes.length === text.length;
    let start = 0;
    const rows = deployments.map((deployment, i) => {
      const t = texts[i] as string;
      const end = start + (ascii ? t.length : Buffer.byteLength(t));
      const row = { deployment, json: { bytes, start, end } };
      start = end;
      return row;
    });
    this.cache.set(rec, { key, rows });
    return rows;
  }
}
