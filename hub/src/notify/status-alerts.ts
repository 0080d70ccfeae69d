// Turns status changes into alerts: a cluster entering Failed or Offline, a bundle that
// starts failing to apply on a cluster already Failed (for a render failure or another
// bundle), and every new drift event. Only transitions alert; a cluster staying Failed for
// the same bundles does not repeat. A render failure is not an apply failure: it has its
// own alert, once per bundle and revision (render-alerts.ts).
import type { ClusterState, ClusterStatus } from '../status/model.js';
import type { DriftListener, StatusListener } from '../status/fleet-status.js';
import type { Alert } from './notifier.js';

/** What the bridge needs from the status model (FleetStatus implements it). */
export interface AlertSource {
  onChange(listener: StatusListener): () => void;
  onDrift(listener: DriftListener): () => void;
}

/** Where alerts go (Notifier implements it). */
export interface AlertSink {
  alert(a: Alert): void;
}

const ALERTING: Partial<Record<ClusterState, Alert['kind']>> = {
  Failed: 'failed',
  Offline: 'offline',
};

/** Wires status transitions to the sink; returns an unsubscribe function. */
export function alertOnTransitions(
  source: AlertSource,
  sink: AlertSink,
  now: () => number = Date.now,
): () => void {
  // Per cluster, the bundles failing to apply when it last showed Failed: a bundle not
  // among them is a new failure. Forgotten when the cluster leaves Failed, so a later
  // commit failing again alerts again, as the cluster's own transition does.
  const failing = new Map<string, ReadonlySet<string>>();
  const offChange = source.onChange((c: ClusterStatus, previous: ClusterState | undefined) => {
    const kind = ALERTING[c.state];
    const failed = c.bundles.filter((b) => b.failed > 0).map((b) => b.name);
    const known = failing.get(c.name);
    if (c.state === 'Failed') failing.set(c.name, new Set(failed));
    else failing.delete(c.name);
    if (!kind) return;
    const alert = (bundle: string, message: string): void =>
      sink.alert({
        kind,
        cluster: c.name,
        bundle,
        revision: c.desiredRevision,
        message,
        time: new Date(now()).toISOString(),
      });
    if (c.state !== 'Failed') {
      if (previous !== c.state) alert('', c.message);
      return;
    }
    const rendering = (c.renderFailures?.length ?? 0) > 0;
    // Failed before this bridge saw it (a hub restart): those failures were alerted then.
    if (known === undefined && previous === 'Failed') return;
    const fresh = failed.filter((b) => !known?.has(b));
    if (fresh.length > 0) alert(fresh.join(','), c.applyFailure || c.message);
    else if (previous !== 'Failed' && !rendering) alert('', c.message);
  });
  const offDrift = source.onDrift((cluster, drift, atMs) => {
    for (const bundle of drift.bundles) {
      sink.alert({
        kind: 'drift',
        cluster,
        bundle,
        revision: drift.revision,
        message: '',
        time: new Date(atMs).toISOString(),
        objects: drift.objects
          .filter((o) => o.bundle === bundle)
          .map(({ kind, namespace, name, fields, changedBy }) => ({
            kind,
            namespace,
            name,
            fields,
            changedBy,
          })),
      });
    }
  });
  return () => {
    offChange();
    offDrift();
  };
}
