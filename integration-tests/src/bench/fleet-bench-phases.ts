// The measurements of the fleet benchmark (fleet-bench.ts), one function per phase. Each
// takes the running hub and simulator and returns figures; none sleeps to synchronize:
// every wait is for a condition (records arriving, the API answering).
import { fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { DEFAULT_MAX_PRUNE_SHARE, EVENTS_STREAM, parseEvent } from '@flotilla/common';
import type { DesiredState } from '@flotilla/common';
import { FleetRenderer, STATUS_CONSUMER, readDirectoryTree } from '@flotilla/hub';
import { waitFor } from '@flotilla/test-env';
import { nowMs } from '../sim/sim-agent.js';
import type { SimHub } from '../sim/sim-hub.js';
import type { Simulator } from '../sim/simulator.js';
import { monotonicUs } from './cpu-profile.js';
import { cpuMsOf, percentile, sampleRss } from './proc-stats.js';
import type { QuerySample, ToQueryLoad } from './query-load.js';
import { cliRoutes } from './query-load.js';
import type { StatusWatch } from './status-watch.js';

/** Poll interval of the status API while waiting for a revision (its resolution). */
export const STATUS_POLL_MS = 50;

/** A window on the monotonic clock (µs), to slice the hub's CPU profile. */
export interface Window {
  label: string;
  fromUs: number;
  toUs: number;
}

/** Figures of one fan-out (a pushed commit). */
export interface FanoutFigures {
  revision: string;
  receiveP50Ms: number;
  receiveP99Ms: number;
  receiveMaxMs: number;
  statusMs: number;
  /** Webhook sent → hub logged the render done, and → desired states updated (from its log). */
  hub: HubTimeline;
  queryP99Ms: Record<string, number>;
  queries: number;
  peakRssBytes: number;
  steadyRssBytes: number;
  hubCpuMs: number;
  /** Of hubCpuMs, the main thread's (the rest is libuv's pool: gzip; and V8's helpers). */
  hubMainCpuMs: number;
  simCpuMs: number;
  window: Window;
}

/** Sum of flotilla_events_total in the hub's /metrics text. */
export async function hubEventsConsumed(hub: SimHub): Promise<number> {
  const res = await fetch(`${hub.httpUrl}/metrics`);
  const text = await res.text();
  let n = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('flotilla_events_total{'))
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

interface StatusRow {
  name: string;
  state: string;
  appliedRevision: string;
}

/** Polls the status API (what `flotilla status` reads) until every cluster is Ready at revision; resolves the wall time of that answer. */
export async function statusShows(
  hub: SimHub,
  revision: string,
  n: number,
  timeoutMs = 300_000,
  intervalMs = STATUS_POLL_MS,
): Promise<number> {
  return waitFor(
    async () => {
      const { clusters } = await hub.api<{ clusters: StatusRow[] }>('/api/v1/clusters');
      const at = nowMs();
      const done = clusters.filter((c) => c.state === 'Ready' && c.appliedRevision === revision);
      return done.length >= n ? at : false;
    },
    {
      what: `status: ${n} clusters Ready at ${revision.slice(0, 12)}`,
      timeoutMs,
      intervalMs,
    },
  );
}

/** Starts the query load in its own process; stop() returns its samples. */
async function startQueries(
  hub: SimHub,
  oneCluster: string,
): Promise<{ stop(): Promise<QuerySample[]> }> {
  const child = fork(fileURLToPath(new URL('./query-load.js', import.meta.url)), [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: [],
  });
  const running = new Promise((resolve) => child.once('message', resolve));
  child.send({
    t: 'start',
    base: hub.httpUrl,
    routes: cliRoutes(oneCluster),
  } satisfies ToQueryLoad);
  // The load runs before the push, so the whole fan-out is measured under it.
  await running;
  const samples = new Promise<QuerySample[]>((resolve) => child.once('message', resolve));
  return {
    async stop() {
      child.send({ t: 'stop' } satisfies ToQueryLoad);
      return samples;
    },
  };
}

/** Where a fan-out's time went, from the hub's log: ms after the webhook was sent. */
export interface HubTimeline {
  webhook: number;
  fetched: number;
  rendered: number;
  /** Render done → every session notified (synchronous work of the stream, then status). */
  published: number;
  firstSent: number;
  lastSent: number;
}

/** Reads the hub's log lines about `revision` (pino JSON, ms timestamps). */
export async function hubTimeline(
  logFile: string,
  revision: string,
  sentAt: number,
): Promise<HubTimeline> {
  const t: HubTimeline = {
    webhook: NaN,
    fetched: NaN,
    rendered: NaN,
    published: NaN,
    firstSent: NaN,
    lastSent: NaN,
  };
  const since = Math.floor(sentAt);
  for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { time: string; msg: string; revision?: string };
    const at = Math.round(Date.parse(l.time) - sentAt);
    if (Date.parse(l.time) < since) continue;
    if (l.msg === 'webhook: fetching now' && Number.isNaN(t.webhook)) t.webhook = at;
    else if (l.revision !== revision && l.msg !== 'desired states updated') continue;
    else if (l.msg === 'new revision') t.fetched = at;
    else if (l.msg === 'rendered fleet') t.rendered = at;
    else if (
      l.msg === 'desired states updated' &&
      !Number.isNaN(t.rendered) &&
      Number.isNaN(t.published)
    )
      t.published = at;
    else if (l.msg === 'desired state sent') {
      if (Number.isNaN(t.firstSent)) t.firstSent = at;
      t.lastSent = at;
    }
  }
  return t;
}

