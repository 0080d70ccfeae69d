// Test helpers: events with realistic data for the status model, history and benchmarks.
import type {
  AppliedData,
  BundleHealthState,
  EventKind,
  FlotillaEvent,
  HealthChangedData,
} from '@flotilla/common';
import { createEvent } from '@flotilla/common';

/** An applied event for cluster at revision/digest with these bundles (name → digest). */
export function appliedEvent(
  cluster: string,
  revision: string,
  digest: string,
  bundles: Record<string, string>,
  time: Date,
  opts: {
    result?: AppliedData['result'];
    failures?: Record<string, string[]>;
    kind?: EventKind;
  } = {},
): FlotillaEvent<AppliedData> {
  const data: AppliedData = {
    revision,
    digest,
    generation: 1,
    result: opts.result ?? 'applied',
    durationMs: 120,
    bundles: Object.entries(bundles).map(([name, d]) => {
      const failures = opts.failures?.[name] ?? [];
      return {
        name,
        digest: d,
        created: 2,
        configured: 0,
        unchanged: 3,
        deleted: 0,
        failed: failures.length,
        failures,
      };
    }),
  };
  return createEvent(
    cluster,
    opts.kind ?? (data.result === 'applied' ? 'applied' : 'apply-failed'),
    data,
    time,
  );
}

/** A drift-detected (or -corrected) event for one object of a bundle. */
export function driftEvent(
  cluster: string,
  bundle: string,
  time: Date,
  opts: {
    kind?: 'drift-detected' | 'drift-corrected';
    fields?: string[];
    changedBy?: string[];
    name?: string;
    revision?: string;
  } = {},
): FlotillaEvent {
  // The agent's schema (DriftDetectedData / DriftCorrectedData in common/src/events.ts).
  const object = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    namespace: 'apps',
    name: opts.name ?? 'web',
  };
  const data =
    opts.kind === 'drift-corrected'
      ? { bundle, revision: opts.revision ?? '', object, driftEventId: 'x', latencyMs: 50 }
      : {
          bundle,
          revision: opts.revision ?? '',
          object,
          deleted: false,
          changes: (opts.fields ?? ['/spec/replicas']).map((path) => ({ path, old: 1, new: 2 })),
          manager: (opts.changedBy ?? ['kubectl-edit'])[0] ?? '',
          mode: 'enforce',
          heals: 1,
          fight: false,
        };
  return createEvent(cluster, opts.kind ?? 'drift-detected', data, time);
}

/** A health-changed event for a bundle, as the agent's HealthTracker publishes it. */
export function healthEvent(
  cluster: string,
  bundle: string,
  state: BundleHealthState,
  time: Date,
  opts: { revision?: string; digest?: string; reasons?: string[] } = {},
): FlotillaEvent<HealthChangedData> {
  const data: HealthChangedData = {
    bundle,
    revision: opts.revision ?? '',
    state,
    previous: '',
    counts: {
      ready: state === 'Ready' ? 1 : 0,
      progressing: state === 'Progressing' ? 1 : 0,
      degraded: state === 'Degraded' ? 1 : 0,
      failed: state === 'Failed' ? 1 : 0,
    },
    reasons: opts.reasons ?? [],
    ...(opts.digest !== undefined ? { digest: opts.digest } : {}),
  };
  return createEvent(cluster, 'health-changed', data, time);
}
