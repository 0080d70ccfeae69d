// The one-hub scale benchmark (a program, not a test): a real `flotilla hub` process, a
// real nats-server and Git server, and N simulated agents (the fleet simulator, in child
// processes) speaking the real protocol. It measures the targets of the one-hub table and,
// in the same run, the limits they chase:
//   push (webhook) → every agent has the new desired state, p50/p99   target ≤ 1 s (1,000)
//   push → the status API shows every cluster Ready at it             target ≤ 1.5 s
//   hub restart → every agent reconnected and resynced, nothing re-sent to a current agent
//   hub RSS per connected cluster; peak RSS during a fan-out vs steady (≤ 1.2×)
//   query p99 (status, get deployments -l, history) while a commit fans out   ≤ 50 ms
//   ingest: the hub folding a backlog vs a bare JetStream consumer (goal within 4×)
//   fan-out: the hub vs a bare grpc-js server writing the same bytes (goal within 2×)
// Beside each figure: the simulator's own CPU. Run (after `npx turbo run build`):
//   node integration-tests/dist/bench/fleet-bench.js [--clusters 1000] [--processes 2]
//        [--rounds 3] [--burst 20] [--profile] [--no-bare] [--log-dir DIR] [--connect-only]
//        [--restart-only]
// --profile runs the hub with --cpu-prof and prints where its CPU went in each phase.
// --connect-only stops after the connect storm: the RSS per connected cluster, in minutes.
// --restart-only: the connect storm, the ingest burst (it fills the history a restarted
// hub replays; --burst 0 skips it), then the restart with its timeline; no fan-out.
// --heap-snapshots writes the hub's heap, idle and connected, to the log directory.
// --fanout-only: the connect storm, the fan-outs and the bare server's; no ingest or restart.
// --send-budget 25ms sets the hub's grpc.sendBudget (sends per turn of the event loop);
// --hub-node-arg ARG and --hub-env NAME=VALUE (repeatable) start the hub process with them.
import { fork } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { quietDependencyWarnings } from '@flotilla/common';
import { simFleetBump, simFleetFiles } from '../sim/fleet-repo.js';
import { nowMs } from '../sim/sim-agent.js';
import { startSimHub } from '../sim/sim-hub.js';
import { Simulator } from '../sim/simulator.js';
import { encodeAll, startBareFanout } from './bare-fanout.js';
import { formatProfile, monotonicUs, summarizeProfile } from './cpu-profile.js';
import { heapSnapshot, heapSnapshotArgs } from './heap-snapshot.js';
import { fanout, ingest, renderFleet, restart, statusShows } from './fleet-bench-phases.js';
import { StatusWatch } from './status-watch.js';
import type { FanoutFigures, RestartFigures, Window } from './fleet-bench-phases.js';
import { loadAverage, median, percentile, sampleRss } from './proc-stats.js';

const { values: args } = parseArgs({
  options: {
    clusters: { type: 'string', default: '1000' },
    processes: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    burst: { type: 'string', default: '20' },
    bundles: { type: 'string', default: '5' },
    objects: { type: 'string', default: '5' },
    profile: { type: 'boolean', default: false },
    'no-bare': { type: 'boolean', default: false },
    'log-dir': { type: 'string' },
    'connect-only': { type: 'boolean', default: false },
    'restart-only': { type: 'boolean', default: false },
    'heap-snapshots': { type: 'boolean', default: false },
    'fanout-only': { type: 'boolean', default: false },
    'send-budget': { type: 'string' },
    'hub-node-arg': { type: 'string', multiple: true },
    'hub-env': { type: 'string', multiple: true },
  },
});
const N = Number(args.clusters);
const P = Number(args.processes);
const ROUNDS = Number(args.rounds);
const SHAPE = { clusters: N, bundles: Number(args.bundles), objects: Number(args.objects) };
/** Targets of the one-hub table, by fleet size. */
const TARGETS =
  N > 1000
    ? {
        receiveP99Ms: 5_000,
        statusMs: 8_000,
        restartMs: 60_000,
        rssPerClusterKiB: 50,
        queryP99Ms: 200,
      }
    : {
        receiveP99Ms: 1_000,
        statusMs: 1_500,
        restartMs: 10_000,
        rssPerClusterKiB: 50,
        queryP99Ms: 50,
      };
