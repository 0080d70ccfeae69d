// Human output of `flotilla get sources`, `describe source NAME`, and the render failures
// `flotilla status` lists under its table: a bundle that did not render is said plainly,
// with its file:line, wherever a user looks first.
import { stringify } from 'yaml';
import { shortDigest } from '@flotilla/common';
import type { SourceRenderError, SourceStatus } from '../api/types.js';
import type { ClusterStatus } from '../status/model.js';
import { renderFailureReason } from '../status/render-failures.js';
import { SHORT_REVISION, formatAge, renderTable } from './format.js';
import type { OutputFormat } from './format.js';

/** Groups `status` lists under its table (20), and cluster names per group (10). */
export const STATUS_FAILURE_GROUPS = 20;
const NAMES_PER_GROUP = 10;

function short(value: string): string {
  return value === '' ? '<none>' : value.slice(0, SHORT_REVISION);
}

// "a,b,c (+7)": the names shown and how many more there are.
function names(list: readonly string[], total: number, max = NAMES_PER_GROUP): string {
  const shown = list.slice(0, max);
  const rest = total - shown.length;
  return (shown.join(',') || '-') + (rest > 0 ? ` (+${rest})` : '');
}

/**
 * The "Render failures" section under `flotilla status`: one line per bundle and reason,
 * with the clusters it concerns; "" when nothing failed to render.
 */
export function formatRenderFailures(clusters: readonly ClusterStatus[]): string {
  const entries = clusters.flatMap((c) =>
    (c.renderFailures ?? []).map((f) => ({
      what: f.bundle ? `bundle ${f.bundle}` : 'desired state',
      reason: renderFailureReason(f),
      cluster: c.name,
    })),
  );
  return failureSection(
    'Failed to render (these clusters are not Ready until a commit fixes it)',
    entries,
    ' (flotilla get deployments --state Failed)',
  );
}

/**
 * The "Failed to apply" section under `flotilla status`: one line per set of bundles and
 * reason, with the clusters whose agent could not apply them at their desired state (the
 * API server refused objects: RBAC, an admission webhook, …); "" when none. A cluster that
 * also failed to render shows here too, so neither failure hides the other.
 */
export function formatApplyFailures(clusters: readonly ClusterStatus[]): string {
  const entries = clusters.flatMap((c) => {
    if (!c.applyFailure) return [];
    const failed = c.bundles.filter((b) => b.failed > 0).map((b) => b.name);
    const what =
      failed.length === 0 ? '' : `bundle${failed.length > 1 ? 's' : ''} ${failed.join(', ')}`;
    return [{ what, reason: c.applyFailure.replace(/\n\s*/g, ' '), cluster: c.name }];
  });
  return failureSection(
    'Failed to apply (objects the cluster refused; flotilla get deployments --state Failed)',
    entries,
    '',
  );
}

/**
 * A failure section under `flotilla status`: one line per (what, reason) with its
 * clusters, at most STATUS_FAILURE_GROUPS lines and then how many more; "" when none.
 */
function failureSection(
  title: string,
  entries: readonly { what: string; reason: string; cluster: string }[],
  moreHint: string,
): string {
  const groups = new Map<string, { what: string; reason: string; clusters: string[] }>();
  for (const e of entries) {
    const key = `${e.what}\0${e.reason}`;
    const g = groups.get(key) ?? { what: e.what, reason: e.reason, clusters: [] };
    g.clusters.push(e.cluster);
    groups.set(key, g);
  }
  if (groups.size === 0) return '';
  const lines = [...groups.values()]
    .slice(0, STATUS_FAILURE_GROUPS)
    .map(
      (g) =>
        `  ${g.what ? `${g.what} on ` : ''}${names(g.clusters, g.clusters.length)}: ${g.reason}`,
    );
  if (groups.size > STATUS_FAILURE_GROUPS)
    lines.push(`  … and ${groups.size - STATUS_FAILURE_GROUPS} more${moreHint}`);
  return `\n${title}:\n${lines.join('\n')}\n`;
}

