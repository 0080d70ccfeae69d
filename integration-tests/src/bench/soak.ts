// The chaos soak (a program, not a test): N simulated clusters with churn and drift
// against three hub replicas on a three-node NATS JetStream cluster, for M minutes, while
// a replica is SIGKILLed and started again every few minutes (every other kill is the
// lease holder's, a few seconds after a push, in the middle of the commit's fan-out).
// A commit is pushed at the start of every kill cycle. It reports:
//   - per kill: lease takeover time (when the holder was killed), and the time from the
//     kill until every simulated agent is connected again (or away by its own churn) and
//     applied the head, and until every replica's status shows every cluster at the head;
//   - events published vs folded, at the end (agents stopped, publishers flushed):
//     published = events the simulated agents' publishers had acknowledged by JetStream;
//     stored    = agent events in the events stream (subjects flotilla.events.>);
//     folded, per replica = its durable status consumer acknowledged every stored event
//       (nothing pending, nothing awaiting ack), and the drift-detected events its status
//       counts (sum of driftEvents over every deployment) equal those published;
//     When a replica's count differs, the clusters whose count differs are listed (stored
//     per cluster, from the stream's subject counts, vs counted in that replica's status);
//   - memory sampled every 10 s, per process kind: hub replicas (RSS, V8 heap in use and the
//     history's entries and estimated bytes, from /metrics), NATS nodes (RSS) and simulator
//     workers (RSS). Per process that lived long enough, the growth from the minute after its
//     warm-up to its last minute; the target (≤ 10 %) is the hub replicas' RSS, reported
//     as it is and less the history's own growth (its accounted bytes are heap bytes).
// Run (after `npx turbo run build`):
//   node integration-tests/dist/bench/soak.js [--clusters 1000] [--minutes 30]
//        [--kill-every 3m] [--down 5s] [--hubs 3] [--processes 2] [--churn 0.5]
//        [--drift 0.5] [--warmup 2m] [--history-retention D] [--seed 1] [--log-dir DIR]
//        [--heap-snapshots]
// --history-retention sets the replicas' history.retention (default the hub's, 7 d): the
// in-memory history grows with the stream until its retention or its caps (250,000 entries,
// 256 MiB), so a retention shorter than the warm-up makes RSS growth after it measure leaks.
// --heap-snapshots has every live replica write a heap snapshot when the warm-up ends and
// at the end (agents still connected), and prints what grew in between by constructor,
// per history entry added; the snapshots pause the replicas and disturb their RSS, so a
// run with them is for finding what grows, not for the RSS figure.
import { mkdir, mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration, quietDependencyWarnings } from '@flotilla/common';
import { simFleetBump, simFleetFiles } from '../sim/fleet-repo.js';
import { nowMs } from '../sim/sim-agent.js';
import { seededRng } from '../sim/random.js';
import { Simulator } from '../sim/simulator.js';
import { formatHeapGrowth, heapGrowth, heapSnapshot, heapSnapshotArgs } from './heap-snapshot.js';
import { loadAverage, median, rssOf } from './proc-stats.js';
import { startReplicaSet, storedAgentEvents, storedPerCluster } from './replica-set.js';
import type { Replica, ReplicaSet } from './replica-set.js';

