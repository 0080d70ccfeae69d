// Results as data: every apply or delete returns one entry per object saying what
// happened and why, so callers count, report and ack without re-deriving anything.
import type { ObjectRef } from '../kube/types.js';
import { describeRef } from '../kube/types.js';

/** What happened to one object. */
export type ChangeAction = 'created' | 'configured' | 'unchanged' | 'deleted' | 'failed';

/** One object's outcome. */
export interface ChangeSetEntry {
  ref: ObjectRef;
  action: ChangeAction;
  /** Why: the server's message for failed, the reason a prune was skipped, ... */
  reason?: string;
}

/** Counts per action. */
export type ChangeCounts = Record<ChangeAction, number>;

/** A new entry. */
export function entry(ref: ObjectRef, action: ChangeAction, reason?: string): ChangeSetEntry {
  return reason === undefined ? { ref, action } : { ref, action, reason };
}

/** Counts entries per action (every action present, zero when absent). */
export function countActions(entries: readonly ChangeSetEntry[]): ChangeCounts {
  const counts: ChangeCounts = { created: 0, configured: 0, unchanged: 0, deleted: 0, failed: 0 };
  for (const e of entries) counts[e.action]++;
  return counts;
}

/** The first `limit` failures as "Kind/namespace/name: reason" (default 10). */
export function failureMessages(entries: readonly ChangeSetEntry[], limit = 10): string[] {
  return entries
    .filter((e) => e.action === 'failed')
    .slice(0, limit)
    .map((e) => `${describeRef(e.ref)}: ${e.reason ?? 'unknown error'}`);
}

/** Entries whose action wrote to the cluster (created, configured, deleted). */
export function writes(entries: readonly ChangeSetEntry[]): ChangeSetEntry[] {
  return entries.filter(
    (e) => e.action === 'created' || e.action === 'configured' || e.action === 'deleted',
  );
}