/**
 * Poll interval of the status API while waiting for the first commit: above 1,000 clusters
 * each answer is a list of the whole fleet, and polling it every 50 ms would load the hub
 * more than the agents do (1 s).
 */
const FIRST_STATUS_POLL_MS = N > 1000 ? 1_000 : undefined;
const PEAK_RSS_TARGET = 1.2;
/** --connect-only: how long the connected hub idles before its RSS is read again. */
const SETTLE_MS = 20_000;
const FANOUT_GOAL = 2;
const INGEST_GOAL = 4;

const MiB = 1048576;
const fmt = (ms: number): string => (Number.isFinite(ms) ? `${Math.round(ms)} ms` : 'n/a');
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT MET');

/** Waits until RSS settles, then the median RSS of pid over durationMs. */
async function steadyRss(pid: number, durationMs = 2_000): Promise<number> {
  const s = sampleRss(pid, 50);
  await new Promise((r) => setTimeout(r, durationMs)); // a sampling window, not a synchronization
  return s.stop().median;
}

/**
 * RSS per idle stream of the bare grpc-js server (bare-server.ts, its own process) with N
 * simulated agents connected: the floor of the hub's RSS per connected cluster.
 */
async function bareIdleStreams(natsUrl: string, logDir: string): Promise<number> {
  const child = fork(fileURLToPath(new URL('./bare-server.js', import.meta.url)), [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: [],
  });
  const exited = new Promise((r) => child.once('exit', r));
  let bareSim: Simulator | undefined;
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { port: number }));
      child.once('exit', (code) => reject(new Error(`bare server exited (${code})`)));
    });
    const pid = child.pid as number;
    const idle = await steadyRss(pid);
    bareSim = await Simulator.start({
      hub: `127.0.0.1:${port}`,
      nats: natsUrl,
      agents: N,
      processes: P,
      auth: { kind: 'token' },
      logDir: join(logDir, 'sim-bare-idle'),
    });
    await bareSim.allConnected(600_000);
    const connected = await steadyRss(pid);
    console.log(
      `bare grpc-js server: RSS idle ${Math.round(idle / MiB)} MiB, ${N} idle streams ${Math.round(connected / MiB)} MiB`,
    );
    return (connected - idle) / N;
  } finally {
    await bareSim?.stop();
    child.disconnect();
    await exited;
  }
}

async function bareFanout(
  repoDir: string,
  revision: string,
  natsUrl: string,
  logDir: string,
): Promise<{ p50: number; p99: number; simCpuMs: number }[]> {
  const states = await renderFleet(repoDir, revision);
  const encoded = await encodeAll(states);
  const bare = await startBareFanout();
  const sim = await Simulator.start({
    hub: `127.0.0.1:${bare.port}`,
    nats: natsUrl,
    agents: N,
    processes: P,
    auth: { kind: 'token' },
    logDir: join(logDir, 'sim-bare'),
  });
  const out: { p50: number; p99: number; simCpuMs: number }[] = [];
  try {
    await sim.allConnected(300_000);
    for (let r = 0; r < ROUNDS; r++) {
      const cpu0 = (await sim.stats()).cpuMs;
      const t0 = nowMs();
      await bare.send(encoded);
      await sim.waitUntil(
        () => sim.receivedAt(revision, t0).size === N,
        'bare fan-out received',
        300_000,
      );
      const lat = [...sim.receivedAt(revision, t0).values()].map((at) => at - t0);
      out.push({
        p50: percentile(lat, 50),
        p99: percentile(lat, 99),
        simCpuMs: (await sim.stats()).cpuMs - cpu0,
      });
    }
  } finally {
    await sim.stop();
    await bare.stop();
  }
  return out;
}

