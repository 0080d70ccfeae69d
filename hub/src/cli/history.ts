// `flotilla history`: the hub's event log (GET /api/v1/history), newest first, with
// kubectl habits: filters as flags, -o table|wide|json|yaml, exit 2 for a bad flag.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { ValidationError, errorMessage } from '@flotilla/common';
import { kindsParam, limitParam, revisionParam, timeParam } from '../api/query.js';
import type { HistoryEntry } from '../history/history-log.js';
import { SHORT_REVISION, formatAge, renderTable } from './format.js';
import type { OutputFormat } from './format.js';
import { OPTIONS, outputFormat } from './fleet.js';
import { DEFAULT_HUB_URL, getJson, hubBase, queryString } from './hub-client.js';
import type { Fetch } from './hub-client.js';
import { CA_FILE_USAGE, hubFetch } from './hub-tls.js';
import { ExitCode, UsageError } from './io.js';
import type { CliIo } from './io.js';

/** Usage text of `flotilla history`. */
export const HISTORY_USAGE = `Usage: flotilla history [--cluster C] [--kind K[,K]] [--since 24h] [-o FMT]

What happened, newest first: applies and apply failures, drift detected and corrected,
health changes, agent sessions starting and ending, events an agent had to drop,
rollout transitions, and the audit log of every write (--kind audit: cluster add/revoke,
token create/revoke, admin add/revoke, rollout actions; who, what, when, result), within
the hub's retention.

Options:
  --cluster NAME      on this cluster only
  --bundle NAME       about this bundle only
  --revision SHA      about this commit (7+ hex characters match as a prefix)
  --bundle-digest D   applies of this bundle digest only
  --kind K[,K]        applied, apply-failed, drift-detected, drift-corrected,
                      health-changed, connected, disconnected, events-dropped,
                      rollout, audit (repeatable)
  --since DUR|TIME    from this long ago (e.g. 24h) or this ISO time
  --until DUR|TIME    up to this long ago or this ISO time
  --limit N           at most N entries (default 1000, at most 10000)
  --hub-url URL       hub HTTP API (default $FLOTILLA_HUB_URL or ${DEFAULT_HUB_URL})
  -o, --output FMT    table (default), wide, json or yaml
${CA_FILE_USAGE}`;

/** Bundles or objects a summary names before "+N more" (3). */
export const SUMMARY_NAMES = 3;

// A flag checked with the hub's own parameter rules, so a typo is a usage error (exit 2)
// before any request. The rules' messages start with the parameter's name.
function checked<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof ValidationError) throw new UsageError(`--${errorMessage(err)}`);
    throw err;
  }
}