const { values: args } = parseArgs({
  options: {
    clusters: { type: 'string', default: '1000' },
    minutes: { type: 'string', default: '30' },
    'kill-every': { type: 'string', default: '3m' },
    down: { type: 'string', default: '5s' },
    hubs: { type: 'string', default: '3' },
    processes: { type: 'string', default: '2' },
    churn: { type: 'string', default: '0.5' },
    drift: { type: 'string', default: '0.5' },
    warmup: { type: 'string', default: '2m' },
    'history-retention': { type: 'string' },
    seed: { type: 'string', default: '1' },
    'log-dir': { type: 'string' },
    'heap-snapshots': { type: 'boolean', default: false },
  },
});
const N = Number(args.clusters);
const RUN_MS = Number(args.minutes) * 60_000;
const KILL_EVERY_MS = parseDuration(args['kill-every']);
const DOWN_MS = parseDuration(args.down);
const WARMUP_MS = parseDuration(args.warmup);
const RSS_EVERY_MS = 10_000;
const RSS_GROWTH_TARGET = 0.1;
const TAKEOVER_TARGET_MS = 5_000;
const SHAPE = { clusters: N, bundles: 5, objects: 5 };
for (const [flag, v] of Object.entries({ clusters: N, minutes: RUN_MS, hubs: Number(args.hubs) }))
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${flag} must be a positive number`);
if (N > 20_000) throw new Error(`--clusters ${N}: at most 20,000`);
if (KILL_EVERY_MS < 30_000) throw new Error('--kill-every must be at least 30s');

const MiB = 1048576;
const pct = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)} %`;
const sec = (ms: number): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : '—');
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT MET');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface KillFigures {
  at: number;
  replica: string;
  holder: boolean;
  midFanout: boolean;
  /** Agents whose session the kill ended. */
  dropped: number;
  takeoverMs: number;
  agentsMs: number;
  statusMs: number;
}

/** What a sampled process is: a hub replica, a NATS node or a simulator worker. */
type ProcKind = 'hub' | 'nats' | 'sim';

interface RssSample {
  at: number;
  kind: ProcKind;
  /** Replica, node or worker name. */
  name: string;
  /** The process (a replica started again is a new one). */
  pid: number;
  rss: number;
  /** Hub replicas only, from /metrics: V8 heap in use, history entries and estimated bytes. */
  heapUsed?: number;
  historyEntries?: number;
  historyBytes?: number;
}

/** Agents as the simulator's records show them, incrementally: connected, or away by their own churn. */
class AgentWatch {
  private seen = 0;
  /** Agents whose last session end was not their own (the hub went away), with when. */
  readonly lost = new Map<string, number>();
  /** Every session end that was not the agent's own: agent and when. */
  private readonly ends: { agent: string; at: number }[] = [];

  constructor(private readonly sim: Simulator) {}

  update(): void {
    const all = this.sim.records();
    for (; this.seen < all.length; this.seen++) {
      const r = all[this.seen]!;
      if (r.k === 'connected') this.lost.delete(r.agent);
      // A churned agent stops its own connection ("closed"); the hub ending it leaves a backoff.
      else if (r.k === 'disconnected' && r.reason !== 'closed') {
        this.lost.set(r.agent, r.at);
        this.ends.push({ agent: r.agent, at: r.at });
      }
    }
  }

  droppedSince(t: number): number {
    this.update();
    return new Set(this.ends.filter((e) => e.at >= t).map((e) => e.agent)).size;
  }

  /** Every agent reachable (no session lost to a hub) and applied `revision`. */
  converged(revision: string): boolean {
    this.update();
    return this.lost.size === 0 && this.sim.agents().every((a) => a.appliedRevision === revision);
  }
}

async function statusAtHead(set: ReplicaSet, revision: string): Promise<boolean> {
  for (const r of set.replicas) {
    if (!r.proc) return false;
    const res = await fetch(`${r.httpUrl}/api/v1/clusters`).catch(() => undefined);
    if (!res?.ok) return false;
    const { clusters } = (await res.json()) as { clusters: { appliedRevision?: string }[] };
    if (clusters.filter((c) => c.appliedRevision === revision).length < N) return false;
  }
  return true;
}

async function pushVersion(set: ReplicaSet, version: number): Promise<string> {
  await set.repo.writeFiles(simFleetBump({ ...SHAPE, version }));
  return set.repo.commitAndPush(`Fleet version ${version}`);
}

