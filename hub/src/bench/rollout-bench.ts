// Benchmark of the rollout controller's decisions (a program, not a test): one commit
// changes all 20 bundles of 1,000 clusters, each bundle rolls out over 4 stages (1 %,
// 10 %, 50 %, 100 % of the clusters, no soak), and every agent reports healthy as soon
// as it is sent the new rendering (or, in the last run, the last stage fails and every
// cluster is rolled back). It prints the decision time per tick (every bundle decided
// once; saving aside) by kind of tick — the commit's, a stage start, a steady one, a
// rollback — against the target of 10 ms and against a bare baseline measured in the
// same run (one look at every cluster × bundle entry), the time to gate the fleet's
// desired states, and the in-process time of the whole rollout. Agents, the wire and
// NATS are left out on purpose: this is the controller's share; the end-to-end figure
// comes from the fleet simulator (docs/benchmarks.md).
// Run: node hub/dist/bench/rollout-bench.js [clusters=1000] [bundles=20]
import { readFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
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

type TickKind = 'commit' | 'stage start' | 'steady' | 'rollback';
const KINDS: readonly TickKind[] = ['commit', 'stage start', 'steady', 'rollback'];

// The main thread's CPU time (ms), from the kernel's scheduler statistics: what the
// decision itself ran, without the threads beside it (GC marking, JIT compiling) that
// the process's CPU time adds; GC pauses of the main thread are in it.
function threadCpuMs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
}

interface Tick {
  kind: TickKind;
  /** The decision over every bundle (saving aside): main-thread CPU and wall time. */
  cpu: number;
  /** The same decision's CPU time of the whole process (every thread). */
  processCpu: number;
  wall: number;
  /** The whole decide(): decision, encoding, saving in memory, undo and redo (gating aside). */
  whole: number;
  /** When the decision started (performance.now()), to find the GC pauses inside it. */
  at: number;
  /** Garbage-collection pauses of the main thread inside the decision (wall, ms). */
  gc: number;
}

// Garbage-collection pauses (start, duration): the decision's time includes those that fall
// inside it, whatever allocated the garbage (gating, encoding, the bench itself).
const pauses: [number, number][] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) pauses.push([e.startTime, e.duration]);
}).observe({ entryTypes: ['gc'] });

function gcWithin(from: number, ms: number): number {
  let sum = 0;
  for (const [at, d] of pauses) {
    const overlap = Math.min(at + d, from + ms) - Math.max(at, from);
    if (overlap > 0) sum += overlap;
  }
  return sum;
}

interface Figures {
  ticks: Tick[];
  gates: number[];
  totalMs: number;
}

const FINAL = new Set(['Completed', 'RolledBack', 'Superseded', 'Aborted', 'Halted']);

