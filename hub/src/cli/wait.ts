// `flotilla wait --for revision=SHA` gates a CI pipeline on a rollout: exit 0 once every
// selected cluster is Ready at SHA (with --healthy: and every deployment on them reports
// Ready health about that content), non-zero with the laggards listed on timeout, and
// at once when SHA failed to render for a selected cluster (it can never get there).
// `flotilla watch` follows status changes as they happen (the API's event stream).
import { parseArgs } from 'node:util';
import { errorMessage, sleep } from '@flotilla/common';
import type { BundleDeployment } from '../status/deployments.js';
import { healthyAtApplied } from '../status/health.js';
import type { ClusterStatus } from '../status/model.js';
import type { RolloutView } from '../rollout/view.js';
import { renderFailureReason } from '../status/render-failures.js';
import { formatWatchLine } from './fleet-format.js';
import { checkSelector } from './fleet.js';
import { DEFAULT_HUB_URL, HubError, getJson, hubBase, queryString } from './hub-client.js';
import type { Fetch } from './hub-client.js';
import { CA_FILE_OPTION, CA_FILE_USAGE, hubFetch } from './hub-tls.js';
import { ExitCode, UsageError, durationFlag } from './io.js';
import type { CliIo } from './io.js';

/** Usage text of `flotilla wait`. */
export const WAIT_USAGE = `Usage: flotilla wait --for revision=SHA [--healthy] [-l SELECTOR] [--timeout 5m]
       flotilla wait --for rollout=BUNDLE@SHA [--timeout 30m]

Waits until every selected cluster is Ready at the commit SHA (7+ hex characters).
A cluster a rollout holds back is Waiting, and is listed with the rollout and why.
With --healthy, also until every deployment on those clusters reports Ready health
about that content (workloads rolled out and available, not just applied).
Exits 0 when they are, 1 with the clusters or deployments still lagging when the
timeout passes (Degraded health may recover, so it does not end the wait early), and 1
at once when SHA failed to render for a selected cluster, with the reason.

With rollout=BUNDLE@SHA, waits until the rollout of BUNDLE at SHA is Completed; exits
1 at once when it halts, rolls back, is aborted or superseded by a newer commit, with
the reason.

Options:
  --for COND          revision=SHA or rollout=BUNDLE@SHA (required)
  --healthy           also wait for every deployment's health to be Ready at SHA
  -l, --selector SEL  clusters to wait for (default all)
  --timeout DUR       how long to wait (default 5m)
  --interval DUR      how often to ask the hub (default 2s)
  --hub-url URL       hub HTTP API (default $FLOTILLA_HUB_URL or ${DEFAULT_HUB_URL})
${CA_FILE_USAGE}
`;

/** Usage text of `flotilla watch`. */
export const WATCH_USAGE = `Usage: flotilla watch [-l SELECTOR]

Prints each cluster's status, then a line for every change, until interrupted.
Exits 1 when the hub ends the stream (it stopped or restarted).

Options:
  -l, --selector SEL  clusters to watch (default all)
  --hub-url URL       hub HTTP API (default $FLOTILLA_HUB_URL or ${DEFAULT_HUB_URL})
${CA_FILE_USAGE}
`;

/** Defaults of `flotilla wait` (5 min timeout, polling every 2 s). */
export const WAIT_DEFAULTS = { timeout: '5m', interval: '2s' } as const;

function laggard(c: ClusterStatus, sha: string): string | undefined {
  if (c.state === 'Ready' && c.appliedRevision.startsWith(sha)) return undefined;
  const at = c.appliedRevision ? c.appliedRevision.slice(0, 12) : '<none>';
  return `  ${c.name}: ${c.state} at ${at}${c.message ? ` (${c.message})` : ''}`;
}

/** Render failures `wait` prints before giving up at once (20); the rest are counted. */
export const WAIT_FAILURES_SHOWN = 20;

// What failed to render at SHA for the selected clusters, one line each: no waiting will
// bring those clusters there, only a new commit.
function renderFailedAt(clusters: readonly ClusterStatus[], sha: string): string[] {
  const out: string[] = [];
  for (const c of clusters)
    for (const f of c.renderFailures ?? [])
      if (f.revision.startsWith(sha))
        out.push(`  ${c.name}: ${f.bundle ? `bundle ${f.bundle}: ` : ''}${renderFailureReason(f)}`);
  if (out.length <= WAIT_FAILURES_SHOWN) return out;
  return [...out.slice(0, WAIT_FAILURES_SHOWN), `  … and ${out.length - WAIT_FAILURES_SHOWN} more`];
}