/** One kill: SIGKILL, down for DOWN_MS, start again; then waits for convergence (at most untilMs). */
async function killOnce(
  set: ReplicaSet,
  sim: Simulator,
  watch: AgentWatch,
  victim: Replica,
  head: string,
  midFanout: boolean,
  untilMs: number,
): Promise<KillFigures> {
  const holder = (await set.leaseHolder()) === victim.name;
  const at = nowMs();
  await set.kill(victim);
  let takeoverMs = NaN;
  const takeover = holder
    ? (async () => {
        while (nowMs() < untilMs) {
          const h = await set.leaseHolder().catch(() => undefined);
          if (h && h !== victim.name) return (takeoverMs = nowMs() - at);
          await sleep(50);
        }
        return NaN;
      })()
    : Promise.resolve(NaN);
  await sleep(DOWN_MS);
  await set.start(victim);
  let agentsMs = NaN;
  const agents = sim
    .waitUntil(() => watch.converged(head), 'agents converged', Math.max(1, untilMs - nowMs()))
    .then(
      () => (agentsMs = nowMs() - at),
      () => undefined,
    );
  let statusMs = NaN;
  while (nowMs() < untilMs) {
    if (await statusAtHead(set, head)) {
      statusMs = nowMs() - at;
      break;
    }
    await sleep(500);
  }
  await Promise.all([agents, takeover]);
  return {
    at,
    replica: victim.name,
    holder,
    midFanout,
    dropped: watch.droppedSince(at),
    takeoverMs,
    agentsMs,
    statusMs,
  };
}

interface Incarnation {
  kind: ProcKind;
  name: string;
  start: number;
  samples: RssSample[];
}

/** One figure of a process: median of the minute after its warm-up, of its last minute, growth. */
interface Growth {
  warm: number;
  last: number;
  growth: number;
}

/**
 * Memory growth of each process that lived at least warm-up + 2 minutes: median of its last
 * minute over the minute after warm-up, for RSS and (hubs) heap in use and history size.
 */
function memoryGrowth(samples: RssSample[]): (Incarnation & {
  rss: Growth;
  heap?: Growth;
  historyBytes?: Growth;
  historyEntries?: Growth;
  /** RSS growth less the history's own (its accounted bytes are its heap): what is not the history. */
  netOfHistory?: number;
})[] {
  const byProc = new Map<number, Incarnation>();
  // A process's start is its first sample (sampled every 10 s from its start).
  for (const s of samples) {
    const inc = byProc.get(s.pid) ?? { kind: s.kind, name: s.name, start: s.at, samples: [] };
    inc.samples.push(s);
    byProc.set(s.pid, inc);
  }
  const out = [];
  for (const inc of byProc.values()) {
    const end = inc.samples[inc.samples.length - 1]!.at;
    if (end - inc.start < WARMUP_MS + 120_000) continue;
    const warmSamples = inc.samples.filter(
      (s) => s.at >= inc.start + WARMUP_MS && s.at < inc.start + WARMUP_MS + 60_000,
    );
    const lastSamples = inc.samples.filter((s) => s.at > end - 60_000);
    const growthOf = (pick: (s: RssSample) => number | undefined): Growth | undefined => {
      const values = (list: RssSample[]): number[] =>
        list.map(pick).filter((v): v is number => v !== undefined);
      const [w, l] = [values(warmSamples), values(lastSamples)];
      if (w.length === 0 || l.length === 0) return undefined;
      const [warm, last] = [median(w), median(l)];
      return { warm, last, growth: last / warm - 1 };
    };
    const rss = growthOf((s) => s.rss);
    if (!rss) continue;
    const heap = growthOf((s) => s.heapUsed);
    const historyBytes = growthOf((s) => s.historyBytes);
    const historyEntries = growthOf((s) => s.historyEntries);
    out.push({
      ...inc,
      rss,
      ...(heap ? { heap } : {}),
      ...(historyBytes ? { historyBytes } : {}),
      ...(historyEntries ? { historyEntries } : {}),
      ...(historyBytes
        ? {
            netOfHistory:
              (rss.last - rss.warm - (historyBytes.last - historyBytes.warm)) / rss.warm,
          }
        : {}),
    });
  }
  return out;
}

