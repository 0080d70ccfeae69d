// Benchmark of fleet status (a program, not a test), against a real nats-server:
//   ingest   events/s folded from JetStream into the model (+ history), target ≥ 20,000
//   queries  HTTP p99 over 1,000 clusters × 20 bundles, target ≤ 50 ms
//   memory   hub RSS holding that model and its history, target ≤ 300 MiB
//   restart  KV restore until the API answers, target ≤ 5 s
// One run prints one set of figures; the note takes the median of 3 runs.
// Run: node --expose-gc hub/dist/bench/status-bench.js [events=100000]
// Events are published by a child process, so the RSS measured is the hub side's only. The
// process sets the hub's V8 flags on itself as `flotilla hub` does (FLOTILLA_HUB_V8_FLAGS=off
// measures without them).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { eventSubject, silentLogger } from '@flotilla/common';
import { startHttpApi } from '../api/http.js';
import { HistoryLog } from '../history/history-log.js';
import { HubMetrics } from '../metrics/hub-metrics.js';
import { EventsConsumer, ensureEventsStream } from '../status/events-consumer.js';
import { FleetStatus } from '../status/fleet-status.js';
import { KvStatusPersistence } from '../status/kv-persistence.js';
import { NatsLink } from '../status/nats-link.js';
import { startNats } from '@flotilla/test-env';
import { appliedEvent } from '../status/testing.js';
import { applyHubV8Flags } from '../v8-flags.js';

const CLUSTERS = 1000;
const BUNDLES = 20;
const MODE = process.argv[2];
const CHILD = MODE === 'publish' || MODE === 'query';
const EVENTS = Number((CHILD ? process.argv[4] : process.argv[2]) ?? 100_000);
const TARGETS = { eventsPerSec: 20_000, p99Ms: 50, rssMiB: 300, restartMs: 5_000 };
const REV = 'feedc0de0123456789abcdef0123456789abcdef';
const name = (i: number) => `edge-${String(i).padStart(4, '0')}`;
const bundleDigests = Object.fromEntries(
  Array.from({ length: BUNDLES }, (_, b) => [`bundle-${b}`, `sha256:b${b}`]),
);

function newModel() {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const bundles = Object.entries(bundleDigests).map(([n, digest]) => ({ name: n, digest }));
  status.setFleet(
    Array.from({ length: CLUSTERS }, (_, i) => ({
      name: name(i),
      labels: { env: ['prod', 'dev'][i % 2] as string, region: `r${i % 5}` },
      desired: { revision: REV, digest: 'sha256:d', bundles },
    })),
  );
  return status;
}

