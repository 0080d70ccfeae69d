// What a reader limited to some clusters (an API token created with --selector) sees:
// the same StatusQuery and HistoryReader, narrowed to the clusters its selector matches.
// Every read of the HTTP and gRPC APIs goes through this view, so a cluster outside the
// selector is "not found", never listed, never counted, and its history never returned.
// Entries about no cluster (rollout-level transitions, the audit log) are left out too.
import type { Selector } from '@flotilla/common';
import { DEPLOYMENT_STATES } from '../status/deployments.js';
import type { BundleDeployment, BundleSummary, DeploymentState } from '../status/deployments.js';
import type { ClusterFilter, DeploymentFilter } from '../status/fleet-status.js';
import type { ClusterStatus } from '../status/model.js';
import type { Reader } from './access.js';
import type { HistoryReader, StatusQuery } from './types.js';

/** Both selectors must match. */
export function bothSelectors(a: Selector, b: Selector | undefined): Selector {
  if (!b || b.empty) return a;
  return { empty: false, matches: (labels) => a.matches(labels) && b.matches(labels) };
}

function asClusterFilter(filter: Selector | ClusterFilter | undefined): ClusterFilter {
  if (!filter) return {};
  return 'matches' in filter ? { selector: filter } : filter;
}

/** The status narrowed to the clusters `scope` matches. */
export function scopedStatus(status: StatusQuery, scope: Selector): StatusQuery {
  const visible = (c: ClusterStatus | undefined): ClusterStatus | undefined =>
    c && scope.matches(c.labels) ? c : undefined;
  const narrow = (filter: Selector | ClusterFilter | undefined): ClusterFilter => {
    const f = asClusterFilter(filter);
    return { ...f, selector: bothSelectors(scope, f.selector) };
  };
  const deployments = (filter: DeploymentFilter = {}): BundleDeployment[] =>
    status.deployments({ ...filter, selector: bothSelectors(scope, filter.selector) });
  return {
    list: (filter) => status.list(narrow(filter)),
    listBytes: (filter) => status.listBytes(narrow(filter)),
    get: (name) => visible(status.get(name)),
    describe: (name) => (visible(status.get(name)) ? status.describe(name) : undefined),
    deployments,
    deploymentsBytes: (filter: DeploymentFilter = {}) =>
      status.deploymentsBytes({ ...filter, selector: bothSelectors(scope, filter.selector) }),
    bundleSummaries: () => summaries(deployments()),
    onChange: (listener) =>
      status.onChange((c, previous) => {
        if (scope.matches(c.labels)) listener(c, previous);
      }),
  };
}

// Per-bundle counts over the visible deployments only, every state present.
function summaries(deployments: readonly BundleDeployment[]): BundleSummary[] {
  const byBundle = new Map<string, BundleSummary>();
  for (const d of deployments) {
    let s = byBundle.get(d.bundle);
    if (!s) {
      const states = Object.fromEntries(DEPLOYMENT_STATES.map((st) => [st, 0])) as Record<
        DeploymentState,
        number
      >;
      s = { name: d.bundle, clusters: 0, states };
      byBundle.set(d.bundle, s);
    }
    s.clusters++;
    s.states[d.state]++;
  }
  return [...byBundle.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** History narrowed to entries of clusters `status` (already scoped) can see. */
export function scopedHistory(history: HistoryReader, status: StatusQuery): HistoryReader {
  const clusterVisible = (cluster: string): boolean =>
    cluster !== '' && status.get(cluster) !== undefined;
  return {
    query: (q) => {
      if (q.cluster && !clusterVisible(q.cluster)) return [];
      return history.query({ ...q, clusterVisible });
    },
  };
}

/** What a reader sees: everything, or the clusters its token's selector matches. */
export function viewFor<H extends HistoryReader | undefined>(
  reader: Reader | undefined,
  status: StatusQuery,
  history: H,
): { status: StatusQuery; history: H } {
  if (!reader?.clusters) return { status, history };
  const s = scopedStatus(status, reader.clusters.selector);
  return { status: s, history: (history ? scopedHistory(history, s) : history) as H };
}