/** A hub replica's memory figures from its /metrics (undefined when it does not answer). */
async function hubMemory(
  r: Replica,
): Promise<{ heapUsed: number; historyEntries: number; historyBytes: number } | undefined> {
  const res = await fetch(`${r.httpUrl}/metrics`, { signal: AbortSignal.timeout(5_000) }).catch(
    () => undefined,
  );
  if (!res?.ok) return undefined;
  const text = await res.text();
  const value = (name: string): number =>
    Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    heapUsed: value('nodejs_heap_size_used_bytes'),
    historyEntries: value('flotilla_history_entries'),
    historyBytes: value('flotilla_history_bytes'),
  };
}

/** Samples every hub replica, NATS node and simulator worker once. */
async function sampleMemory(set: ReplicaSet, sim: Simulator | undefined): Promise<RssSample[]> {
  const at = nowMs();
  const out: RssSample[] = [];
  const add = (kind: ProcKind, name: string, pid: number | undefined): RssSample | undefined => {
    const rss = pid === undefined ? 0 : rssOf(pid);
    if (pid === undefined || rss === 0) return undefined;
    const s: RssSample = { at, kind, name, pid, rss };
    out.push(s);
    return s;
  };
  await Promise.all(
    set.replicas.map(async (r) => {
      const s = add('hub', r.name, r.proc?.pid);
      const m = s ? await hubMemory(r) : undefined;
      if (s && m) Object.assign(s, m);
    }),
  );
  set.nats.nodes.forEach((n) => add('nats', n.name, n.pid));
  (sim?.pids ?? []).forEach((pid, i) => add('sim', `worker-${i + 1}`, pid));
  return out;
}

