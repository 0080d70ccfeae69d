// `flotilla status`: the fleet as the hub sees it, from its HTTP API.
import { parseArgs } from 'node:util';
import type { ClusterStatus } from '../status/model.js';
import { OPTIONS, checkSelector, outputFormat } from './fleet.js';
import { formatClusters } from './format.js';
import { formatApplyFailures, formatRenderFailures } from './source-format.js';
import { ExitCode, UsageError } from './io.js';
import type { CliIo } from './io.js';
import { DEFAULT_HUB_URL, getJson, hubBase, queryString } from './hub-client.js';
import type { Fetch } from './hub-client.js';
import { CA_FILE_USAGE, hubFetch } from './hub-tls.js';

export { DEFAULT_HUB_URL } from './hub-client.js';
export type { Fetch } from './hub-client.js';

/** Usage text of `flotilla status`. */
export const STATUS_USAGE = `Usage: flotilla status [CLUSTER] [--hub-url URL] [-l SELECTOR] [-o table|wide|json|yaml]

Shows each cluster's connection, state, desired and applied revision, then the bundles
that failed to render, with the clusters each keeps from the new revision and why, and
the bundles whose objects a cluster refused (RBAC, admission webhooks), with the reason.
What the hub serves without (Git or NATS unreachable) comes first, one line each
(on stderr with -o json|yaml, so the output stays the list of clusters).

Options:
  --hub-url URL       hub HTTP API (default $FLOTILLA_HUB_URL or ${DEFAULT_HUB_URL})
  -l, --selector SEL  label selector, e.g. "env=prod,region in (eu,us)"
  -o, --output FMT    table (default), wide, json or yaml
${CA_FILE_USAGE}
`;

/** Runs `flotilla status`; returns the exit code. */
export async function statusCommand(
  argv: string[],
  io: CliIo,
  fetchFn: Fetch = fetch,
  now = Date.now,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...OPTIONS, selector: { type: 'string', short: 'l' } },
  });
  if (values.help) {
    io.stdout.write(STATUS_USAGE);
    return ExitCode.ok;
  }
  const format = outputFormat(values.output);
  if (positionals.length > 1)
    throw new UsageError(`expected at most one cluster name, got ${positionals.length}`);
  const selector = checkSelector(values.selector);
  const base = hubBase(values['hub-url'], io);
  fetchFn = hubFetch(fetchFn, values['ca-file'], io, values['token-file']);
  let clusters: ClusterStatus[];
  if (positionals[0]) {
    clusters = [
      (await getJson(
        fetchFn,
        `${base}/api/v1/clusters/${encodeURIComponent(positionals[0])}`,
      )) as ClusterStatus,
    ];
  } else {
    const url = `${base}/api/v1/clusters${queryString({ selector })}`;
    clusters = ((await getJson(fetchFn, url)) as { clusters: ClusterStatus[] }).clusters;
  }
  const degraded = await hubDegraded(fetchFn, base);
  const table = format === 'table' || format === 'wide';
  for (const d of degraded)
    (table ? io.stdout : io.stderr).write(
      `${table ? 'HUB DEGRADED' : 'warning: hub degraded'}: ${d}\n`,
    );
  if (table && degraded.length > 0) io.stdout.write('\n');
  io.stdout.write(formatClusters(clusters, format, now()));
  if (format === 'table' || format === 'wide')
    io.stdout.write(formatRenderFailures(clusters) + formatApplyFailures(clusters));
  return ExitCode.ok;
}

// What the hub says is degraded (GET /api/v1/hub); nothing from hubs that predate it.
async function hubDegraded(fetchFn: Fetch, base: string): Promise<string[]> {
  try {
    const body = (await getJson(fetchFn, `${base}/api/v1/hub`)) as {
      degraded?: { message?: unknown }[];
    };
    return (body.degraded ?? [])
      .map((d) => d.message)
      .filter((m): m is string => typeof m === 'string');
  } catch {
    // The cluster list answered: a hub without the route has nothing to say here.
    return [];
  }
}
