// The rollout benchmark (a program, not a test): a real `flotilla hub` process, a real
// nats-server and Git server, and N simulated agents (the fleet simulator) that report
// every bundle healthy as soon as they applied it. One bundle rolls out over 4 stages
// (1 %, 10 %, 50 %, 100 % of the clusters, no soak) each round:
//   push (webhook) → the hub's rollout Completed        target ≤ 10 s at 1,000 clusters
//   the hub's decision time per tick (flotilla_rollout_decision_seconds)   ≤ 10 ms
// Run (after `npx turbo run build`):
//   node integration-tests/dist/bench/rollout-bench.js [--clusters 1000] [--processes 2] [--rounds 3]
import { mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { quietDependencyWarnings } from '@flotilla/common';
import { waitFor } from '@flotilla/test-env';
import { simFleetBump, simFleetFiles } from '../sim/fleet-repo.js';
import { startSimHub } from '../sim/sim-hub.js';
import type { SimHub } from '../sim/sim-hub.js';
import { Simulator } from '../sim/simulator.js';
import { statusShows } from './fleet-bench-phases.js';
import { loadAverage, median } from './proc-stats.js';

const { values: args } = parseArgs({
  options: {
    clusters: { type: 'string', default: '1000' },
    processes: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    'log-dir': { type: 'string' },
  },
});
const N = Number(args.clusters);
const P = Number(args.processes);
const ROUNDS = Number(args.rounds);
const SHAPE = { clusters: N, bundles: 5, objects: 5 };
const TARGET_MS = 10_000;
const TARGET_TICK_MS = 10;
/** How often the rollout is looked at: the resolution of the completion time. */
const POLL_MS = 100;

// Stages by cumulative share of the fleet: 1 %, 10 %, 50 %, 100 %.
function ringOf(i: number): number {
  const share = (i + 1) / N;
  return share <= 0.01 ? 0 : share <= 0.1 ? 1 : share <= 0.5 ? 2 : 3;
}

// The simulator's fleet, each cluster labelled with its ring, bundle-1 rolled out by ring.
function fleetFiles(version: number, all: boolean): Record<string, string> {
  const files = all ? simFleetFiles({ ...SHAPE, version }) : simFleetBump({ ...SHAPE, version });
  let i = 0;
  for (const path of Object.keys(files).sort())
    if (path.startsWith('clusters/'))
      files[path] = (files[path] as string).replace(
        'labels: {',
        `labels: { ring: r${ringOf(i++)},`,
      );
  const bundle = 'bundles/bundle-1/bundle.yaml';
  const spec = simFleetFiles({ ...SHAPE, version })[bundle] as string;
  files[bundle] = `${spec}  rollout:
    progressDeadline: 5m
    onFailure: halt
    stages:
${[0, 1, 2, 3].map((r) => `      - { name: ring-${r}, clusterSelector: { matchLabels: { ring: r${r} } } }`).join('\n')}
`;
  return files;
}

interface RolloutJson {
  id: string;
  revision: string;
  phase: string;
  endedAt: string | null;
  stages: { name: string; startedAt: string | null; completedAt: string | null }[];
}

async function completed(hub: SimHub, revision: string): Promise<RolloutJson> {
  return waitFor(
    async () => {
      const r = await hub.api<RolloutJson>('/api/v1/rollouts/bundle-1').catch(() => undefined);
      if (r?.revision === revision && r.phase !== 'Progressing' && r.phase !== 'Completed')
        throw new Error(`rollout ${r.id} is ${r.phase}`);
      return r?.revision === revision && r.phase === 'Completed' ? r : false;
    },
    {
      what: `rollout of bundle-1 at ${revision.slice(0, 12)} Completed`,
      timeoutMs: 300_000,
      intervalMs: POLL_MS,
    },
  );
}

// flotilla_rollout_decision_seconds from /metrics: bucket counts, sum and count.
async function decisions(
  hub: SimHub,
): Promise<{ buckets: [number, number][]; count: number; sum: number }> {
  const res = await fetch(`${hub.httpUrl}/metrics`);
  const text = await res.text();
  const buckets: [number, number][] = [];
  let count = 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    const b = /^flotilla_rollout_decision_seconds_bucket\{le="([^"]+)"\} (\d+)/.exec(line);
    if (b) buckets.push([b[1] === '+Inf' ? Infinity : Number(b[1]), Number(b[2])]);
    const c = /^flotilla_rollout_decision_seconds_count (\d+)/.exec(line);
    if (c) count = Number(c[1]);
    const s = /^flotilla_rollout_decision_seconds_sum (\S+)/.exec(line);
    if (s) sum = Number(s[1]);
  }
  return { buckets, count, sum };
}

// The bucket bound under which a share p of the decisions fall (an upper bound of the percentile).
function bucketPercentile(
  before: Awaited<ReturnType<typeof decisions>>,
  after: Awaited<ReturnType<typeof decisions>>,
  p: number,
): number {
  const n = after.count - before.count;
  for (const [le, c] of after.buckets) {
    const prior = before.buckets.find(([l]) => l === le)?.[1] ?? 0;
    if (c - prior >= p * n) return le * 1000;
  }
  return Infinity;
}

async function main(): Promise<void> {
  quietDependencyWarnings();
  const logDir = args['log-dir'] ?? (await mkdtemp(join(tmpdir(), 'flotilla-rollout-bench-')));
  console.log(
    `rollout benchmark: ${N} simulated clusters (${SHAPE.bundles} bundles), bundle-1 over 4 stages (1/10/50/100 %, no soak), simulator in ${P} processes, Node ${process.version}, ${cpus().length} cores, load average ${loadAverage()}; logs in ${logDir}`,
  );
  const hub = await startSimHub({ repoFiles: fleetFiles(1, true), mode: 'insecure', logDir });
  let sim: Simulator | undefined;
  try {
    sim = await Simulator.start({
      hub: hub.grpcAddress,
      nats: hub.nats.url,
      agents: N,
      processes: P,
      auth: { kind: 'token', token: hub.agentToken },
      logDir: join(logDir, 'sim'),
    });
    await sim.allConnected(600_000);
    await statusShows(hub, hub.firstCommit, N);
    const totals: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const before = await decisions(hub);
      const { revision, sentAt } = await hub.push(fleetFiles(r + 2, false), `bundle-1 v${r + 2}`);
      const done = await completed(hub, revision);
      const after = await decisions(hub);
      const totalMs = Math.round(Date.parse(done.endedAt ?? '') - sentAt);
      totals.push(totalMs);
      const stages = done.stages.map(
        (s) => `${s.name} ${Date.parse(s.completedAt ?? '') - Date.parse(s.startedAt ?? '')} ms`,
      );
      const n = after.count - before.count;
      console.log(
        `round ${r + 1}: push → Completed ${totalMs} ms (${stages.join(', ')}); ${n} decisions, mean ${((1000 * (after.sum - before.sum)) / Math.max(1, n)).toFixed(2)} ms, p50 ≤ ${bucketPercentile(before, after, 0.5)} ms, p99 ≤ ${bucketPercentile(before, after, 0.99)} ms (histogram buckets)`,
      );
    }
    const m = median(totals);
    console.log(
      `median push → Completed: ${m} ms; target ≤ ${TARGET_MS} ms → ${m <= TARGET_MS ? 'met' : 'NOT MET'}; decision target ≤ ${TARGET_TICK_MS} ms per tick (see the p99 bounds above); load average ${loadAverage()}`,
    );
  } finally {
    await sim?.stop();
    await hub.stop();
  }
}

await main();
