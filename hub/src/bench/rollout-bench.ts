// Benchmark of the rollout controller's decisions (a program, not a test): one commit
// changes all 20 bundles of 1,000 clusters, each bundle rolls out over 4 stages (1 %,
// 10 %, 50 %, 100 % of the clusters, no soak), and every agent reports healthy as soon
// as it is sent the new rendering. It prints the decision time per tick (every bundle
// decided once; saving aside) against the target of 10 ms, the time to gate the fleet's
// desired states, and the in-process time of the whole rollout. Agents, the wire and
// NATS are left out on purpose: this is the controller's share; the end-to-end figure
// comes from the fleet simulator (docs/benchmarks.md).
// Run: node hub/dist/bench/rollout-bench.js [clusters=1000] [bundles=20]
import { performance } from 'node:perf_hooks';
import { bundleDigest, desiredStateDigest, silentLogger } from '@flotilla/common';
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
import type { RolloutPlan, RolloutStrategy } from '../render/types.js';
import { RolloutController } from '../rollout/controller.js';
import type { BundleHealthFact } from '../rollout/controller.js';
import { MemoryRolloutStore } from '../rollout/store.js';
import { stage } from '../rollout/testing.js';

const CLUSTERS = Number(process.argv[2] ?? 1000);
const BUNDLES = Number(process.argv[3] ?? 20);
const TARGET_TICK_MS = 10;
const REV = (n: number): string => String(n).repeat(40);
const clusterName = (i: number): string => `edge-${String(i).padStart(5, '0')}`;

const STRATEGY: RolloutStrategy = {
  stages: [stage('one-percent'), stage('ten-percent'), stage('half'), stage('all')],
  progressDeadlineMs: 600_000,
  onFailure: 'halt',
};

// Cumulative shares of the fleet per stage: 1 %, 10 %, 50 %, 100 %.
function stageOf(i: number): number {
  const share = (i + 1) / CLUSTERS;
  return share <= 0.01 ? 0 : share <= 0.1 ? 1 : share <= 0.5 ? 2 : 3;
}

// One rendering per bundle and version, shared by every cluster (content addressing).
function rendering(b: number, version: number): BundleDesiredState {
  const objects = Array.from({ length: 10 }, (_, o) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `cm-${o}`, namespace: `bundle-${b}` },
    data: { version: String(version), payload: 'x'.repeat(200) },
  }));
  const body = {
    name: `bundle-${b}`,
    drift: { mode: 'enforce' as const, ignore: [] },
    forceConflicts: true,
    objects,
  };
  return { ...body, digest: bundleDigest(body) };
}