/** Pushes a commit changing every cluster and measures its way to the agents and to status. */
export async function fanout(
  hub: SimHub,
  sim: Simulator,
  watch: StatusWatch,
  files: Record<string, string>,
  label: string,
  steadyRssBytes: number,
): Promise<FanoutFigures> {
  const n = sim.names.length;
  const queries = await startQueries(hub, sim.names[Math.floor(n / 2)] as string);
  const rss = sampleRss(hub.hub.pid);
  const hubCpu0 = cpuMsOf(hub.hub.pid);
  const hubMain0 = cpuMsOf(hub.hub.pid, true);
  const simCpu0 = (await sim.stats()).cpuMs;
  const fromUs = monotonicUs();
  const { revision, sentAt } = await hub.push(files, label);
  const statusAt = watch.until(revision, n);
  // Settled now, awaited below: a status timeout while agents are still awaited is not unhandled.
  statusAt.catch(() => undefined);
  await sim.waitUntil(
    () => sim.receivedAt(revision, sentAt).size === n,
    `every agent received ${label}`,
    300_000,
  );
  const done = await statusAt;
  const toUs = monotonicUs();
  const hubCpuMs = cpuMsOf(hub.hub.pid) - hubCpu0;
  const hubMainCpuMs = cpuMsOf(hub.hub.pid, true) - hubMain0;
  // What the watch saw, `flotilla status` (the list API) shows.
  await statusShows(hub, revision, n, 10_000);
  const simCpuMs = (await sim.stats()).cpuMs - simCpu0;
  const peak = rss.stop().peak;
  const samples = (await queries.stop()).filter((q) => q.at >= sentAt && q.at <= done);
  const lat = [...sim.receivedAt(revision, sentAt).values()].map((at) => at - sentAt);
  const routes = [...new Set(samples.map((q) => q.route))];
  return {
    revision,
    receiveP50Ms: percentile(lat, 50),
    receiveP99Ms: percentile(lat, 99),
    receiveMaxMs: Math.max(...lat),
    statusMs: done - sentAt,
    hub: await hubTimeline(hub.hub.logFile, revision, sentAt),
    queryP99Ms: Object.fromEntries(
      routes.map((r) => [
        r,
        percentile(
          samples.filter((q) => q.route === r).map((q) => q.ms),
          99,
        ),
      ]),
    ),
    queries: samples.length,
    peakRssBytes: peak,
    steadyRssBytes,
    hubCpuMs,
    hubMainCpuMs,
    simCpuMs,
    window: { label, fromUs, toUs },
  };
}

