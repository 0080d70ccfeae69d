// Rollout transitions as alerts: a rollout halting, waiting for a person's approval,
// rolling back or completing; the notifier sends each once per rollout, phase and message
// (so each stage's approval alerts on its own).
import type { RolloutTransitionRecord } from '../history/history-log.js';
import type { Alert } from './notifier.js';

/** Rollout phases that alert when a rollout enters them. */
export const ROLLOUT_ALERT_PHASES: readonly string[] = [
  'Halted',
  'AwaitingApproval',
  'RolledBack',
  'Completed',
];

/** The alerts among rollout transitions: rollout-level entries into an alerting phase. */
export function rolloutAlerts(records: readonly RolloutTransitionRecord[]): Alert[] {
  return records
    .filter((r) => r.cluster === '' && r.from !== '' && ROLLOUT_ALERT_PHASES.includes(r.to))
    .map((r) => ({
      kind: 'rollout',
      cluster: '',
      bundle: r.bundle,
      revision: r.revision,
      message: r.message,
      time: new Date(r.atMs).toISOString(),
      rollout: { id: r.rollout, phase: r.to },
    }));
}