function heads(version: number): Map<string, DesiredState> {
  const bundles = Array.from({ length: BUNDLES }, (_, b) => rendering(b, version));
  return new Map(
    Array.from({ length: CLUSTERS }, (_, i) => {
      const c = clusterName(i);
      return [
        c,
        { cluster: c, revision: REV(version), digest: desiredStateDigest(c, bundles), bundles },
      ];
    }),
  );
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

interface Figures {
  ticks: number[];
  cpu: number[];
  gates: number[];
  totalMs: number;
}

// One rollout of every bundle from commit to Completed; each tick, at most `perTick`
// clusters that were sent the new rendering report it healthy (all of them with Infinity).
async function rollout(perTick: number): Promise<Figures> {
  const health = new Map<string, Map<string, BundleHealthFact>>();
  let delivered = new Map<string, DesiredState>();
  const ticks: number[] = [];
  const cpu: number[] = [];
  const gates: number[] = [];
  let head = heads(1);
  const controller: RolloutController = new RolloutController({
    store: new MemoryRolloutStore(),
    status: { bundleHealth: (c, b) => health.get(c)?.get(b) },
    logger: silentLogger(),
    onChange: () => {
      const t0 = performance.now();
      const g = controller.gate(head);
      gates.push(performance.now() - t0);
      delivered = g.states;
      controller.delivered(g.states);
    },
    onDecision: (ms, _bundles, cpuMs) => {
      ticks.push(ms);
      cpu.push(cpuMs);
    },
    // History is written at once, as with NATS up: the outboxes stay small.
    history: { publish: async () => undefined },
  });
  const plans = new Map<string, RolloutPlan>(
    Array.from({ length: BUNDLES }, (_, b) => [
      `bundle-${b}`,
      {
        bundle: `bundle-${b}`,
        strategy: STRATEGY,
        stageOf: new Map(Array.from({ length: CLUSTERS }, (_, i) => [clusterName(i), stageOf(i)])),
        paused: [],
      },
    ]),
  );
  await controller.restore();
  controller.setHead(head, plans);
  await controller.decide();
  ticks.length = 0;
  cpu.length = 0;
  gates.length = 0;

  // An agent reports every bundle Ready at the state it was sent, once it has the new revision.
  const reported = new Map<string, string>();
  const report = (): void => {
    let n = 0;
    for (const [c, s] of delivered) {
      if (n >= perTick) return;
      if (reported.get(c) === s.digest || s.revision !== REV(2)) continue;
      const fresh = s.bundles.some(
        (b) => (b.objects[0]?.data as { version?: string } | undefined)?.version === '2',
      );
      if (!fresh) continue;
      reported.set(c, s.digest);
      controller.statusChanged(c);
      health.set(
        c,
        new Map(
          s.bundles.map((b) => [
            b.name,
            { offline: false, health: 'Ready', healthDigest: s.digest, healthReason: '' },
          ]),
        ),
      );
      n++;
    }
  };
  const t0 = performance.now();
  head = heads(2);
  controller.setHead(head, plans);
  await controller.decide();
  let rounds = 0;
  while (controller.list().some((r) => r.phase !== 'Completed')) {
    report();
    await controller.decide();
    if (++rounds > 10_000) throw new Error('the rollout does not complete');
  }
  const totalMs = performance.now() - t0;
  await controller.stop();
  return { ticks, cpu, gates, totalMs };
}

async function main(): Promise<void> {
  const line = (label: string, xs: number[]) =>
    `${label.padEnd(46)} p50 ${percentile(xs, 50).toFixed(2)} ms   p99 ${percentile(xs, 99).toFixed(2)} ms   max ${Math.max(...xs).toFixed(2)} ms   (${xs.length})`;
  const out = [
    `rollout controller: ${CLUSTERS} clusters × ${BUNDLES} bundles, 4 stages (1/10/50/100 %), no soak, agents healthy at once`,
    `(CPU time of this process: the machine is shared; wall time is what a hub would wait)`,
  ];
  for (const [label, perTick] of [
    ['health reports of 50 clusters per tick', 50],
    ['every cluster reporting in one tick', Infinity],
  ] as const) {
    const f = await rollout(perTick);
    // The first decision takes the commit: it starts all 20 rollouts at once.
    const [startCpu = 0, ...steadyCpu] = f.cpu;
    const [startWall = 0, ...steadyWall] = f.ticks;
    out.push(
      `— ${label}:`,
      `  start tick (the commit starts ${BUNDLES} rollouts of ${CLUSTERS} clusters): CPU ${startCpu.toFixed(1)} ms, wall ${startWall.toFixed(1)} ms`,
      line('  decision per tick after it, CPU', steadyCpu),
      line('  decision per tick after it, wall', steadyWall),
      line("  gating the fleet's desired states, wall", f.gates),
      `  in-process, commit → every rollout Completed: ${f.totalMs.toFixed(0)} ms (no agents, wire or NATS)`,
    );
    if (perTick === 50) {
      const p99 = percentile(steadyCpu, 99);
      out.push(
        `  target: decision per tick ≤ ${TARGET_TICK_MS} ms → ${p99 <= TARGET_TICK_MS ? 'met' : 'NOT met'} at p99 (CPU) after the start tick; the start tick ${startCpu <= TARGET_TICK_MS ? 'meets' : 'does NOT meet'} it`,
      );
    }
  }
  out.push(`RSS ${Math.round(process.memoryUsage().rss / 1024 / 1024)} MiB`, '');
  process.stdout.write(out.join('\n'));
}

await main();