/** Figures of a hub restart. */
export interface RestartFigures {
  /** SIGTERM → every agent welcomed again and told its state (desired or up-to-date). */
  resyncMs: number;
  /** SIGTERM → the new hub's /readyz. */
  hubReadyMs: number;
  /** Desired states sent in all during the resync. */
  resent: number;
  /** Desired states sent to agents whose applied digest was current (must be 0). */
  resentToCurrent: number;
  /** Where the time went, ms after SIGTERM (NaN when not seen). */
  timeline: RestartTimeline;
  /** CPU of the new hub process from its start to the resync (all threads), and the simulator's over the whole restart. */
  newHubCpuMs: number;
  simCpuMs: number;
  window: Window;
}

/** A restart's milestones, ms after SIGTERM. */
export interface RestartTimeline {
  /** The old hub's process exited. */
  exited: number;
  /** The old hub's own account of its shutdown (its "hub stopped" line). */
  oldStopMs: number;
  oldSlowSteps: Record<string, number>;
  /** The new hub process logged its first line (module loading done). */
  newFirstLog: number;
  /** The new hub's gRPC and HTTP servers listen. */
  listening: number;
  /** The new hub replayed its history (in the background). */
  historyReplayed: number;
  historyEvents: number;
  /** The new hub's first render after the restart finished (it replaces the saved one). */
  rendered: number;
  /** Agents back (welcomed again): first, half, all. */
  firstBack: number;
  halfBack: number;
  allBack: number;
}

interface LogLine {
  time: string;
  msg: string;
  ms?: number;
  slowSteps?: Record<string, number>;
  events?: number;
}

async function logLines(file: string): Promise<LogLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** Restarts the hub (SIGTERM, start) and measures until every agent is back and resynced. */
export async function restart(hub: SimHub, sim: Simulator): Promise<RestartFigures> {
  const from = sim.records().length;
  const simCpu0 = (await sim.stats()).cpuMs;
  const oldLog = hub.hub.logFile;
  const t0 = nowMs();
  const fromUs = monotonicUs();
  await hub.stopHub();
  const exited = nowMs() - t0;
  await hub.startHub();
  const hubReadyMs = nowMs() - t0;
  const resyncedAt = new Map<string, number>();
  const backAt = new Map<string, number>();
  const connected = new Set<string>();
  let seen = from;
  await sim.waitUntil(
    () => {
      const recs = sim.records();
      for (; seen < recs.length; seen++) {
        const r = recs[seen];
        if (!r) continue;
        if (r.k === 'connected') {
          connected.add(r.agent);
          if (!backAt.has(r.agent)) backAt.set(r.agent, r.at - t0);
        }
        if (
          (r.k === 'desired' || r.k === 'up-to-date') &&
          connected.has(r.agent) &&
          !resyncedAt.has(r.agent)
        )
          resyncedAt.set(r.agent, r.at);
      }
      return resyncedAt.size === sim.names.length;
    },
    'every agent reconnected and resynced',
    600_000,
  );
  const newHubCpuMs = cpuMsOf(hub.hub.pid);
  const simCpuMs = (await sim.stats()).cpuMs - simCpu0;
  const after = sim.records().slice(from);
  const desired = after.filter((r) => r.k === 'desired');
  const at = (l: LogLine | undefined): number => (l ? Date.parse(l.time) - t0 : NaN);
  const old = (await logLines(oldLog)).find((l) => l.msg === 'hub stopped');
  const lines = await logLines(hub.hub.logFile);
  const replayed = lines.find((l) => l.msg === 'history replayed');
  const back = [...backAt.values()].sort((a, b) => a - b);
  return {
    resyncMs: Math.max(...resyncedAt.values()) - t0,
    hubReadyMs,
    resentToCurrent: desired.filter((r) => r.k === 'desired' && r.redundant).length,
    resent: desired.length,
    newHubCpuMs,
    simCpuMs,
    timeline: {
      exited,
      oldStopMs: old?.ms ?? NaN,
      oldSlowSteps: old?.slowSteps ?? {},
      newFirstLog: at(lines[0]),
      listening: at(lines.find((l) => l.msg === 'hub listening')),
      historyReplayed: at(replayed),
      historyEvents: replayed?.events ?? NaN,
      rendered: at(lines.find((l) => l.msg === 'rendered fleet')),
      firstBack: back[0] ?? NaN,
      halfBack: back[Math.floor(back.length / 2)] ?? NaN,
      allBack: back[back.length - 1] ?? NaN,
    },
    window: { label: 'restart', fromUs, toUs: monotonicUs() },
  };
}