// One rollout of every bundle from commit to its end; each tick, at most `perTick`
// clusters that were sent the new rendering report it (all of them with Infinity). Healthy:
// every cluster reports Ready. Rollback: the clusters of the last stage report Degraded,
// miss their deadline, and the rollout puts every cluster back (onFailure: rollback).
async function rollout(perTick: number, failing: boolean): Promise<Figures> {
  const health = new Map<string, Map<string, BundleHealthFact>>();
  let delivered = new Map<string, DesiredState>();
  const ticks: Tick[] = [];
  const marks: number[] = [];
  const gates: number[] = [];
  let clock = Date.UTC(2026, 0, 5, 12);
  let head = heads(1);
  const strategy: RolloutStrategy = failing ? { ...STRATEGY, onFailure: 'rollback' } : STRATEGY;
  const controller: RolloutController = new RolloutController({
    store: new MemoryRolloutStore(),
    status: { bundleHealth: (c, b) => health.get(c)?.get(b) },
    logger: silentLogger(),
    now: () => clock,
    onChange: () => {
      const t0 = performance.now();
      const g = controller.gate(head);
      gates.push(performance.now() - t0);
      delivered = g.states;
      controller.delivered(g.states);
    },
    // Read at the decision's start and end: the process's CPU time is taken beside it.
    cpuClock: () => {
      const u = process.cpuUsage();
      marks.push((u.user + u.system) / 1000);
      if (marks.length > 2) marks.shift();
      return threadCpuMs();
    },
    onDecision: (ms, _bundles, cpuMs) => {
      ticks.push({
        kind: 'steady',
        cpu: cpuMs,
        processCpu: (marks[1] ?? 0) - (marks[0] ?? 0),
        wall: ms,
        whole: 0,
        at: performance.now() - ms,
        gc: 0,
      });
    },
    onTransitions: (records) => {
      const t = ticks.at(-1);
      if (!t || t.kind === 'commit') return;
      if (records.some((r) => r.to === 'RolledBack')) t.kind = 'rollback';
      else if (records.some((r) => r.to === 'StageStarted')) t.kind = 'stage start';
    },
    // History is written at once, as with NATS up: the outboxes stay small.
    history: { publish: async () => undefined },
  });
  const plans = new Map<string, RolloutPlan>(
    Array.from({ length: BUNDLES }, (_, b) => [
      `bundle-${b}`,
      {
        bundle: `bundle-${b}`,
        strategy,
        stageOf: new Map(Array.from({ length: CLUSTERS }, (_, i) => [clusterName(i), stageOf(i)])),
        paused: [],
      },
    ]),
  );
  await controller.restore();
  controller.setHead(head, plans);
  // The first render is every bundle's baseline, decided over as many ticks as it takes.
  do await controller.decide();
  while (controller.deferredBundles > 0);
  ticks.length = 0;
  gates.length = 0;

  // An agent reports every bundle at the state it was sent, once it has the new revision.
  const lastStage = new Set(
    Array.from({ length: CLUSTERS }, (_, i) => i)
      .filter((i) => stageOf(i) === 3)
      .map(clusterName),
  );
  const reported = new Map<string, string>();
  const report = (): number => {
    let n = 0;
    for (const [c, s] of delivered) {
      if (n >= perTick) break;
      if (reported.get(c) === s.digest || s.revision !== REV(2)) continue;
      const fresh = s.bundles.some(
        (b) => (b.objects[0]?.data as { version?: string } | undefined)?.version === '2',
      );
      if (!fresh) continue;
      reported.set(c, s.digest);
      controller.statusChanged(c);
      const bad = failing && lastStage.has(c);
      health.set(
        c,
        new Map(
          s.bundles.map((b) => [
            b.name,
            {
              offline: false,
              health: bad ? 'Degraded' : 'Ready',
              healthDigest: s.digest,
              healthReason: bad ? 'crash loop' : '',
            },
          ]),
        ),
      );
      n++;
    }
    return n;
  };
  const timed = async (): Promise<void> => {
    const g = gates.length;
    const t0 = performance.now();
    await controller.decide();
    const gating = gates.slice(g).reduce((a, b) => a + b, 0);
    const t = ticks.at(-1);
    if (t) t.whole = performance.now() - t0 - gating;
  };
  const t0 = performance.now();
  head = heads(2);
  controller.setHead(head, plans);
  await timed();
  if (ticks[0]) ticks[0].kind = 'commit';
  let rounds = 0;
  const ongoing = (): boolean =>
    controller.deferredBundles > 0 || controller.list().some((r) => !FINAL.has(r.phase));
  while (ongoing()) {
    // Nothing left to report nor to decide: time passes until the progress deadline.
    if (report() === 0 && failing && controller.deferredBundles === 0)
      clock += strategy.progressDeadlineMs;
    await timed();
    if (++rounds > 10_000) throw new Error('the rollout does not end');
  }
  const totalMs = performance.now() - t0;
  // GC entries are delivered asynchronously: let them arrive, then attribute them.
  await new Promise((resolve) => setTimeout(resolve, 20));
  for (const t of ticks) t.gc = gcWithin(t.at, t.wall);
  const ended = controller.list().map((r) => r.phase);
  const want = failing ? 'RolledBack' : 'Completed';
  if (ended.length !== BUNDLES || ended.some((p) => p !== want))
    throw new Error(`rollouts ended ${[...new Set(ended)].join(', ')}, not ${want}`);
  await controller.stop();
  return { ticks, gates, totalMs };
}

// The bare baseline: one look at every cluster × bundle entry, as a tick that visits
// everything would do at least once (a map per bundle, a field read per cluster).
function baseline(): number[] {
  const maps = Array.from(
    { length: BUNDLES },
    () =>
      new Map(
        Array.from({ length: CLUSTERS }, (_, i) => [
          clusterName(i),
          { phase: i % 3 === 0 ? 'Waiting' : 'Healthy' },
        ]),
      ),
  );
  const out: number[] = [];
  let sink = 0;
  for (let k = 0; k < 60; k++) {
    const cpu0 = threadCpuMs();
    for (const m of maps) for (const run of m.values()) if (run.phase === 'Waiting') sink++;
    out.push(threadCpuMs() - cpu0);
  }
  if (sink < 0) throw new Error('unreachable');
  return out.slice(10);
}

