// Human output of `flotilla status`: aligned columns like kubectl, ages like "5m".
import { stringify } from 'yaml';
import type { ClusterStatus } from '../status/model.js';

/** Output formats of `flotilla status -o`. */
export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
/** One of OUTPUT_FORMATS. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Revisions and digests are shown with this many characters in tables. */
export const SHORT_REVISION = 12;

function short(value: string): string {
  const hex = value.startsWith('sha256:') ? value.slice(7) : value;
  return hex === '' ? '<none>' : hex.slice(0, SHORT_REVISION);
}

/** kubectl-style age: "45s", "12m", "3h", "2d", "<never>". */
export function formatAge(iso: string | null, nowMs: number): string {
  if (!iso) return '<never>';
  const s = Math.max(0, Math.floor((nowMs - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Left-aligned columns separated by three spaces, like kubectl. */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function labelsText(labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`);
  return parts.length ? parts.join(',') : '<none>';
}

/** Formats clusters in the chosen format; table and wide are for humans, json and yaml carry everything. */
export function formatClusters(
  clusters: readonly ClusterStatus[],
  format: OutputFormat,
  nowMs: number,
): string {
  if (format === 'json') return JSON.stringify({ clusters }, null, 2) + '\n';
  if (format === 'yaml') return stringify({ clusters });
  if (clusters.length === 0) return 'No clusters found.\n';
  const header = ['NAME', 'CONNECTED', 'STATE', 'DESIRED', 'APPLIED', 'LAST-SEEN'];
  const rows = clusters.map((c) => [
    c.name,
    c.connected ? 'true' : 'false',
    c.state,
    short(c.desiredRevision),
    short(c.appliedRevision),
    formatAge(c.lastSeen, nowMs),
  ]);
  if (format === 'table') return renderTable(header, rows) + degradedNote(clusters);
  return (
    renderTable(
      [...header, 'LABELS', 'MESSAGE'],
      rows.map((r, i) => [
        ...r,
        labelsText((clusters[i] as ClusterStatus).labels),
        (clusters[i] as ClusterStatus).message,
      ]),
    ) + degradedNote(clusters)
  );
}

// Clusters whose input the hub cut or could not save lately: said under the table, as
// their state (what was applied) is still true.
function degradedNote(clusters: readonly ClusterStatus[]): string {
  const names = clusters.filter((c) => c.degraded).map((c) => c.name);
  if (names.length === 0) return '';
  const shown =
    names.slice(0, 5).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');
  return `Degraded (the hub cut their input or could not save their status; see flotilla describe cluster): ${shown}\n`;
}