/** Figures of event ingest: the hub folding a backlog vs a bare consumer reading it. */
export interface IngestFigures {
  events: number;
  hubMs: number;
  bareMs: number;
  window: Window;
}

async function streamLastSeq(url: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    return (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.last_seq;
  } finally {
    await nc.close();
  }
}

/**
 * Resolves once the hub's status consumer has been delivered every event in the stream.
 * Asked of nats-server, so the hub pays nothing for the polling (its /metrics would cost
 * a pass over every cluster each time).
 */
async function hubCaughtUp(url: string, intervalMs = 50): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await waitFor(
      async () => {
        const last = (await jsm.streams.info(EVENTS_STREAM)).state.last_seq;
        for await (const c of jsm.consumers.list(EVENTS_STREAM))
          if (c.name.startsWith(STATUS_CONSUMER) && c.delivered.stream_seq >= last) return true;
        return false;
      },
      { what: 'the hub consumed every event so far', timeoutMs: 300_000, intervalMs },
    );
  } finally {
    await nc.close();
  }
}

/** Reads events [first, last] of the stream with an ordered consumer, parsing each; ms. */
export async function bareIngest(url: string, first: number, last: number): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const t = performance.now();
    const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: first,
    });
    const messages = await consumer.consume({ max_messages: 1_000 });
    for await (const m of messages) {
      parseEvent(m.data);
      if (m.seq >= last) break;
    }
    return performance.now() - t;
  } finally {
    await nc.close();
  }
}

/**
 * The hub is paused (SIGSTOP) while every agent publishes `perAgent` events, then resumed:
 * the time until it has consumed them all is its ingest of a backlog, compared with a bare
 * consumer reading the same events.
 */
export async function ingest(
  hub: SimHub,
  sim: Simulator,
  perAgent: number,
): Promise<IngestFigures> {
  await hubCaughtUp(hub.nats.url);
  const events0 = await hubEventsConsumed(hub);
  const seq0 = await streamLastSeq(hub.nats.url);
  const published0 = (await sim.stats()).published;
  const expected = sim.names.length * (perAgent - (perAgent % 2));
  process.kill(hub.hub.pid, 'SIGSTOP');
  try {
    await sim.burst(perAgent);
    await waitFor(
      async () => {
        const s = await sim.stats();
        return s.published - published0 >= expected && s.pending === 0;
      },
      { what: `${expected} events published`, timeoutMs: 300_000, intervalMs: 100 },
    );
  } finally {
    process.kill(hub.hub.pid, 'SIGCONT');
  }
  const fromUs = monotonicUs();
  const t0 = performance.now();
  const seq1 = await streamLastSeq(hub.nats.url);
  const events = seq1 - seq0;
  await hubCaughtUp(hub.nats.url, 20);
  // Delivered is at most one pull batch ahead of folded: the hub's own count says when.
  await waitFor(async () => (await hubEventsConsumed(hub)) - events0 >= events, {
    what: `hub consumed ${events} events`,
    timeoutMs: 300_000,
    intervalMs: 20,
  });
  const hubMs = performance.now() - t0;
  const toUs = monotonicUs();
  return {
    events,
    hubMs,
    bareMs: await bareIngest(hub.nats.url, seq0 + 1, seq1),
    window: { label: 'ingest', fromUs, toUs },
  };
}

/** Renders the fleet repo's working tree as the hub does (same renderer, same prune default). */
export async function renderFleet(
  dir: string,
  revision: string,
): Promise<Map<string, DesiredState>> {
  const result = await new FleetRenderer({ maxPruneShare: DEFAULT_MAX_PRUNE_SHARE }).render(
    await readDirectoryTree(dir),
    revision,
  );
  return new Map(result.clusters);
}
