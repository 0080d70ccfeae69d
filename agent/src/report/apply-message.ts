// The one message an apply reports, in its event (to NATS) and its ack (to the hub).
import type { ReconcileOutcome } from '../sync/reconcile.js';

/** Failures and waits an apply message names (5); the rest are in the bundles' results. */
export const APPLY_MESSAGE_ITEMS = 5;

/**
 * What an apply says: a whole-apply error or a mass-prune hold first, else the objects
 * that failed, then the bundles that wait; "" when nothing of the kind happened. Failures
 * lead: a cluster Failed because objects were refused must not read "waiting for a hook"
 * because another bundle also waits.
 */
export function applyMessage(outcome: ReconcileOutcome | undefined, error?: string): string {
  if (error !== undefined) return error;
  if (outcome?.held) return outcome.held.message;
  const bundles = outcome?.bundles ?? [];
  const failures = bundles.flatMap((b) => b.failures);
  const waits = bundles.flatMap((b) => (b.waiting ? [`bundle ${b.name} ${b.waiting.reason}`] : []));
  return [...failures, ...waits].slice(0, APPLY_MESSAGE_ITEMS).join('; ');
}