// What the agents could not apply at SHA (objects their clusters refused), one line each:
// printed with the render failures, so fixing those is not mistaken for fixing everything.
function applyFailedAt(clusters: readonly ClusterStatus[], sha: string): string[] {
  const out = clusters
    .filter((c) => c.applyFailure && c.desiredRevision.startsWith(sha))
    .map((c) => `  ${c.name}: ${(c.applyFailure ?? '').replace(/\n\s*/g, ' ')}`);
  if (out.length <= WAIT_FAILURES_SHOWN) return out;
  return [...out.slice(0, WAIT_FAILURES_SHOWN), `  … and ${out.length - WAIT_FAILURES_SHOWN} more`];
}

// Deployments of the given (Ready at SHA) clusters whose health is not Ready about what
// their cluster applied, one line each with the health and its first reason.
function unhealthy(deployments: BundleDeployment[], clusters: ClusterStatus[]): string[] {
  const byName = new Map(clusters.map((c) => [c.name, c]));
  const out: string[] = [];
  for (const d of deployments) {
    const c = byName.get(d.cluster);
    if (!c || healthyAtApplied(d, c)) continue;
    const where = `  ${d.bundle} on ${d.cluster}: `;
    if (d.health === '') out.push(`${where}no health reported yet`);
    else if (d.health === 'Ready') {
      const at = d.healthRevision ? d.healthRevision.slice(0, 12) : 'an unknown commit';
      out.push(`${where}Ready at ${at}, not reported at this content yet`);
    } else out.push(`${where}${d.health}${d.healthReason ? ` (${d.healthReason})` : ''}`);
  }
  return out;
}