async function main(): Promise<void> {
  const logDir = args['log-dir'] ?? (await mkdtemp(join(tmpdir(), 'flotilla-soak-')));
  await mkdir(logDir, { recursive: true });
  const load0 = loadAverage();
  console.log(
    `soak: ${N} clusters, ${args.hubs} hub replicas on 3 NATS nodes, ${args.minutes} min, a kill every ${args['kill-every']} (down ${args.down}), churn ${args.churn}/min, drift ${args.drift}/min per agent, simulator in ${args.processes} processes; Node ${process.version}, ${cpus().length} cores, load average ${load0}; logs in ${logDir}`,
  );
  const set = await startReplicaSet({
    repoFiles: simFleetFiles({ ...SHAPE, version: 1 }),
    logDir,
    replicas: Number(args.hubs),
    ...(args['history-retention'] ? { historyRetention: args['history-retention'] } : {}),
    ...(args['heap-snapshots'] ? { hubNodeArgs: heapSnapshotArgs(logDir) } : {}),
  });
  let sim: Simulator | undefined;
  const rss: RssSample[] = [];
  let sampling = false;
  const sampler = setInterval(() => {
    if (sampling) return;
    sampling = true;
    void sampleMemory(set, sim)
      .then((list) => rss.push(...list))
      .finally(() => (sampling = false));
  }, RSS_EVERY_MS);
  const loads: number[] = [load0];
  try {
    sim = await Simulator.start({
      hub: set.grpcAddresses,
      nats: set.nats.url,
      agents: N,
      processes: Number(args.processes),
      auth: { kind: 'token', token: set.agentToken },
      churnPerMinute: Number(args.churn),
      driftPerMinute: Number(args.drift),
      seed: Number(args.seed),
      logDir: join(logDir, 'sim'),
    });
    const watch = new AgentWatch(sim);
    await sim.allAt(set.firstCommit, 600_000);
    const t0 = nowMs();
    console.log(`every agent at the first commit; soak starts (load ${loadAverage()})`);
    const warmSnapshots = new Map<number, HubSnapshot>();
    const warmTimer = args['heap-snapshots']
      ? setTimeout(() => {
          void snapshotHubs(set, logDir, 'warm').then((list) =>
            list.forEach((h) => warmSnapshots.set(h.pid, h)),
          );
        }, WARMUP_MS)
      : undefined;
    const kills: KillFigures[] = [];
    const rng = seededRng(Number(args.seed), 'soak-victims');
    let version = 1;
    const cycles = Math.max(1, Math.floor(RUN_MS / KILL_EVERY_MS));
    for (let cycle = 0; cycle < cycles; cycle++) {
      const cycleEnd = t0 + (cycle + 1) * KILL_EVERY_MS;
      version += 1;
      const head = await pushVersion(set, version);
      // Even cycles: the lease holder, a few seconds after the push (poll 2 s + render, while
      // states go out). Odd cycles: any replica, once the commit has settled.
      const midFanout = cycle % 2 === 0;
      await sleep(midFanout ? 3_000 : KILL_EVERY_MS / 3);
      const holderName = await set.leaseHolder();
      const victim = midFanout
        ? (set.replicas.find((r) => r.name === holderName) ?? set.replicas[0]!)
        : set.replicas[Math.floor(rng() * set.replicas.length)]!;
      const k = await killOnce(set, sim, watch, victim, head, midFanout, cycleEnd - 2_000);
      kills.push(k);
      loads.push(loadAverage());
      console.log(
        `kill ${kills.length} at ${sec(k.at - t0)}: ${k.replica}${k.holder ? ' (lease holder)' : ''}${k.midFanout ? ' mid fan-out' : ''}; ${k.dropped} sessions ended; takeover ${sec(k.takeoverMs)}; agents converged ${sec(k.agentsMs)}; status on every replica ${sec(k.statusMs)}; load ${loadAverage()}`,
      );
      await sleep(Math.max(0, cycleEnd - nowMs()));
    }
    clearTimeout(warmTimer);
    if (args['heap-snapshots']) {
      // The replicas that lived from the warm-up to the end: what their heap gained.
      for (const late of await snapshotHubs(set, logDir, 'end')) {
        const warm = warmSnapshots.get(late.pid);
        if (!warm) continue;
        const added = late.historyEntries - warm.historyEntries;
        console.log(
          `heap growth of ${late.name} (pid ${late.pid}) from the warm-up to the end: history +${added} entries (estimated +${((late.historyBytes - warm.historyBytes) / MiB).toFixed(1)} MiB); by constructor:\n${formatHeapGrowth(heapGrowth(warm.path, late.path), { n: added, what: 'history entry' })}`,
        );
      }
    }
    const simMid = await sim.stats();
    const final = await sim.stop();
    sim = undefined;
    clearInterval(sampler);
    // Folded: every replica's consumer caught up, and its status counts what was published.
    const stored = await storedAgentEvents(set.jsm);
    const storedTotal = Object.values(stored).reduce((a, b) => a + b, 0);
    const published = final?.publishedByKind ?? {};
    const publishedTotal = final?.published ?? NaN;
    const driftPublished = published['drift-detected'] ?? 0;
    const folded: { replica: string; pending: number; ackPending: number; drift: number }[] = [];
    for (const r of set.replicas) {
      const name = set.consumerName(r);
      let info = await set.jsm.consumers.info('FLOTILLA_EVENTS', name);
      let drift = NaN;
      await waitForQuiet(async () => {
        info = await set.jsm.consumers.info('FLOTILLA_EVENTS', name);
        drift = await driftCounted(r);
        return info.num_pending === 0 && info.num_ack_pending === 0 && drift === driftPublished;
      }, 120_000);
      folded.push({
        replica: r.name,
        pending: info.num_pending,
        ackPending: info.num_ack_pending,
        drift,
      });
    }
    // Where a count differs: per cluster, stored vs counted, to tell a lost event from a
    // twice-counted one and a few clusters from many.
    const differing = new Map<string, string[]>();
    if (folded.some((f) => f.drift !== driftPublished)) {
      const perCluster = await storedPerCluster(set.jsm, 'drift-detected');
      for (const r of set.replicas) {
        const counted = await driftPerCluster(r);
        const lines: string[] = [];
        for (const c of new Set([...perCluster.keys(), ...counted.keys()])) {
          const [want, got] = [perCluster.get(c) ?? 0, counted.get(c) ?? 0];
          if (want !== got) lines.push(`${c} ${got}/${want}`);
        }
        if (lines.length > 0) differing.set(r.name, lines);
      }
    }

    const growth = memoryGrowth(rss);
    const hubGrowth = growth.filter((g) => g.kind === 'hub');
    console.log(
      `\nsummary: ${kills.length} kills in ${sec(nowMs() - t0)}; load average ${load0} at start, median ${median(loads)} during, ${loadAverage()} at the end`,
    );
    console.log(
      '  kill  replica  holder  mid-fan-out  sessions ended  takeover  agents converged  status converged',
    );
    kills.forEach((k, i) =>
      console.log(
        `  ${String(i + 1).padEnd(5)} ${k.replica.padEnd(8)} ${(k.holder ? 'yes' : 'no').padEnd(7)} ${(k.midFanout ? 'yes' : 'no').padEnd(12)} ${String(k.dropped).padEnd(15)} ${sec(k.takeoverMs).padEnd(9)} ${sec(k.agentsMs).padEnd(17)} ${sec(k.statusMs)}`,
      ),
    );
    console.log('  events by kind: published (acked by JetStream) / stored in the stream');
    for (const kind of new Set([...Object.keys(published), ...Object.keys(stored)]))
      console.log(`    ${kind.padEnd(16)} ${published[kind] ?? 0} / ${stored[kind] ?? 0}`);
    console.log(
      `  simulator: published ${publishedTotal}, pending at stop ${final?.pending ?? NaN}, dropped ${final?.dropped ?? NaN}; CPU ${sec(final?.cpuMs ?? NaN)} (${sec(simMid.cpuMs)} before stopping)`,
    );
    for (const f of folded) {
      console.log(
        `  ${f.replica}: consumer pending ${f.pending}, awaiting ack ${f.ackPending}; drift-detected in status ${f.drift} of ${driftPublished} published`,
      );
      const lines = differing.get(f.replica);
      if (lines)
        console.log(
          `    ${lines.length} clusters differ (counted/stored): ${lines.slice(0, 12).join(', ')}${lines.length > 12 ? ', ...' : ''}`,
        );
    }
    const mib = (g: Growth | undefined): string =>
      g
        ? `${(g.warm / MiB).toFixed(1)} → ${(g.last / MiB).toFixed(1)} MiB (${(g.growth * 100).toFixed(1)} %)`
        : '—';
    console.log(
      '  memory per process (lived ≥ warm-up + 2 min): minute after warm-up → last minute',
    );
    for (const kind of ['hub', 'nats', 'sim'] as const)
      for (const g of growth.filter((x) => x.kind === kind))
        console.log(
          `    ${kind.padEnd(4)} ${g.name.padEnd(18)} started at ${sec(g.start - t0).padEnd(8)} RSS ${mib(g.rss)}${
            kind === 'hub'
              ? `; heap used ${mib(g.heap)}; history ${Math.round(g.historyEntries?.warm ?? NaN)} → ${Math.round(g.historyEntries?.last ?? NaN)} entries, ${mib(g.historyBytes)}; RSS growth less the history's ${pct(g.netOfHistory)}`
              : ''
          }`,
        );
    const eventsOk =
      storedTotal === publishedTotal &&
      (final?.dropped ?? 1) === 0 &&
      folded.every((f) => f.pending === 0 && f.ackPending === 0 && f.drift === driftPublished);
    const rssOk = hubGrowth.every((g) => g.rss.growth <= RSS_GROWTH_TARGET);
    const netOk = hubGrowth.every((g) => (g.netOfHistory ?? Infinity) <= RSS_GROWTH_TARGET);
    const convergedOk = kills.every(
      (k) => Number.isFinite(k.agentsMs) && Number.isFinite(k.statusMs),
    );
    const takeovers = kills.filter((k) => k.holder);
    const takeoverOk = takeovers.every((k) => k.takeoverMs <= TAKEOVER_TARGET_MS);
    console.log('\nverdict:');
    console.log(
      `  events published = stored = folded by every replica: ${verdict(eventsOk)} (published ${publishedTotal}, stored ${storedTotal})`,
    );
    console.log(
      hubGrowth.length === 0
        ? '  hub RSS growth after warm-up ≤ 10 %: not measured (no hub process lived warm-up + 2 min)'
        : `  hub RSS growth after warm-up ≤ 10 %: ${verdict(rssOk)} (worst ${(Math.max(...hubGrowth.map((g) => g.rss.growth)) * 100).toFixed(1)} % over ${hubGrowth.length} processes; history retention ${args['history-retention'] ?? "the hub's default"})`,
    );
    if (hubGrowth.length > 0)
      console.log(
        `  hub RSS growth after warm-up less the history's own growth ≤ 10 %: ${verdict(netOk)} (worst ${pct(Math.max(...hubGrowth.map((g) => g.netOfHistory ?? Infinity)))})`,
      );
    console.log(
      `  every kill converged (agents and status) before the next: ${verdict(convergedOk)} (agents median ${sec(median(kills.map((k) => k.agentsMs)))}, status median ${sec(median(kills.map((k) => k.statusMs)))})`,
    );
    console.log(
      `  lease taken over within 5 s of the holder's kill: ${verdict(takeoverOk)} (${takeovers.map((k) => sec(k.takeoverMs)).join(', ')})`,
    );
    console.log(
      JSON.stringify({
        clusters: N,
        minutes: Number(args.minutes),
        kills: kills.map((k) => ({ ...k, at: Math.round(k.at - t0) })),
        published,
        stored,
        folded,
        memory: growth.map((g) => ({
          kind: g.kind,
          name: g.name,
          rss: g.rss,
          heap: g.heap,
          historyBytes: g.historyBytes,
          historyEntries: g.historyEntries,
          netOfHistory: g.netOfHistory,
        })),
        differing: Object.fromEntries(differing),
        load: { start: load0, median: median(loads), end: loadAverage() },
        verdict: { eventsOk, rssOk, netOk, convergedOk, takeoverOk },
      }),
    );
  } finally {
    clearInterval(sampler);
    await sim?.stop().catch(() => undefined);
    await set.stop();
  }
}