function errorsTable(errors: readonly SourceRenderError[]): string {
  return renderTable(
    ['BUNDLE', 'CLUSTERS', 'MESSAGE'],
    errors.map((e) => [
      e.bundle || '-',
      names(e.clusters, e.clusterCount),
      e.message.replace(/\n\s*/g, ' '),
    ]),
  );
}

/** `flotilla get sources`: one row per source. */
export function formatSources(
  sources: readonly SourceStatus[],
  format: OutputFormat,
  nowMs: number,
): string {
  if (format === 'json') return JSON.stringify({ sources }, null, 2) + '\n';
  if (format === 'yaml') return stringify({ sources });
  if (sources.length === 0) return 'No sources found.\n';
  const header = ['NAME', 'REF', 'REVISION', 'FETCHED', 'RENDERED', 'RENDER-ERRORS', 'LAST-ERROR'];
  const rows = sources.map((s) => [
    s.name,
    s.ref ?? s.branch,
    short(s.revision),
    formatAge(s.lastFetched, nowMs),
    short(s.renderedRevision),
    String(s.renderErrorCount ?? s.renderErrors?.length ?? 0),
    lastError(s, format === 'table' ? LAST_ERROR_WIDTH : Infinity),
  ]);
  if (format === 'table') return renderTable(header, rows);
  return renderTable(
    [...header, 'URL'],
    rows.map((r, i) => [...r, (sources[i] as SourceStatus).url]),
  );
}

/** Characters of a source's last error the table shows (80); -o wide shows it all. */
const LAST_ERROR_WIDTH = 80;

// The fetch error (or a whole render's), on one line; older hubs give only `error`.
function lastError(s: SourceStatus, width: number): string {
  const text = (s.lastError ?? s.error).replace(/\n\s*/g, ' ');
  if (text === '') return '-';
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

function when(iso: string | null | undefined, nowMs: number): string {
  return iso ? `${iso} (${formatAge(iso, nowMs)} ago)` : '<never>';
}

/** `flotilla describe source NAME`: the source, its last error, and its render errors. */
export function formatSourceDescribe(s: SourceStatus, format: OutputFormat, nowMs: number): string {
  if (format === 'json') return JSON.stringify(s, null, 2) + '\n';
  if (format === 'yaml') return stringify(s);
  const detail = [s.errorCode, s.errorAt].filter(Boolean).join(', ');
  const text = s.lastError ?? s.error;
  const error = text ? `${text}${detail ? ` (${detail})` : ''}` : '<none>';
  const lines = [
    `Name:               ${s.name}`,
    `URL:                ${s.url}`,
    `Ref:                ${s.ref ?? s.branch}`,
    `Fetched revision:   ${s.revision || '<none>'}`,
    `Last fetched:       ${when(s.lastFetched, nowMs)}`,
    `Rendered revision:  ${s.renderedRevision || '<none>'}`,
    ...(s.rejectedRevision ? [`Rejected revision:  ${s.rejectedRevision}`] : []),
    `Last error:         ${error}`,
  ];
  const errors = s.renderErrors ?? [];
  const total = s.renderErrorCount ?? errors.length;
  const shown = total > errors.length ? ` (${errors.length} of ${total} shown)` : '';
  const section =
    errors.length > 0
      ? `Render errors at ${short(s.renderedRevision)}${shown}:\n${errorsTable(errors)
          .split('\n')
          .map((l) => (l ? `  ${l}` : l))
          .join('\n')}`
      : 'Render errors:      <none>\n';
  return `${lines.join('\n')}\n${section}${chartsSection(s)}`;
}

// The remote Helm charts the rendered revision uses, with the versions their ranges chose.
function chartsSection(s: SourceStatus): string {
  const charts = s.charts ?? [];
  if (charts.length === 0) return '';
  const table = renderTable(
    ['BUNDLE', 'CHART', 'VERSION', 'DIGEST', 'CLUSTERS', 'FROM'],
    charts.map((c) => [
      c.bundle,
      c.name,
      c.version,
      shortDigest(c.digest),
      String(c.clusters),
      c.repo,
    ]),
  );
  return `Charts:\n${table
    .split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n')}`;
}