/** Runs `flotilla history`; returns the exit code. */
export async function historyCommand(
  argv: string[],
  io: CliIo,
  fetchFn: Fetch = fetch,
  now = Date.now,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...OPTIONS,
      cluster: { type: 'string' },
      bundle: { type: 'string' },
      revision: { type: 'string' },
      'bundle-digest': { type: 'string' },
      kind: { type: 'string', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  if (values.help) return (io.stdout.write(HISTORY_USAGE), ExitCode.ok);
  if (positionals.length > 0)
    throw new UsageError(`unexpected arguments: ${positionals.join(' ')} (use --cluster NAME)`);
  const format = outputFormat(values.output);
  const nowMs = now();
  const kinds = checked(() => kindsParam(values.kind ?? [], 'kind'));
  checked(() => revisionParam(values.revision, 'revision'));
  checked(() => limitParam(values.limit));
  const sinceMs = checked(() => timeParam(values.since, 'since', nowMs));
  const untilMs = checked(() => timeParam(values.until, 'until', nowMs));
  if (sinceMs !== undefined && untilMs !== undefined && sinceMs > untilMs)
    throw new UsageError(`--since ${values.since} is later than --until ${values.until}`);
  const base = hubBase(values['hub-url'], io);
  fetchFn = hubFetch(fetchFn, values['ca-file'], io, values['token-file']);
  // since/until go as typed: the hub reads a duration against its own clock.
  const query = queryString({
    cluster: values.cluster,
    bundle: values.bundle,
    revision: values.revision,
    bundleDigest: values['bundle-digest'],
    kind: kinds.join(','),
    since: values.since,
    until: values.until,
    limit: values.limit,
  });
  const body = (await getJson(fetchFn, `${base}/api/v1/history${query}`)) as {
    entries: HistoryEntry[];
    partial?: string;
  };
  // A hub still replaying its history answers part of it: said on stderr, so -o json stays parseable.
  if (body.partial) io.stderr.write(`warning: ${body.partial}\n`);
  io.stdout.write(formatHistory(body.entries, format, nowMs));
  return ExitCode.ok;
}

function short(value: string): string {
  const hex = value.startsWith('sha256:') ? value.slice(7) : value;
  return hex === '' ? '-' : hex.slice(0, SHORT_REVISION);
}

// The first few names, then how many more: a fleet-wide apply may list dozens of bundles.
function names(items: readonly string[]): string {
  const more = items.length - SUMMARY_NAMES;
  return items.slice(0, SUMMARY_NAMES).join(', ') + (more > 0 ? ` (+${more} more)` : '');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** What an entry says in one line of the MESSAGE column. */
export function summarize(e: HistoryEntry): string {
  switch (e.kind) {
    case 'connected':
      return `agent ${e.session?.agentVersion || '<unknown version>'} connected, session ${(e.session?.id ?? '').slice(0, 8) || '-'}`;
    case 'disconnected':
      return `session ${(e.session?.id ?? '').slice(0, 8) || '-'} ended: ${e.session?.reason || 'no reason given'}`;
    case 'drift-detected':
    case 'drift-corrected': {
      const objects = e.drift.map(
        (o) => `${o.kind}/${o.namespace ? `${o.namespace}/` : ''}${o.name}`,
      );
      const verb = e.kind === 'drift-detected' ? 'drifted' : 'corrected';
      if (objects.length === 0) return `${verb} in ${names(e.bundles) || '-'}`;
      return `${plural(objects.length, 'object')} ${verb}: ${names(objects)}`;
    }
    case 'health-changed':
      return `${names(e.bundles)}${e.message ? `: ${e.message}` : ''}`;
    case 'events-dropped':
      return e.message;
    case 'audit':
      return `${e.audit?.actor ?? '-'}: ${e.audit?.action ?? ''} ${e.audit?.target ?? ''}: ${e.message}`;
    case 'rollout': {
      const r = e.rollout;
      const what = r?.from ? `${r.from} → ${r.to}` : (r?.to ?? '');
      return `${r?.id ?? names(e.bundles)}: ${what}${e.message ? `: ${e.message}` : ''}`;
    }
    default: {
      // A bundle from a chart repository shows the chart version that was applied.
      const charts = new Map((e.charts ?? []).map((c) => [c.bundle, `${c.name} ${c.version}`]));
      const shown = e.bundles.map((b) => (charts.has(b) ? `${b} (chart ${charts.get(b)})` : b));
      const bundles = `${plural(e.bundles.length, 'bundle')}: ${names(shown) || '-'}`;
      return e.message ? `${bundles}; ${e.message}` : bundles;
    }
  }
}

/** `flotilla history` output: one row per entry, newest first; json and yaml carry everything. */
export function formatHistory(
  entries: readonly HistoryEntry[],
  format: OutputFormat,
  nowMs: number,
): string {
  if (format === 'json') return JSON.stringify({ entries }, null, 2) + '\n';
  if (format === 'yaml') return stringify({ entries });
  if (entries.length === 0) return 'No history entries found.\n';
  const wide = format === 'wide';
  const rows = entries.map((e) => {
    const age = `${formatAge(e.time, nowMs)} ago`;
    return [
      wide ? `${e.time} (${age})` : age,
      e.cluster || '-',
      e.kind,
      short(e.revision),
      ...(wide ? [short(e.digest)] : []),
      e.result || '-',
      summarize(e),
    ];
  });
  const header = ['TIME', 'CLUSTER', 'KIND', 'REVISION', 'RESULT', 'MESSAGE'];
  return renderTable(
    wide ? ['TIME', 'CLUSTER', 'KIND', 'REVISION', 'DIGEST', 'RESULT', 'MESSAGE'] : header,
    rows,
  );
}