async function main(): Promise<void> {
  const bare = percentile(baseline(), 50);
  const stats = (xs: number[]): string =>
    xs.length === 0
      ? 'none'
      : `p50 ${percentile(xs, 50).toFixed(2)}   p99 ${percentile(xs, 99).toFixed(2)}   max ${Math.max(...xs).toFixed(2)} ms (${xs.length})`;
  const out = [
    `rollout controller: ${CLUSTERS} clusters × ${BUNDLES} bundles, 4 stages (1/10/50/100 %), no soak`,
    `(CPU time of the main thread, from /proc/thread-self/schedstat: the machine is shared; the process's CPU adds GC marking and JIT threads; wall time is what a hub would wait)`,
    `bare baseline: one look at each of ${CLUSTERS * BUNDLES} cluster×bundle entries: CPU p50 ${bare.toFixed(2)} ms`,
  ];
  const all = new Map<TickKind, Tick[]>();
  for (const [label, perTick, failing] of [
    ['healthy, reports of 50 clusters per tick', 50, false],
    ['healthy, every cluster reporting in one tick', Infinity, false],
    ['last stage fails its deadline → rollback', 50, true],
  ] as const) {
    const f = await rollout(perTick, failing);
    out.push(`— ${label}:`);
    for (const kind of KINDS) {
      const of = f.ticks.filter((t) => t.kind === kind);
      if (of.length === 0) continue;
      const cpu = of.map((t) => t.cpu);
      const p99 = percentile(cpu, 99);
      all.set(kind, [...(all.get(kind) ?? []), ...of]);
      out.push(
        `  ${kind.padEnd(12)} decision CPU of the main thread ${stats(cpu)}  = ${(p99 / bare).toFixed(1)}× baseline at p99`,
        `  ${''.padEnd(12)} decision CPU of the process (every thread) ${stats(of.map((t) => t.processCpu))}`,
        `  ${''.padEnd(12)} decision wall ${stats(of.map((t) => t.wall))}`,
        `  ${''.padEnd(12)} GC pauses inside the decision, wall ${stats(of.map((t) => t.gc))}`,
        `  ${''.padEnd(12)} decision CPU less those pauses ${stats(of.map((t) => Math.max(0, t.cpu - t.gc)))}`,
        `  ${''.padEnd(12)} whole tick (decision + encode + save in memory, gating aside) wall ${stats(of.map((t) => t.whole))}`,
      );
    }
    out.push(
      `  gating the fleet's desired states, wall ${stats(f.gates)}`,
      `  in-process, commit → every rollout ${failing ? 'RolledBack' : 'Completed'}: ${f.totalMs.toFixed(0)} ms (no agents, wire or NATS)`,
    );
  }
  out.push(
    `target: decision per tick ≤ ${TARGET_TICK_MS} ms at its max (main-thread CPU, every tick of the kind in the 3 runs; the process's CPU beside it):`,
    ...KINDS.map((k) => {
      const of = all.get(k) ?? [];
      const cpu = of.map((t) => t.cpu);
      const max = cpu.length > 0 ? Math.max(...cpu) : 0;
      const lessGc = of.map((t) => Math.max(0, t.cpu - t.gc));
      const maxLessGc = lessGc.length > 0 ? Math.max(...lessGc) : 0;
      const proc = of.map((t) => t.processCpu);
      const maxProc = proc.length > 0 ? Math.max(...proc) : 0;
      return `  ${k.padEnd(12)} ${stats(cpu)} → ${max <= TARGET_TICK_MS ? 'met' : 'NOT met'}; less GC pauses inside it: max ${maxLessGc.toFixed(2)} ms; process CPU: max ${maxProc.toFixed(2)} ms → ${maxProc <= TARGET_TICK_MS ? 'met' : 'NOT met'}`;
    }),
    `RSS ${Math.round(process.memoryUsage().rss / 1024 / 1024)} MiB`,
    '',
  );
  process.stdout.write(out.join('\n'));
}

await main();
