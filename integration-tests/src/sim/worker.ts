// A simulator worker process: runs its share of the simulated agents and reports to the
// parent over Node IPC (records in batches, stats on request). Started by Simulator with
// child_process.fork; never run by hand.
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { natsSink } from '@flotilla/agent';
import type { EventSink } from '@flotilla/agent';
import { createLogger, errorMessage } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import type { IdentityClient } from '@flotilla/proto';
import type { SimConfig } from './config.js';
import { adminIdentityClient, obtainIdentity } from './identity.js';
import type { SimIdentity } from './identity.js';
import type { FromWorker, SimRecord, ToWorker, WorkerStats } from './protocol.js';
import { NATS_DIALS_PER_SECOND, Pacer, pacedSink } from './paced-sink.js';
import { seededRng } from './random.js';
import { SimAgent } from './sim-agent.js';

/** Registrations in flight per worker: key generation blocks the loop, so a few at a time. */
const REGISTER_CONCURRENCY = 4;

const agents: SimAgent[] = [];
const identities: SimIdentity[] = [];
let records: SimRecord[] = [];
let flushTimer: NodeJS.Timeout | undefined;
let published = 0;
const publishedByKind: Record<string, number> = {};

function send(msg: FromWorker): void {
  process.send?.(msg);
}

function flush(): void {
  if (records.length === 0) return;
  send({ t: 'records', records });
  records = [];
}

/** Counts events JetStream acknowledged, so the parent knows when a burst is stored. */
function counting(inner: EventSink): EventSink {
  return {
    publish: async (subject, data, msgID) => {
      await inner.publish(subject, data, msgID);
      published++;
      const kind = subject.slice(subject.lastIndexOf('.') + 1);
      publishedByKind[kind] = (publishedByKind[kind] ?? 0) + 1;
    },
    close: () => inner.close(),
  };
}

async function startAgents(worker: number, cfg: SimConfig, names: string[]): Promise<void> {
  await mkdir(cfg.logDir, { recursive: true });
  const logger = createLogger({
    name: `sim-${worker}`,
    level: cfg.logLevel,
    destination: createWriteStream(join(cfg.logDir, `sim-worker-${worker}.log`), { flags: 'a' }),
  });
  flushTimer = setInterval(flush, cfg.reportIntervalMs);
  let admin: Promise<IdentityClient> | undefined;
  const auth = cfg.auth;
  const queue = [...names];
  const natsDials = new Pacer(NATS_DIALS_PER_SECOND);
  const startOne = async (name: string): Promise<void> => {
    const log: Logger = logger.child({ cluster: name });
    let identity: SimIdentity | undefined;
    if (auth.kind === 'bootstrap') {
      identity = await obtainIdentity({
        cluster: name,
        hub: cfg.hub,
        stateDir: auth.stateDir,
        admin: () => (admin ??= adminIdentityClient(cfg.hub, auth.adminDir)),
        logger: log,
      });
      identities.push(identity);
    }
    const agent = new SimAgent(name, cfg, {
      sink: counting(
        pacedSink(
          () =>
            natsSink({
              servers: cfg.nats,
              name: `flotilla-sim-${name}`,
              logger: log,
              ...identity?.nats,
            }),
          natsDials,
        ),
      ),
      rng: seededRng(cfg.seed, name),
      logger: log,
      record: (r) => records.push(r),
      credentials: identity?.credentials,
    });
    agents.push(agent);
    agent.start();
  };
  const lanes = Array.from({ length: REGISTER_CONCURRENCY }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) await startOne(name);
  });
  await Promise.all(lanes);
  (await admin)?.close();
}

function stats(): WorkerStats {
  const cpu = process.cpuUsage();
  let pending = 0;
  let dropped = 0;
  for (const a of agents) {
    pending += a.publisher.pending;
    dropped += a.publisher.dropped;
  }
  return {
    pid: process.pid,
    agents: agents.length,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rssBytes: process.memoryUsage.rss(),
    published,
    publishedByKind: { ...publishedByKind },
    pending,
    dropped,
    connected: agents.filter((a) => a.isConnected).length,
  };
}

async function stopAll(): Promise<void> {
  await Promise.all(agents.map((a) => a.stop()));
  for (const id of identities) id.stop();
  clearInterval(flushTimer);
  flush();
}

process.on('message', (msg: ToWorker) => {
  const reply = (
    id: number,
    work: () => Promise<WorkerStats | undefined> | WorkerStats | undefined,
  ): void => {
    void Promise.resolve()
      .then(work)
      .then(
        (s) => send({ t: 'reply', id, ...(s ? { stats: s } : {}) }),
        (err: unknown) => send({ t: 'reply', id, error: errorMessage(err) }),
      );
  };
  switch (msg.t) {
    case 'start':
      startAgents(msg.worker, msg.config, msg.agents).then(
        () => send({ t: 'ready' }),
        (err: unknown) => send({ t: 'fatal', message: errorMessage(err) }),
      );
      break;
    case 'stats':
      reply(msg.id, stats);
      break;
    case 'burst':
      reply(msg.id, () => {
        for (const a of agents) a.burst(msg.perAgent / 2);
        return undefined;
      });
      break;
    case 'stop':
      reply(msg.id, async () => {
        await stopAll();
        return stats();
      });
      break;
  }
});

// The parent is gone (killed, crashed): nothing to report to, so no reason to live.
process.on('disconnect', () => process.exit(0));