/** Runs `flotilla wait`; returns the exit code. */
export async function waitCommand(
  argv: string[],
  io: CliIo,
  fetchFn: Fetch = fetch,
  now = Date.now,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      for: { type: 'string' },
      selector: { type: 'string', short: 'l' },
      timeout: { type: 'string', default: WAIT_DEFAULTS.timeout },
      interval: { type: 'string', default: WAIT_DEFAULTS.interval },
      healthy: { type: 'boolean' },
      'hub-url': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...CA_FILE_OPTION,
    },
  });
  if (values.help) return (io.stdout.write(WAIT_USAGE), ExitCode.ok);
  if (positionals.length > 0)
    throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`);
  const r = /^rollout=([a-z0-9]([-a-z0-9]*[a-z0-9])?)@([0-9a-f]{7,64})$/.exec(values.for ?? '');
  if (r) {
    const wait = {
      bundle: r[1] as string,
      sha: r[3] as string,
      timeout: values.timeout,
      intervalMs: Math.max(50, durationFlag(values.interval, '--interval')),
    };
    fetchFn = hubFetch(fetchFn, values['ca-file'], io, values['token-file']);
    return waitForRollout(wait, hubBase(values['hub-url'], io), io, fetchFn, now);
  }
  const m = /^revision=([0-9a-f]{7,64})$/.exec(values.for ?? '');
  if (!m)
    throw new UsageError(
      `--for: expected revision=SHA or rollout=BUNDLE@SHA (SHA: 7 to 64 lower-case hex characters), got "${values.for ?? ''}"`,
    );
  const sha = m[1] as string;
  const timeoutMs = durationFlag(values.timeout, '--timeout');
  const intervalMs = Math.max(50, durationFlag(values.interval, '--interval'));
  const selector = checkSelector(values.selector);
  const base = hubBase(values['hub-url'], io);
  const url = `${base}/api/v1/clusters${queryString({ selector })}`;
  const deploymentsUrl = `${base}/api/v1/deployments${queryString({ selector })}`;
  fetchFn = hubFetch(fetchFn, values['ca-file'], io, values['token-file']);
  const deadline = now() + timeoutMs;
  let lagging: string[] = ['  (no answer from the hub yet)'];
  for (;;) {
    try {
      const { clusters } = (await getJson(fetchFn, url)) as { clusters: ClusterStatus[] };
      const failed = renderFailedAt(clusters, sha);
      if (failed.length > 0) {
        const refused = applyFailedAt(clusters, sha);
        io.stderr.write(
          `revision ${sha} failed to render; it cannot reach these clusters until a commit fixes it:\n${failed.join('\n')}\n` +
            (refused.length > 0
              ? `and what was rendered failed to apply:\n${refused.join('\n')}\n`
              : ''),
        );
        return ExitCode.error;
      }
      lagging = clusters.map((c) => laggard(c, sha)).filter((l): l is string => l !== undefined);
      if (clusters.length === 0)
        lagging = [`  no cluster matches${selector ? ` "${selector}"` : ''}`];
      else if (lagging.length === 0 && values.healthy) {
        // Asked only once every cluster is there: health before the apply says nothing.
        const { deployments } = (await getJson(fetchFn, deploymentsUrl)) as {
          deployments: BundleDeployment[];
        };
        lagging = unhealthy(deployments, clusters);
        if (lagging.length === 0) {
          io.stdout.write(
            `${clusters.length} cluster(s) Ready and healthy at ${sha} (${deployments.length} deployment(s))\n`,
          );
          return ExitCode.ok;
        }
      } else if (lagging.length === 0) {
        io.stdout.write(`${clusters.length} cluster(s) Ready at ${sha}\n`);
        return ExitCode.ok;
      }
    } catch (err) {
      // A bad request will not get better; an unreachable hub may (it may be restarting).
      if (err instanceof HubError && err.status < 500) throw err;
      lagging = [`  hub: ${(err as Error).message}`];
    }
    if (now() >= deadline) break;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - now())));
  }
  io.stderr.write(
    `timed out after ${values.timeout} waiting for revision ${sha}${values.healthy ? ' to be healthy' : ''}; not there yet:\n${lagging.join('\n')}\n`,
  );
  return ExitCode.error;
}

/** Rollout phases that end a wait with failure: only a person or a new commit moves them. */
const ROLLOUT_STOPPED = ['Halted', 'RolledBack', 'Aborted', 'Superseded'];

// --for rollout=BUNDLE@SHA: polls the bundle's latest rollout until the one of SHA is
// Completed (0) or stopped (1). A rollout of SHA seen once and then replaced by another
// revision's was superseded.
async function waitForRollout(
  w: { bundle: string; sha: string; timeout: string; intervalMs: number },
  base: string,
  io: CliIo,
  fetchFn: Fetch,
  now: () => number,
): Promise<number> {
  const deadline = now() + durationFlag(w.timeout, '--timeout');
  const url = `${base}/api/v1/rollouts/${encodeURIComponent(w.bundle)}`;
  let seen = false;
  let last = '(no answer from the hub yet)';
  for (;;) {
    try {
      const v = (await getJson(fetchFn, url)) as RolloutView;
      const ours = v.revision.startsWith(w.sha);
      if (ours) seen = true;
      if (ours && v.phase === 'Completed') {
        io.stdout.write(`rollout ${v.id} Completed\n`);
        return ExitCode.ok;
      }
      if ((ours && ROLLOUT_STOPPED.includes(v.phase)) || (seen && !ours)) {
        const why = ours ? `${v.phase}: ${v.reason}` : `superseded by ${v.id}`;
        io.stderr.write(`rollout of ${w.bundle} at ${w.sha} did not complete: ${why}\n`);
        return ExitCode.error;
      }
      last = ours
        ? `rollout ${v.id} is ${v.phase}: ${v.reason}`
        : `no rollout of ${w.bundle} at ${w.sha} yet (latest: ${v.id}, ${v.phase})`;
    } catch (err) {
      if (err instanceof HubError && err.status === 404) last = `no rollout of ${w.bundle} yet`;
      else if (err instanceof HubError && err.status < 500) throw err;
      else last = `hub: ${(err as Error).message}`;
    }
    if (now() >= deadline) break;
    await sleep(Math.min(w.intervalMs, Math.max(0, deadline - now())));
  }
  io.stderr.write(
    `timed out after ${w.timeout} waiting for rollout ${w.bundle}@${w.sha}: ${last}\n`,
  );
  return ExitCode.error;
}

/**
 * Runs `flotilla watch` until signal aborts (exit 0) or the hub ends the stream (exit 1,
 * said on stderr); returns the exit code.
 */
export async function watchCommand(
  argv: string[],
  io: CliIo,
  fetchFn: Fetch = fetch,
  signal?: AbortSignal,
  now: () => number = Date.now,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      selector: { type: 'string', short: 'l' },
      'hub-url': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...CA_FILE_OPTION,
    },
  });
  if (values.help) return (io.stdout.write(WATCH_USAGE), ExitCode.ok);
  if (positionals.length > 0)
    throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`);
  const selector = checkSelector(values.selector);
  const url = `${hubBase(values['hub-url'], io)}/api/v1/watch${queryString({ selector })}`;
  fetchFn = hubFetch(fetchFn, values['ca-file'], io, values['token-file']);
  let res: Awaited<ReturnType<Fetch>>;
  try {
    res = await fetchFn(url, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) return ExitCode.ok;
    // Through getJson for the same error as every other command (unreachable, TLS).
    return getJson(() => Promise.reject(err as Error), url).then(() => ExitCode.error);
  }
  if (!res.ok || !res.body) return getJson(async () => res, url).then(() => ExitCode.error);
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        const type = /^event: (.*)$/m.exec(frame)?.[1];
        if (data && (type === 'snapshot' || type === 'changed'))
          io.stdout.write(
            formatWatchLine(JSON.parse(data) as ClusterStatus, new Date(now()).toISOString()),
          );
      }
    }
  } catch (err) {
    if (signal?.aborted) return ExitCode.ok;
    io.stderr.write(`the hub ended the watch stream: ${errorMessage(err)}\n`);
    return ExitCode.error;
  }
  if (signal?.aborted) return ExitCode.ok;
  io.stderr.write('the hub ended the watch stream\n');
  return ExitCode.error;
}