/** Prints each window's CPU profile summary (the restart's from the second hub process). */
async function printProfiles(profileDir: string, windows: Window[]): Promise<void> {
  const files = (await readdir(profileDir))
    // Main threads only (CPU.<date>.<time>.<pid>.<thread>.<seq>): the render worker has its own.
    .filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))
    .sort();
  for (const w of windows) {
    const after = w.label === 'restart';
    const file = files[after ? files.length - 1 : 0];
    if (!file) continue;
    for (const line of formatProfile(w.label, await summarizeProfile(join(profileDir, file), w)))
      console.log(line);
  }
}

function printRestart(rs: RestartFigures): void {
  const t = rs.timeline;
  const slow = Object.entries(t.oldSlowSteps)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(', ');
  console.log(
    `restart: every agent back and resynced ${fmt(rs.resyncMs)} after SIGTERM (hub ready after ${fmt(rs.hubReadyMs)}); desired states re-sent ${rs.resent}, to agents already current ${rs.resentToCurrent}`,
  );
  console.log(
    `  ms after SIGTERM: old hub exited ${fmt(t.exited)} (its stop ${fmt(t.oldStopMs)}${slow ? `: ${slow}` : ''}); new hub first log ${fmt(t.newFirstLog)}, listening ${fmt(t.listening)}, history replayed ${fmt(t.historyReplayed)} (${t.historyEvents} events), rendered ${fmt(t.rendered)}; agents back: first ${fmt(t.firstBack)}, half ${fmt(t.halfBack)}, all ${fmt(t.allBack)}; all resynced ${fmt(rs.resyncMs)}`,
  );
  console.log(
    `  CPU: new hub ${fmt(rs.newHubCpuMs)} (start to resync), simulator ${fmt(rs.simCpuMs)} (SIGTERM to resync)`,
  );
}

/**
 * A run cut short (timeout(1) sends SIGTERM, Ctrl-C SIGINT) stops the hub, nats-server and
 * Git server it started instead of leaving them running.
 */
function stopOnSignal(cleanup: () => Promise<void>): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.once(signal, () => {
      console.log(`${signal}: stopping the simulator and the hub`);
      void cleanup().finally(() => process.exit(1));
    });
}

