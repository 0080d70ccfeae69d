// Human output of `flotilla get bundles|deployments`, `describe cluster`, `drift` and
// `watch`: kubectl-style columns; json and yaml carry everything.
import { stringify } from 'yaml';
import type { HistoryEntry } from '../history/history-log.js';
import type { BundleDeployment, BundleSummary } from '../status/deployments.js';
import { DEPLOYMENT_STATES } from '../status/deployments.js';
import type { ClusterStatus } from '../status/model.js';
import { SHORT_REVISION, formatAge, renderTable } from './format.js';
import type { OutputFormat } from './format.js';

/** A cluster as `describe` gets it from the API. */
export type ClusterDetail = ClusterStatus & { deployments: BundleDeployment[] };

function short(value: string): string {
  const hex = value.startsWith('sha256:') ? value.slice(7) : value;
  return hex === '' ? '<none>' : hex.slice(0, SHORT_REVISION);
}

function structured(key: string, value: unknown, format: OutputFormat): string | undefined {
  if (format === 'json') return JSON.stringify({ [key]: value }, null, 2) + '\n';
  if (format === 'yaml') return stringify({ [key]: value });
  return undefined;
}

/** `flotilla get bundles`: one row per bundle, a column per state (wide) or the non-zero states. */
export function formatBundles(bundles: readonly BundleSummary[], format: OutputFormat): string {
  const s = structured('bundles', bundles, format);
  if (s !== undefined) return s;
  if (bundles.length === 0) return 'No bundles found.\n';
  if (format === 'wide') {
    return renderTable(
      ['NAME', 'CLUSTERS', ...DEPLOYMENT_STATES.map((x) => x.toUpperCase())],
      bundles.map((b) => [
        b.name,
        String(b.clusters),
        ...DEPLOYMENT_STATES.map((x) => String(b.states[x])),
      ]),
    );
  }
  const rows = bundles.map((b) => {
    const others = DEPLOYMENT_STATES.filter((x) => x !== 'Ready' && b.states[x] > 0).map(
      (x) => `${x}=${b.states[x]}`,
    );
    return [b.name, String(b.clusters), `${b.states.Ready}/${b.clusters}`, others.join(',') || '-'];
  });
  return renderTable(['NAME', 'CLUSTERS', 'READY', 'NOT-READY'], rows);
}

/** `flotilla get deployments`. */
export function formatDeployments(
  deployments: readonly BundleDeployment[],
  format: OutputFormat,
  nowMs: number,
): string {
  const s = structured('deployments', deployments, format);
  if (s !== undefined) return s;
  if (deployments.length === 0) return 'No deployments found.\n';
  const header = ['BUNDLE', 'CLUSTER', 'STATE', 'OBJECTS', 'DRIFTED', 'AGE'];
  const rows = deployments.map((d) => [
    d.bundle,
    d.cluster,
    d.state,
    String(d.created + d.configured + d.unchanged),
    String(d.drifted),
    formatAge(d.lastTransition, nowMs),
  ]);
  if (format === 'table') return renderTable(header, rows);
  const charts = deployments.some((d) => d.chart !== undefined);
  return renderTable(
    // CHART only when some bundle comes from a chart repository or registry.
    [...header, 'DIGEST', 'HEALTH', ...(charts ? ['CHART'] : []), 'REASON'],
    rows.map((r, i) => {
      const d = deployments[i] as BundleDeployment;
      const chart = d.chart ? [`${d.chart.name} ${d.chart.version}`] : charts ? ['-'] : [];
      return [...r, short(d.appliedDigest), d.health || '-', ...chart, d.reason];
    }),
  );
}

function when(iso: string | null | undefined, nowMs: number): string {
  return iso ? `${iso} (${formatAge(iso, nowMs)} ago)` : '<never>';
}

function indent(table: string): string {
  return table
    .split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n');
}

/** The "Recent sessions" section of describe: newest first. */
function formatSessions(sessions: readonly HistoryEntry[], nowMs: number): string {
  const rows = sessions.map((e) => [
    formatAge(e.time, nowMs),
    e.kind,
    (e.session?.id ?? '').slice(0, 8) || '-',
    e.session?.agentVersion || '-',
    e.session?.reason ?? '',
  ]);
  return `Recent sessions:\n${indent(renderTable(['AGE', 'EVENT', 'SESSION', 'AGENT', 'REASON'], rows))}`;
}

