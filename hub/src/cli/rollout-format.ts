// Human output of `flotilla rollout`: the list, one rollout's stages and clusters, and
// its history; json and yaml carry everything.
import { stringify } from 'yaml';
import type { HistoryEntry } from '../history/history-log.js';
import type { RolloutStageView, RolloutSummary, RolloutView } from '../rollout/view.js';
import { formatAge, renderTable } from './format.js';
import type { OutputFormat } from './format.js';

function seconds(ms: number): string {
  if (ms === 0) return '-';
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.ceil(ms / 1000)}s`;
}

/** `flotilla rollout list`. */
export function formatRolloutList(
  rollouts: readonly RolloutSummary[],
  format: OutputFormat,
  nowMs: number,
): string {
  if (format === 'json') return JSON.stringify({ rollouts }, null, 2) + '\n';
  if (format === 'yaml') return stringify({ rollouts });
  if (rollouts.length === 0)
    return 'No rollouts: no bundle with spec.rollout has had a new revision.\n';
  const header = [
    'BUNDLE',
    'ROLLOUT',
    'PHASE',
    'STAGE',
    'WAITING',
    'UPDATING',
    'HEALTHY',
    'FAILED',
    'UPDATED',
  ];
  const rows = rollouts.map((r) => [
    r.bundle,
    r.id,
    r.phase,
    r.stage,
    String(r.counts.Waiting),
    String(r.counts.Updating),
    String(r.counts.Healthy),
    String(r.counts.Failed),
    formatAge(r.updatedAt, nowMs),
    ...(format === 'wide' ? [r.reason] : []),
  ]);
  return renderTable(format === 'wide' ? [...header, 'REASON'] : header, rows);
}

function limits(s: RolloutStageView): string {
  const approval = s.approval
    ? s.approvedBy
      ? `, approved by ${s.approvedBy}`
      : ', approval required'
    : '';
  return `${s.maxConcurrent} at once, ${s.maxFailures} failure(s) tolerated${approval}`;
}

function soak(s: RolloutStageView): string {
  if (s.soakMs === 0) return '-';
  if (s.state === 'Soaking') return `${seconds(s.soakMs)} (${seconds(s.soakRemainingMs)} left)`;
  return seconds(s.soakMs);
}

/** `flotilla rollout status BUNDLE`. */
export function formatRollout(v: RolloutView, format: OutputFormat, nowMs: number): string {
  if (format === 'json') return JSON.stringify(v, null, 2) + '\n';
  if (format === 'yaml') return stringify(v);
  const head = [
    `Rollout:     ${v.id}`,
    `Bundle:      ${v.bundle}`,
    `Revision:    ${v.revision}`,
    `Phase:       ${v.phase}`,
    `Reason:      ${v.reason || '-'}`,
    `On failure:  ${v.onFailure}; progress deadline ${seconds(v.progressDeadlineMs)}`,
    `Started:     ${v.startedAt} (${formatAge(v.startedAt, nowMs)} ago)${v.endedAt ? `; ended ${formatAge(v.endedAt, nowMs)} ago` : ''}`,
    '',
  ].join('\n');
  const stages = renderTable(
    [
      'STAGE',
      'STATE',
      'CLUSTERS',
      'WAITING',
      'UPDATING',
      'HEALTHY',
      'FAILED',
      'ROLLEDBACK',
      'SKIPPED',
      'SOAK',
      'LIMITS',
    ],
    v.stages.map((s) => [
      `${s.index + 1}. ${s.name}${s.implicit ? ' (implicit)' : ''}`,
      s.state,
      String(s.clusters),
      String(s.phases.Waiting),
      String(s.phases.Updating),
      String(s.phases.Healthy),
      String(s.phases.Failed),
      String(s.phases.RolledBack),
      String(s.phases.Skipped),
      soak(s),
      limits(s),
    ]),
  );
  const shown = format === 'wide' ? v.clusters : v.clusters.slice(0, 50);
  const clusters =
    v.clusters.length === 0
      ? 'No clusters in this rollout.\n'
      : renderTable(
          ['CLUSTER', 'STAGE', 'PHASE', 'SINCE', 'DEADLINE', 'REASON'],
          shown.map((c) => [
            c.name,
            c.stage,
            c.phase,
            formatAge(c.since, nowMs),
            c.deadline ? `in ${seconds(Math.max(0, Date.parse(c.deadline) - nowMs))}` : '-',
            c.reason,
          ]),
        ) +
        (shown.length < v.clusters.length
          ? `… and ${v.clusters.length - shown.length} more clusters (-o wide lists them all)\n`
          : '');
  return `${head}\n${stages}\n${clusters}`;
}

/** `flotilla rollout history BUNDLE`: transitions, newest first. */
export function formatRolloutHistory(
  entries: readonly HistoryEntry[],
  format: OutputFormat,
  nowMs: number,
): string {
  if (format === 'json') return JSON.stringify({ entries }, null, 2) + '\n';
  if (format === 'yaml') return stringify({ entries });
  if (entries.length === 0) return 'No rollout history found.\n';
  return renderTable(
    ['TIME', 'ROLLOUT', 'CLUSTER', 'FROM', 'TO', 'MESSAGE'],
    entries.map((e) => [
      format === 'wide' ? e.time : `${formatAge(e.time, nowMs)} ago`,
      e.rollout?.id ?? '',
      e.cluster || '-',
      e.rollout?.from || '-',
      e.rollout?.to ?? e.result,
      e.message,
    ]),
  );
}