interface HubSnapshot {
  name: string;
  pid: number;
  path: string;
  historyEntries: number;
  historyBytes: number;
}

/** A heap snapshot of every live replica, one after the other, with its history's size then. */
async function snapshotHubs(set: ReplicaSet, dir: string, label: string): Promise<HubSnapshot[]> {
  const out: HubSnapshot[] = [];
  for (const r of set.replicas) {
    const pid = r.proc?.pid;
    if (pid === undefined) continue;
    const m = await hubMemory(r);
    const path = await heapSnapshot(pid, dir, `${r.name}-${pid}-${label}`).catch(() => undefined);
    if (!path || !m) continue;
    console.log(`heap snapshot of ${r.name} (pid ${pid}, ${label}): ${path}`);
    out.push({ name: r.name, pid, path, ...m });
  }
  return out;
}

/** Sum of driftEvents over every deployment in a replica's status. */
async function driftCounted(r: Replica): Promise<number> {
  const res = await fetch(`${r.httpUrl}/api/v1/deployments`);
  if (!res.ok) return NaN;
  const { deployments } = (await res.json()) as { deployments: { driftEvents: number }[] };
  return deployments.reduce((n, d) => n + d.driftEvents, 0);
}

/** Drift detections a replica's status counts, per cluster. */
async function driftPerCluster(r: Replica): Promise<Map<string, number>> {
  const res = await fetch(`${r.httpUrl}/api/v1/deployments`);
  const out = new Map<string, number>();
  if (!res.ok) return out;
  const { deployments } = (await res.json()) as {
    deployments: { cluster: string; driftEvents: number }[];
  };
  for (const d of deployments) out.set(d.cluster, (out.get(d.cluster) ?? 0) + d.driftEvents);
  return out;
}

/** Polls check every second until true or timeoutMs passed (the figures are then reported as they are). */
async function waitForQuiet(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = nowMs() + timeoutMs;
  while (nowMs() < until) {
    if (await check().catch(() => false)) return;
    await sleep(1_000);
  }
}

quietDependencyWarnings();
await main();
process.exit(0);
