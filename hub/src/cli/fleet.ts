// `flotilla get clusters|bundles|deployments|sources`, `flotilla describe cluster|source
// NAME` and `flotilla drift`: read-only queries against the hub's HTTP API, kubectl habits.
import { parseArgs } from 'node:util';
import { errorMessage, parseSelector } from '@flotilla/common';
import type { HistoryEntry } from '../history/history-log.js';
import type { BundleDeployment, BundleSummary } from '../status/deployments.js';
import type { ClusterStatus } from '../status/model.js';
import type { SourceStatus } from '../api/types.js';
import { formatSourceDescribe, formatSources } from './source-format.js';
import { formatBundles, formatDeployments, formatDescribe, formatDrift } from './fleet-format.js';
import type { ClusterDetail } from './fleet-format.js';
import { OUTPUT_FORMATS, formatClusters } from './format.js';
import type { OutputFormat } from './format.js';
import { DEFAULT_HUB_URL, getJson, hubBase, queryString } from './hub-client.js';
import type { Fetch } from './hub-client.js';
import { CA_FILE_OPTION, CA_FILE_USAGE, hubFetch } from './hub-tls.js';
import { ExitCode, UsageError } from './io.js';
import type { CliIo } from './io.js';

const COMMON = `  --hub-url URL       hub HTTP API (default $FLOTILLA_HUB_URL or ${DEFAULT_HUB_URL})
  -o, --output FMT    table (default), wide, json or yaml
${CA_FILE_USAGE}`;

/** Usage text of `flotilla get`. */
export const GET_USAGE = `Usage: flotilla get clusters|bundles|deployments|sources [NAME] [-l SELECTOR] [-o FMT]

  clusters      connection, state, desired and applied revision per cluster
  bundles       per bundle, how many clusters are in each state (never truncated)
  deployments   one row per bundle on a cluster
  sources       each Git source: ref, last fetched revision and time, render errors, last error

Options:
  -l, --selector SEL  label selector over clusters, e.g. "env=prod,region in (eu,us)"
  --bundle NAME       deployments of this bundle only
  --cluster NAME      deployments on this cluster only
  --state STATE       deployments in this state only (Ready, Failed, Drifted, ...)
  --revision SHA      clusters running this commit only
${COMMON}
`;

/** Usage text of `flotilla describe`. */
export const DESCRIBE_USAGE = `Usage: flotilla describe cluster|source NAME [-o FMT]

cluster: a cluster's state, revisions, last convergence, its agent's sessions (last
connected, last disconnected and why, the most recent ones) and every bundle on it.
source: a Git source's URL (without credentials), ref, last fetched revision and time,
last error, and the render errors of the revision it rendered, per bundle with the
clusters each keeps from it.

Options:
${COMMON}
`;

/** Usage text of `flotilla drift`. */
export const DRIFT_USAGE = `Usage: flotilla drift [--since 24h] [--cluster NAME] [--bundle NAME] [-o FMT]

What drifted, on which fields, changed by whom.

Options:
  --since DUR|TIME    how far back (default 24h), a duration or an ISO time
  --cluster NAME      on this cluster only
  --bundle NAME       in this bundle only
${COMMON}
`;

/** Options every hub query command takes. */
export const OPTIONS = {
  'hub-url': { type: 'string' },
  output: { type: 'string', short: 'o', default: 'table' },
  help: { type: 'boolean', short: 'h' },
  ...CA_FILE_OPTION,
} as const;

/** The -o value, checked. */
export function outputFormat(value: string | undefined): OutputFormat {
  const format = (value ?? 'table') as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format))
    throw new UsageError(`-o: unknown output format "${value}" (use ${OUTPUT_FORMATS.join(', ')})`);
  return format;
}

/** Checks a selector locally, so a typo is a usage error before any request. */
export function checkSelector(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    parseSelector(text);
  } catch (err) {
    throw new UsageError(`-l: ${errorMessage(err)}`);
  }
  return text;
}