async function main(): Promise<void> {
  const logDir = args['log-dir'] ?? (await mkdtemp(join(tmpdir(), 'flotilla-fleet-bench-')));
  const load0 = loadAverage();
  const profileDir = join(logDir, 'profiles');
  console.log(
    `fleet benchmark: ${N} clusters (${SHAPE.bundles} bundles × ${SHAPE.objects} objects), simulator in ${P} processes, Node ${process.version}, ${cpus().length} cores, load average ${load0}${args['send-budget'] ? `, hub grpc.sendBudget ${args['send-budget']}` : ''}${[...(args['hub-node-arg'] ?? []), ...(args['hub-env'] ?? [])].map((a) => ` ${a}`).join('')}; logs in ${logDir}`,
  );
  const hub = await startSimHub({
    repoFiles: simFleetFiles({ ...SHAPE, version: 1 }),
    mode: 'insecure',
    logDir,
    ...(args['send-budget'] ? { sendBudget: args['send-budget'] } : {}),
    hubEnv: Object.fromEntries((args['hub-env'] ?? []).map((kv) => kv.split(/=(.*)/s, 2))),
    hubNodeArgs: [
      ...(args['hub-node-arg'] ?? []),
      ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
      ...(args['heap-snapshots'] ? heapSnapshotArgs(logDir) : []),
    ],
  });
  const windows: Window[] = [];
  let sim: Simulator | undefined;
  stopOnSignal(async () => {
    // Starved workers stopping 10,000 agents took minutes: they get 10 s, then end with
    // this process (their IPC channel closes).
    await Promise.race([sim?.stop(), new Promise((r) => setTimeout(r, 10_000))]);
    await hub.stop();
  });
  try {
    const idleRss = await steadyRss(hub.hub.pid);
    if (args['heap-snapshots'])
      console.log(`heap snapshot (idle): ${await heapSnapshot(hub.hub.pid, logDir, 'idle')}`);
    const c0 = nowMs();
    const cu0 = monotonicUs();
    sim = await Simulator.start({
      hub: hub.grpcAddress,
      nats: hub.nats.url,
      agents: N,
      processes: P,
      auth: { kind: 'token', token: hub.agentToken },
      logDir: join(logDir, 'sim'),
    });
    await sim.allConnected(600_000);
    const connectMs = nowMs() - c0;
    // More sessions than agents: some timed out or were dropped during the storm and dialled again.
    const sessions = sim.agents().reduce((n, a) => n + a.sessions, 0);
    await statusShows(hub, hub.firstCommit, N, 300_000, FIRST_STATUS_POLL_MS);
    const firstMs = nowMs() - c0;
    windows.push({ label: 'connect storm + first state', fromUs: cu0, toUs: monotonicUs() });
    let steady = await steadyRss(hub.hub.pid);
    const connectedRss = steady;
    console.log(
      `connected ${N} agents in ${fmt(connectMs)} (${sessions} sessions welcomed), all Ready at the first commit after ${fmt(firstMs)}; hub RSS idle ${Math.round(idleRss / MiB)} MiB, connected ${Math.round(connectedRss / MiB)} MiB`,
    );
    if (args['heap-snapshots'])
      console.log(
        `heap snapshot (connected): ${await heapSnapshot(hub.hub.pid, logDir, 'connected')}`,
      );
    if (args['connect-only']) {
      const perCluster = (connectedRss - idleRss) / N;
      console.log(
        `hub RSS per connected cluster ${(perCluster / 1024).toFixed(1)} KiB (target ≤ 50 KiB); load average ${load0} → ${loadAverage()}`,
      );
      // The figure above is read as the storm ends, its garbage still in the heap; V8's
      // memory reducer collects it once the allocation rate drops (8 s after a full GC).
      await new Promise((r) => setTimeout(r, SETTLE_MS)); // lets the hub idle, not a synchronization
      const settled = (await steadyRss(hub.hub.pid)) - idleRss;
      console.log(
        `hub RSS per connected cluster ${SETTLE_MS / 1000} s later (heartbeats only): ${(settled / N / 1024).toFixed(1)} KiB`,
      );
      if (args['no-bare']) return;
      await sim.stop();
      sim = undefined;
      await hub.stopHub();
      const floor = await bareIdleStreams(hub.nats.url, logDir);
      console.log(
        `bare grpc-js server RSS per idle stream ${(floor / 1024).toFixed(1)} KiB; hub/bare ${(perCluster / floor).toFixed(2)}×; load average ${loadAverage()}`,
      );
      return;
    }
    if (args['restart-only']) {
      if (Number(args.burst) > 0) {
        const ing = await ingest(hub, sim, Number(args.burst));
        console.log(`ingest (history for the restart): ${ing.events} events`);
      }
      const rs = await restart(hub, sim);
      windows.push(rs.window);
      printRestart(rs);
      console.log(
        JSON.stringify({
          clusters: N,
          restartMs: Math.round(rs.resyncMs),
          resentToCurrent: rs.resentToCurrent,
          newHubCpuMs: rs.newHubCpuMs,
          simCpuMs: rs.simCpuMs,
          ...rs.timeline,
          load: [load0, loadAverage()],
        }),
      );
      // The new hub writes its profile when it exits.
      await hub.stopHub();
      if (args.profile) await printProfiles(profileDir, windows);
      return;
    }
    const rounds: FanoutFigures[] = [];
    const watch = await StatusWatch.open(hub.httpUrl);
    for (let r = 0; r < ROUNDS; r++) {
      const f = await fanout(
        hub,
        sim,
        watch,
        simFleetBump({ ...SHAPE, version: r + 2 }),
        `v${r + 2}`,
        steady,
      );
      rounds.push(f);
      windows.push(f.window);
      const h = f.hub;
      const q = Object.entries(f.queryP99Ms).map(([k, v]) => `${k} ${fmt(v)}`);
      console.log(
        `fan-out ${r + 1}: receive p50 ${fmt(f.receiveP50Ms)} p99 ${fmt(f.receiveP99Ms)} max ${fmt(f.receiveMaxMs)}; status ${fmt(f.statusMs)}; hub CPU ${fmt(f.hubCpuMs)} (main thread ${fmt(f.hubMainCpuMs)}), sim CPU ${fmt(f.simCpuMs)}; peak RSS ${Math.round(f.peakRssBytes / MiB)} MiB (steady ${Math.round(f.steadyRssBytes / MiB)}); ${f.queries} queries, p99 ${q.join(', ')}`,
      );
      console.log(
        `  hub log, ms after the webhook was sent: received ${h.webhook}, fetched ${h.fetched}, rendered ${h.rendered}, sessions notified ${h.published}, first state sent ${h.firstSent}, last ${h.lastSent}`,
      );
      steady = await steadyRss(hub.hub.pid);
    }
    watch.close();
    // Ingest before the restart: a restarted hub replays its history and takes its agents
    // back for a while, which would be measured with it.
    const fanoutOnly = args['fanout-only'];
    const ing = fanoutOnly
      ? { events: NaN, hubMs: NaN, bareMs: NaN }
      : await ingest(hub, sim, Number(args.burst));
    if ('window' in ing) windows.push(ing.window);
    console.log(
      `ingest: ${ing.events} events, hub ${fmt(ing.hubMs)} (${Math.round((ing.events * 1000) / ing.hubMs)}/s), bare consumer ${fmt(ing.bareMs)} (${Math.round((ing.events * 1000) / ing.bareMs)}/s)`,
    );
    const rs = fanoutOnly
      ? { resyncMs: NaN, resentToCurrent: NaN, hubReadyMs: NaN }
      : await restart(hub, sim);
    if ('window' in rs) {
      windows.push(rs.window);
      printRestart(rs);
    }
    const finalSim = await sim.stop();
    sim = undefined;
    await hub.stopHub();
    const lastRevision = rounds[rounds.length - 1]?.revision ?? hub.firstCommit;
    const bare = args['no-bare']
      ? []
      : await bareFanout(hub.repo.dir, lastRevision, hub.nats.url, logDir);
    for (const b of bare)
      console.log(
        `bare fan-out: receive p50 ${fmt(b.p50)} p99 ${fmt(b.p99)}; sim CPU ${fmt(b.simCpuMs)}`,
      );

    const m = (f: (x: FanoutFigures) => number): number => median(rounds.map(f));
    const p99 = m((f) => f.receiveP99Ms);
    const bareP99 = median(bare.map((b) => b.p99));
    const perClusterKiB = (connectedRss - idleRss) / N / 1024;
    const peakRatio = m((f) => f.peakRssBytes / f.steadyRssBytes);
    const worstQuery = m((f) => Math.max(...Object.values(f.queryP99Ms)));
    const ingestRatio = ing.hubMs / ing.bareMs;
    console.log(
      `\nsummary (medians of ${ROUNDS} fan-outs; load average ${load0} → ${loadAverage()}):`,
    );
    const row = (what: string, figure: string, target: string, extra = ''): void =>
      console.log(`  ${what.padEnd(44)} ${figure.padEnd(26)} ${target.padEnd(22)} ${extra}`);
    row('measure', 'figure', 'target', 'limit / simulator CPU');
    row(
      'push → every agent has it, p50 / p99',
      `${fmt(m((f) => f.receiveP50Ms))} / ${fmt(p99)}`,
      `≤ ${fmt(TARGETS.receiveP99Ms)} ${verdict(p99 <= TARGETS.receiveP99Ms)}`,
      `bare p99 ${fmt(bareP99)}, ratio ${(p99 / bareP99).toFixed(1)}× (goal ≤ ${FANOUT_GOAL}×); sim CPU ${fmt(m((f) => f.simCpuMs))}, hub CPU ${fmt(m((f) => f.hubCpuMs))}`,
    );
    row(
      'push → status shows every cluster',
      fmt(m((f) => f.statusMs)),
      `≤ ${fmt(TARGETS.statusMs)} ${verdict(m((f) => f.statusMs) <= TARGETS.statusMs)}`,
      `watch stream; webhook→rendered ${fmt(m((f) => f.hub.rendered))}, →last state sent ${fmt(m((f) => f.hub.lastSent))}`,
    );
    row(
      'hub restart → all reconnected + resynced',
      fmt(rs.resyncMs),
      `≤ ${fmt(TARGETS.restartMs)} ${verdict(rs.resyncMs <= TARGETS.restartMs && rs.resentToCurrent === 0)}`,
      `re-sent to current agents: ${rs.resentToCurrent} (must be 0)`,
    );
    row(
      'hub RSS per connected cluster',
      `${perClusterKiB.toFixed(1)} KiB`,
      `≤ ${TARGETS.rssPerClusterKiB} KiB ${verdict(perClusterKiB <= TARGETS.rssPerClusterKiB)}`,
      `idle ${Math.round(idleRss / MiB)} MiB, connected ${Math.round(connectedRss / MiB)} MiB`,
    );
    row(
      'peak RSS during a fan-out / steady',
      `${peakRatio.toFixed(2)}×`,
      `≤ ${PEAK_RSS_TARGET}× ${verdict(peakRatio <= PEAK_RSS_TARGET)}`,
    );
    row(
      'query p99 while a commit fans out (worst)',
      fmt(worstQuery),
      `≤ ${fmt(TARGETS.queryP99Ms)} ${verdict(worstQuery <= TARGETS.queryP99Ms)}`,
      Object.entries(rounds[0]?.queryP99Ms ?? {})
        .map(([k]) => `${k} ${fmt(m((f) => f.queryP99Ms[k] ?? NaN))}`)
        .join(', '),
    );
    row(
      'ingest of a backlog (events/s)',
      `${Math.round((ing.events * 1000) / ing.hubMs)}/s`,
      `≤ ${INGEST_GOAL}× bare ${verdict(ingestRatio <= INGEST_GOAL)}`,
      `bare ${Math.round((ing.events * 1000) / ing.bareMs)}/s, ratio ${ingestRatio.toFixed(1)}×`,
    );
    console.log(
      `  simulator total CPU ${fmt(finalSim?.cpuMs ?? NaN)}, RSS ${Math.round((finalSim?.rssBytes ?? 0) / MiB)} MiB`,
    );
    console.log(
      JSON.stringify({
        clusters: N,
        receiveP50Ms: Math.round(m((f) => f.receiveP50Ms)),
        receiveP99Ms: Math.round(p99),
        bareP99Ms: Math.round(bareP99),
        statusMs: Math.round(m((f) => f.statusMs)),
        restartMs: Math.round(rs.resyncMs),
        resentToCurrent: rs.resentToCurrent,
        rssPerClusterKiB: Number(perClusterKiB.toFixed(1)),
        peakRssRatio: Number(peakRatio.toFixed(2)),
        worstQueryP99Ms: Math.round(worstQuery),
        ingestPerSec: Math.round((ing.events * 1000) / ing.hubMs),
        bareIngestPerSec: Math.round((ing.events * 1000) / ing.bareMs),
        simCpuMs: Math.round(m((f) => f.simCpuMs)),
        hubCpuMs: Math.round(m((f) => f.hubCpuMs)),
        hubMainCpuMs: Math.round(m((f) => f.hubMainCpuMs)),
        fetchedMs: Math.round(m((f) => f.hub.fetched)),
        renderedMs: Math.round(m((f) => f.hub.rendered)),
        notifiedMs: Math.round(m((f) => f.hub.published)),
        lastSentMs: Math.round(m((f) => f.hub.lastSent)),
        load: [load0, loadAverage()],
      }),
    );
    if (args.profile) await printProfiles(profileDir, windows);
  } finally {
    await sim?.stop();
    await hub.stop();
  }
}

quietDependencyWarnings();
await main();
process.exit(0);
