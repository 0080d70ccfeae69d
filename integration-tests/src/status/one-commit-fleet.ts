// A fleet of one commit for the status tests: a source that hands out REV once and a
// renderer giving each cluster one empty bundle (our own interfaces, FleetSource and
// HubRenderer: the status path under test starts after them).
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
import { bundleDigest, desiredStateDigest } from '@flotilla/common';
import type { FleetSnapshot, FleetSource, HubRenderer } from '@flotilla/hub';

/** The one commit. */
export const REV = 'c0ffee0123456789abcdef0123456789abcdef01';

/** A cluster's desired state at REV: one bundle, no objects. */
export function desired(cluster: string): DesiredState {
  const b = {
    name: 'app',
    drift: { mode: 'enforce' as const, ignore: [] },
    forceConflicts: true,
    objects: [],
  };
  const bundle = { ...b, digest: bundleDigest(b) } as BundleDesiredState;
  return {
    cluster,
    revision: REV,
    digest: desiredStateDigest(cluster, [bundle]),
    bundles: [bundle],
  };
}

/** A source that hands out REV once, when started. */
export class OneCommit implements FleetSource {
  readonly name = 'fleet';
  private listener: ((s: FleetSnapshot) => void | Promise<void>) | undefined;
  onSnapshot(l: (s: FleetSnapshot) => void | Promise<void>): () => void {
    this.listener = l;
    return () => (this.listener = undefined);
  }
  start(): void {
    void this.listener?.({ source: 'fleet', revision: REV });
  }
  async stop(): Promise<void> {}
  status() {
    return { lastFetchedRevision: REV, lastFetchAt: new Date(), lastError: undefined };
  }
}

/** A renderer giving each of the clusters its desired(cluster), with labels. */
export function oneBundleRenderer(
  labels: ReadonlyMap<string, Record<string, string>>,
): HubRenderer {
  return {
    render: async ({ revision }) => ({
      revision,
      clusters: new Map([...labels.keys()].map((c) => [c, desired(c)])),
      labels: new Map(labels),
      errors: [],
    }),
  };
}
