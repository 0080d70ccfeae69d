// Turns status changes into alerts: a cluster entering Failed or Offline, and every new
// drift event. Only transitions alert; a cluster staying Failed does not repeat. A cluster
// Failed because bundles failed to render is not an apply failure: that has its own
// alert, once per bundle and revision (render-alerts.ts).
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
  const offChange = source.onChange((c: ClusterStatus, previous: ClusterState | undefined) => {
    const kind = ALERTING[c.state];
    if (!kind || previous === c.state) return;
    if (c.state === 'Failed' && (c.renderFailures?.length ?? 0) > 0) return;
    const bundle =
      c.state === 'Failed'
        ? c.bundles
            .filter((b) => b.failed > 0)
            .map((b) => b.name)
            .join(',')
        : '';
    sink.alert({
      kind,
      cluster: c.name,
      bundle,
      revision: c.desiredRevision,
      message: c.message,
      time: new Date(now()).toISOString(),
    });
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