/**
 * `flotilla describe cluster NAME`: kubectl-describe-style sections; `sessions` (newest
 * first, from the history) adds a "Recent sessions" section when there are any.
 */
export function formatDescribe(
  c: ClusterDetail,
  format: OutputFormat,
  nowMs: number,
  sessions: readonly HistoryEntry[] = [],
): string {
  if (format === 'json') return JSON.stringify(c, null, 2) + '\n';
  if (format === 'yaml') return stringify(c);
  const labels =
    Object.keys(c.labels)
      .sort()
      .map((k) => `${k}=${c.labels[k]}`)
      .join(',') || '<none>';
  const lines = [
    `Name:              ${c.name}`,
    `Labels:            ${labels}`,
    `State:             ${c.state}${c.message ? ` (${c.message})` : ''}`,
    `Connected:         ${c.connected}`,
    `Last seen:         ${when(c.lastSeen, nowMs)}`,
    `Agent version:     ${c.agentVersion || '<unknown>'}`,
    `Last connected:    ${when(c.lastConnected, nowMs)}`,
    `Last disconnected: ${when(c.lastDisconnected, nowMs)}${c.lastDisconnected && c.lastDisconnectReason ? `: ${c.lastDisconnectReason}` : ''}`,
    `Desired revision:  ${c.desiredRevision || '<none>'}`,
    `Applied revision:  ${c.appliedRevision || '<none>'}`,
    `Last converged:    ${when(c.lastConverged, nowMs)}`,
    ...(c.degraded ? [`Degraded:          ${when(c.lastDegraded, nowMs)}: ${c.degraded}`] : []),
    'Bundles:',
  ];
  const table = c.deployments.length
    ? indent(
        renderTable(
          [
            'BUNDLE',
            'STATE',
            'CREATED',
            'CONFIGURED',
            'UNCHANGED',
            'FAILED',
            'DRIFTED',
            'HEALTH',
            'REASON',
          ],
          c.deployments.map((d) => [
            d.bundle,
            d.state,
            String(d.created),
            String(d.configured),
            String(d.unchanged),
            String(d.failed),
            String(d.drifted),
            d.health || '-',
            d.reason,
          ]),
        ),
      )
    : '  <none>\n';
  const recent = sessions.length > 0 ? formatSessions(sessions, nowMs) : '';
  return lines.join('\n') + '\n' + table + recent;
}

/** `flotilla drift`: one row per drifted object. */
export function formatDrift(
  entries: readonly HistoryEntry[],
  format: OutputFormat,
  nowMs: number,
): string {
  const s = structured('entries', entries, format);
  if (s !== undefined) return s;
  const rows: string[][] = [];
  for (const e of entries) {
    const objects = e.drift.length
      ? e.drift
      : [
          {
            bundle: e.bundles.join(','),
            kind: '',
            namespace: '',
            name: '',
            fields: [],
            changedBy: [],
          },
        ];
    for (const o of objects) {
      const obj = o.kind ? `${o.kind}/${o.namespace ? `${o.namespace}/` : ''}${o.name}` : '-';
      const row = [
        formatAge(e.time, nowMs),
        e.cluster,
        o.bundle,
        e.kind === 'drift-corrected' ? 'corrected' : 'detected',
        obj,
        o.fields.join(',') || '-',
        o.changedBy.join(',') || '-',
      ];
      rows.push(format === 'wide' ? [...row, e.time, short(e.revision)] : row);
    }
  }
  if (rows.length === 0) return 'No drift found.\n';
  const header = ['AGE', 'CLUSTER', 'BUNDLE', 'EVENT', 'OBJECT', 'FIELDS', 'CHANGED-BY'];
  return renderTable(format === 'wide' ? [...header, 'TIME', 'REVISION'] : header, rows);
}

/** One line of `flotilla watch`. */
export function formatWatchLine(c: ClusterStatus, nowIso: string): string {
  return `${nowIso}  ${c.name}  ${c.state}  connected=${c.connected}  applied=${short(c.appliedRevision)}${c.message ? `  ${c.message}` : ''}\n`;
}