/** Runs `flotilla get`; returns the exit code. */
export async function getCommand(
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
      selector: { type: 'string', short: 'l' },
      bundle: { type: 'string' },
      cluster: { type: 'string' },
      state: { type: 'string' },
      revision: { type: 'string' },
    },
  });
  if (values.help) return (io.stdout.write(GET_USAGE), ExitCode.ok);
  const format = outputFormat(values.output);
  const [what, name, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const selector = checkSelector(values.selector);
  const base = hubBase(values['hub-url'], io);
  fetchFn = hubFetch(fetchFn, values['ca-file'], io, values['token-file']);
  const kind =
    what === 'cluster' || what === 'bundle' || what === 'deployment' || what === 'source'
      ? `${what}s`
      : what;
  if (kind === 'clusters') {
    const clusters = name
      ? [
          (await getJson(
            fetchFn,
            `${base}/api/v1/clusters/${encodeURIComponent(name)}`,
          )) as ClusterStatus,
        ]
      : (
          (await getJson(
            fetchFn,
            `${base}/api/v1/clusters${queryString({ selector, revision: values.revision })}`,
          )) as { clusters: ClusterStatus[] }
        ).clusters;
    io.stdout.write(formatClusters(clusters, format, now()));
  } else if (kind === 'bundles') {
    const bundles = name
      ? [
          (await getJson(
            fetchFn,
            `${base}/api/v1/bundles/${encodeURIComponent(name)}`,
          )) as BundleSummary,
        ]
      : ((await getJson(fetchFn, `${base}/api/v1/bundles`)) as { bundles: BundleSummary[] })
          .bundles;
    io.stdout.write(
      formatBundles(
        bundles.map(({ name: n, clusters, states }) => ({ name: n, clusters, states })),
        format,
      ),
    );
  } else if (kind === 'deployments') {
    const query = queryString({
      selector,
      bundle: values.bundle ?? name,
      cluster: values.cluster,
      state: values.state,
    });
    const body = (await getJson(fetchFn, `${base}/api/v1/deployments${query}`)) as {
      deployments: BundleDeployment[];
    };
    io.stdout.write(formatDeployments(body.deployments, format, now()));
  } else if (kind === 'sources') {
    const sources = name
      ? [
          (await getJson(
            fetchFn,
            `${base}/api/v1/sources/${encodeURIComponent(name)}`,
          )) as SourceStatus,
        ]
      : ((await getJson(fetchFn, `${base}/api/v1/sources`)) as { sources: SourceStatus[] }).sources;
    io.stdout.write(formatSources(sources, format, now()));
  } else {
    throw new UsageError(
      what
        ? `unknown resource "${what}" (use clusters, bundles, deployments or sources)`
        : 'what to get? (clusters, bundles, deployments or sources)',
    );
  }
  return ExitCode.ok;
}

/** Runs `flotilla describe cluster NAME`; returns the exit code. */
export async function describeCommand(
  argv: string[],
  io: CliIo,
  fetchFn: Fetch = fetch,
  now = Date.now,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: OPTIONS,
  });
  if (values.help) return (io.stdout.write(DESCRIBE_USAGE), ExitCode.ok);
  const format = outputFormat(values.output);
  const [what, name, ...extra] = positionals;
  const source = what === 'source' || what === 'sources';
  if (what !== 'cluster' && what !== 'clusters' && !source)
    throw new UsageError(`can describe "cluster NAME" or "source NAME", got "${what ?? ''}"`);
  if (!name || extra.length > 0)
    throw new UsageError(`expected exactly one ${source ? 'source' : 'cluster'} name`);
  const base = hubBase(values['hub-url'], io);
  fetchFn = hubFetch(fetchFn, values['ca-file'], io, values['token-file']);
  if (source) {
    const s = (await getJson(
      fetchFn,
      `${base}/api/v1/sources/${encodeURIComponent(name)}`,
    )) as SourceStatus;
    io.stdout.write(formatSourceDescribe(s, format, now()));
    return ExitCode.ok;
  }
  const detail = (await getJson(
    fetchFn,
    `${base}/api/v1/clusters/${encodeURIComponent(name)}`,
  )) as ClusterDetail;
  const sessions =
    format === 'table' || format === 'wide' ? await recentSessions(fetchFn, base, name) : [];
  io.stdout.write(formatDescribe(detail, format, now(), sessions));
  return ExitCode.ok;
}

/** Session entries `describe` shows (5). */
export const DESCRIBE_SESSIONS = 5;

// The cluster's last session starts and ends, newest first. A hub without history (or
// one older than session events) answers an error: the section is left out, since
// everything else describe shows is already there.
async function recentSessions(fetchFn: Fetch, base: string, name: string): Promise<HistoryEntry[]> {
  const query = queryString({
    cluster: name,
    kind: 'connected,disconnected',
    limit: String(DESCRIBE_SESSIONS),
  });
  try {
    const body = (await getJson(fetchFn, `${base}/api/v1/history${query}`)) as {
      entries?: HistoryEntry[];
    };
    return body.entries ?? [];
  } catch {
    return [];
  }
}

/** Runs `flotilla drift`; returns the exit code. */
export async function driftCommand(
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
      since: { type: 'string', default: '24h' },
      cluster: { type: 'string' },
      bundle: { type: 'string' },
    },
  });
  if (values.help) return (io.stdout.write(DRIFT_USAGE), ExitCode.ok);
  if (positionals.length > 0)
    throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`);
  const format = outputFormat(values.output);
  const base = hubBase(values['hub-url'], io);
  fetchFn = hubFetch(fetchFn, values['ca-file'], io, values['token-file']);
  const query = queryString({
    since: values.since,
    cluster: values.cluster,
    bundle: values.bundle,
  });
  const body = (await getJson(fetchFn, `${base}/api/v1/drift${query}`)) as {
    entries: HistoryEntry[];
  };
  io.stdout.write(formatDrift(body.entries, format, now()));
  return ExitCode.ok;
}
