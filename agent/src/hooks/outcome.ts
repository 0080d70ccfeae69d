// When is a hook done? As helm decides: a Job when it is Complete (or Failed), a Pod when
// it Succeeded (or Failed); any other kind as soon as it exists.
import type { KubeObject } from '@flotilla/common';

/** Where a started hook is. */
export type HookOutcome =
  | { state: 'running'; message: string }
  | { state: 'succeeded' }
  | { state: 'failed'; message: string };

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

/** True for the kinds helm waits for (Jobs and Pods). */
export function waitsForCompletion(obj: Pick<KubeObject, 'apiVersion' | 'kind'>): boolean {
  return (
    (obj.kind === 'Job' && obj.apiVersion.startsWith('batch/')) ||
    (obj.kind === 'Pod' && obj.apiVersion === 'v1')
  );
}

/** The outcome of a live hook object. */
export function hookOutcome(live: KubeObject): HookOutcome {
  if (!waitsForCompletion(live)) return { state: 'succeeded' };
  const status = (live.status ?? {}) as {
    conditions?: Condition[];
    phase?: string;
    message?: string;
    reason?: string;
  };
  if (live.kind === 'Pod') {
    if (status.phase === 'Succeeded') return { state: 'succeeded' };
    if (status.phase === 'Failed')
      return { state: 'failed', message: status.message ?? status.reason ?? 'pod failed' };
    return { state: 'running', message: `pod ${status.phase ?? 'Pending'}` };
  }
  const cond = (type: string): Condition | undefined =>
    (status.conditions ?? []).find((c) => c?.type === type && c.status === 'True');
  const failed = cond('Failed');
  if (failed)
    return {
      state: 'failed',
      message: [failed.reason, failed.message].filter(Boolean).join(': ') || 'job failed',
    };
  if (cond('Complete')) return { state: 'succeeded' };
  return { state: 'running', message: 'job not complete' };
}