async function publishAll(url: string): Promise<void> {
  const nc = await connect({ servers: url });
  await ensureEventsStream(nc);
  const js = jetstream(nc);
  const t0 = Date.now() - EVENTS;
  const BATCH = 2_000;
  for (let start = 0; start < EVENTS; start += BATCH) {
    const pending: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(EVENTS, start + BATCH); i++) {
      const c = name(i % CLUSTERS);
      const ev = appliedEvent(c, REV, 'sha256:d', bundleDigests, new Date(t0 + i));
      pending.push(js.publish(eventSubject(c, 'applied'), JSON.stringify(ev), { msgID: ev.id }));
    }
    await Promise.all(pending);
  }
  await nc.close();
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function queries(port: number): Promise<Record<string, { p50: number; p99: number }>> {
  const routes = {
    'clusters (all)': '/api/v1/clusters',
    'clusters ?selector': `/api/v1/clusters?selector=${encodeURIComponent('env=prod,region in (r1,r2)')}`,
    'cluster (one)': `/api/v1/clusters/${name(500)}`,
    bundles: '/api/v1/bundles',
    'deployments ?bundle': '/api/v1/deployments?bundle=bundle-3',
    'history ?cluster': `/api/v1/history?cluster=${name(7)}&limit=100`,
  };
  const out: Record<string, { p50: number; p99: number }> = {};
  for (const [label, path] of Object.entries(routes)) {
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${path}: ${res.status}`);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    out[label] = { p50: pct(times, 50), p99: pct(times, 99) };
  }
  return out;
}

const verdict = (ok: boolean) => (ok ? 'met' : 'NOT MET');

async function main(): Promise<void> {
  // The model is measured in a process set up as the hub's (`flotilla hub` does the same).
  applyHubV8Flags();
  const nats = await startNats();
  try {
    execFileSync(
      process.execPath,
      [fileURLToPath(import.meta.url), 'publish', nats.url, String(EVENTS)],
      { stdio: 'inherit' },
    );
    // Ingest: the app's sink (history + model + metrics) behind the durable consumer.
    const status = newModel();
    const history = new HistoryLog({ retentionMs: 7 * 86_400_000 });
    const metrics = new HubMetrics(status);
    const link = new NatsLink({ url: nats.url, logger: silentLogger() });
    link.start();
    // Wired as in the app: events are acked only after the KV save that holds them.
    const consumer = new EventsConsumer({
      connection: () => link.connection(),
      logger: silentLogger(),
      sink: (kind, ev) => {
        history.add(kind, ev);
        const outcome = status.foldEvent(kind, ev);
        metrics.eventConsumed(kind, ev, outcome);
        return outcome;
      },
      ackAfterSave: true,
      // Called only while consuming, after saver below exists.
      onBacklog: () => void saver.flush(),
    });
    const saver = new KvStatusPersistence({
      connection: () => link.connection(),
      isConnected: () => link.connected,
      status,
      logger: silentLogger(),
      checkpoint: () => consumer.checkpoint(),
    });
    saver.start();
    const t0 = performance.now();
    consumer.start();
    while (consumer.counters.folded + consumer.counters.stale < EVENTS)
      await new Promise((r) => setTimeout(r, 5));
    const ingestMs = performance.now() - t0;
    const eventsPerSec = Math.round((EVENTS / ingestMs) * 1000);
    await consumer.stop();
    await saver.stop();

    const api = await startHttpApi('127.0.0.1', 0, {
      status,
      history,
      metrics,
      sources: { sources: () => [] },
      readiness: { check: () => ({ ready: true, reasons: [] }) },
      logger: silentLogger(),
    });
    global.gc?.();
    const mib = (n: number) => Math.round(n / 1048576);
    const afterIngest = process.memoryUsage();
    const rssMiB = mib(afterIngest.rss);
    const heapMiB = mib(afterIngest.heapUsed);
    // The client runs in its own process: its buffers and GC are not the hub's.
    const self = fileURLToPath(import.meta.url);
    const child = await promisify(execFile)(
      process.execPath,
      [self, 'query', String(api.port), '0'],
      { maxBuffer: 1 << 20 },
    );
    const q = JSON.parse(child.stdout) as Record<string, { p50: number; p99: number }>;
    global.gc?.();
    const afterQueries = process.memoryUsage();
    const rssAfterMiB = mib(afterQueries.rss);
    const heapTotalAfterMiB = mib(afterQueries.heapTotal);
    await api.stop();

    // Restart: save the model to KV, then time a fresh model restoring it until the API answers.
    const kv = new KvStatusPersistence({
      connection: () => link.connection(),
      isConnected: () => link.connected,
      status,
      logger: silentLogger(),
    });
    await kv.flush();
    const r0 = performance.now();
    const fresh = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
    const kv2 = new KvStatusPersistence({
      connection: () => link.connection(),
      isConnected: () => link.connected,
      status: fresh,
      logger: silentLogger(),
    });
    const restored = await kv2.restore();
    const api2 = await startHttpApi('127.0.0.1', 0, {
      status: fresh,
      sources: { sources: () => [] },
      readiness: { check: () => ({ ready: true, reasons: [] }) },
      logger: silentLogger(),
    });
    const res = await fetch(
      `http://127.0.0.1:${api2.port}/api/v1/clusters?selector=${encodeURIComponent('env=prod')}`,
    );
    const served = ((await res.json()) as { clusters: unknown[] }).clusters.length;
    const restartMs = Math.round(performance.now() - r0);
    await api2.stop();
    await link.stop();
    if (restored !== CLUSTERS || served !== CLUSTERS / 2)
      throw new Error(`restore gave ${restored} records, ${served} served`);

    const worstP99 = Math.max(...Object.values(q).map((x) => x.p99));
    console.log(
      `status benchmark: ${CLUSTERS} clusters × ${BUNDLES} bundles, ${EVENTS} events (history holds ${history.size})`,
    );
    console.log(
      `ingest   ${eventsPerSec} events/s (${Math.round(ingestMs)} ms)   target ≥ ${TARGETS.eventsPerSec}: ${verdict(eventsPerSec >= TARGETS.eventsPerSec)}`,
    );
    for (const [label, v] of Object.entries(q))
      console.log(
        `query    ${label.padEnd(22)} p50 ${v.p50.toFixed(1)} ms   p99 ${v.p99.toFixed(1)} ms`,
      );
    console.log(
      `queries  worst p99 ${worstP99.toFixed(1)} ms   target ≤ ${TARGETS.p99Ms}: ${verdict(worstP99 <= TARGETS.p99Ms)}`,
    );
    console.log(
      `memory   RSS ${rssMiB} MiB after ingest (heap ${heapMiB} MiB), ${rssAfterMiB} MiB after the queries (V8 heap committed ${heapTotalAfterMiB} MiB)   target ≤ ${TARGETS.rssMiB}: ${verdict(Math.max(rssMiB, rssAfterMiB) <= TARGETS.rssMiB)}`,
    );
    for (const [when, m] of [
      ['after ingest', afterIngest],
      ['after queries', afterQueries],
    ] as const) {
      console.log(
        `detail   ${when.padEnd(13)} rss ${mib(m.rss)}  heapTotal ${mib(m.heapTotal)}  heapUsed ${mib(m.heapUsed)}  external ${mib(m.external)}  arrayBuffers ${mib(m.arrayBuffers)} MiB`,
      );
    }
    console.log(
      `restart  ${restartMs} ms to serve ${restored} restored clusters   target ≤ ${TARGETS.restartMs}: ${verdict(restartMs <= TARGETS.restartMs)}`,
    );
    console.log(
      JSON.stringify({
        eventsPerSec,
        worstP99Ms: Number(worstP99.toFixed(1)),
        rssMiB,
        heapMiB,
        rssAfterMiB,
        heapTotalAfterMiB,
        restartMs,
      }),
    );
  } finally {
    await nats.stop({ kill: true, removeStore: true });
  }
}

if (MODE === 'publish') await publishAll(process.argv[3] as string);
else if (MODE === 'query')
  process.stdout.write(JSON.stringify(await queries(Number(process.argv[3]))));
else await main();
