// Hub replicas for simulated fleets (the soak program): a three-node NATS JetStream
// cluster, a smart-HTTP Git server with a generated fleet repo, and R `flotilla hub`
// processes sharing one hub.yaml but for their listen ports (one hubId, a replicaId
// each, nats.replicas 3), insecure with the shared agent token. Each replica can be
// SIGKILLed and started again with the same config; the lease holder and each replica's
// status consumer are read from NATS.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { EVENTS_STREAM } from '@flotilla/common';
import { ensureEventsStream, LEASE_BUCKET, STATUS_CONSUMER } from '@flotilla/hub';
import {
  createWorkRepo,
  freePort,
  spawnServer,
  startGitServer,
  startNatsCluster,
  waitFor,
} from '@flotilla/test-env';
import type { ManagedProcess, TestNatsCluster, WorkRepo } from '@flotilla/test-env';
import { FLOTILLA_BIN } from '../system/fleet.js';

/** One hub replica: its name (replicaId), addresses and current process. */
export interface Replica {
  name: string;
  grpc: string;
  httpUrl: string;
  config: string;
  /** The running process; undefined while it is down. */
  proc: ManagedProcess | undefined;
  /** Processes started so far (1 after the first start). */
  starts: number;
}

/** Options of startReplicaSet. */
export interface ReplicaSetOptions {
  repoFiles: Record<string, string>;
  logDir: string;
  /** Replicas (default 3). */
  replicas?: number;
  hubId?: string;
  /** Git poll interval of every replica (default "2s"). */
  pollInterval?: string;
  /** history.retention of every replica (default: the hub's). */
  historyRetention?: string;
  /** Node.js arguments of every replica's process (e.g. heapSnapshotArgs). */
  hubNodeArgs?: string[];
}

/** The running replicas and their servers. */
export interface ReplicaSet {
  hubId: string;
  nats: TestNatsCluster;
  nc: NatsConnection;
  jsm: JetStreamManager;
  repo: WorkRepo;
  firstCommit: string;
  agentToken: string;
  replicas: Replica[];
  /** Every replica's gRPC address, comma separated (what agents are given). */
  grpcAddresses: string;
  /** Starts a replica (again) and resolves once /readyz answers. */
  start(r: Replica): Promise<void>;
  /** SIGKILLs a replica and waits for its exit. */
  kill(r: Replica): Promise<void>;
  /** The replica holding the once-only work lease now (undefined: nobody). */
  leaseHolder(): Promise<string | undefined>;
  /** The durable status consumer of a replica. */
  consumerName(r: Replica): string;
  /** Stops every replica and server; idempotent. */
  stop(): Promise<void>;
}

/** Starts NATS (3 nodes), Git and the replicas; resolves once every replica is ready. */
export async function startReplicaSet(o: ReplicaSetOptions): Promise<ReplicaSet> {
  const hubId = o.hubId ?? 'soak-hub';
  const work = await mkdtemp(join(tmpdir(), 'flotilla-replica-set-'));
  const [nats, git] = await Promise.all([startNatsCluster(), startGitServer()]);
  const replicas: Replica[] = [];
  let nc: NatsConnection | undefined;
  const stop = async (): Promise<void> => {
    await Promise.all(replicas.map((r) => r.proc?.stop(10_000)));
    await nc?.close().catch(() => undefined);
    await Promise.all([nats.stop(), git.stop()]);
  };
  try {
    const repoUrl = await git.createRepo('fleet');
    const repo = await createWorkRepo(repoUrl);
    await repo.writeFiles(o.repoFiles);
    const firstCommit = await repo.commitAndPush('Initial fleet');
    const agentToken = 'soak-agent-token-' + Math.random().toString(36).slice(2);
    const tokenFile = join(work, 'agent-token');
    await writeFile(tokenFile, agentToken, { mode: 0o600 });
    nc = await connect({ servers: nats.url.split(','), reconnectTimeWait: 250 });
    // Made once here, with 3 copies, so the replicas do not race to create it.
    await ensureEventsStream(nc, 3);
    const jsm = await jetstreamManager(nc);
    for (let i = 0; i < (o.replicas ?? 3); i++) {
      const name = `hub-${String.fromCharCode(97 + i)}`;
      const [grpcPort, httpPort] = [await freePort(), await freePort()];
      const config = join(work, `${name}.yaml`);
      await writeFile(
        config,
        [
          'sources:',
          '  - name: fleet',
          `    url: ${repoUrl}`,
          '    branch: main',
          `    pollInterval: ${o.pollInterval ?? '2s'}`,
          `grpc:\n  listen: 127.0.0.1:${grpcPort}`,
          `http:\n  listen: 127.0.0.1:${httpPort}`,
          'nats:',
          `  url: ${nats.url}`,
          '  replicas: 3',
          'insecure: true',
          `auth:\n  tokenFile: ${tokenFile}`,
          `hubId: ${hubId}`,
          `cacheDir: ${join(work, `cache-${name}`)}`,
          ...(o.historyRetention ? [`history:\n  retention: ${o.historyRetention}`] : []),
          '',
        ].join('\n'),
      );
      replicas.push({
        name,
        grpc: `127.0.0.1:${grpcPort}`,
        httpUrl: `http://127.0.0.1:${httpPort}`,
        config,
        proc: undefined,
        starts: 0,
      });
    }
    const start = async (r: Replica): Promise<void> => {
      r.starts += 1;
      const p = spawnServer(
        r.name,
        process.execPath,
        [...(o.hubNodeArgs ?? []), FLOTILLA_BIN, 'hub', '--config', r.config],
        {
          logFile: join(o.logDir, `${r.name}-${r.starts}.log`),
          env: { ...process.env, FLOTILLA_HUB_REPLICA: r.name },
        },
      );
      r.proc = p;
      await waitFor(
        async () => {
          if (!p.isRunning()) throw new Error(`${r.name} exited; log:\n${p.logTail()}`);
          return (await fetch(`${r.httpUrl}/readyz`)).ok;
        },
        { what: `${r.name} ready (log ${p.logFile})`, timeoutMs: 180_000, intervalMs: 200 },
      );
    };
    await Promise.all(replicas.map(start));
    let leases: KV | undefined;
    return {
      hubId,
      nats,
      nc,
      jsm,
      repo,
      firstCommit,
      agentToken,
      replicas,
      grpcAddresses: replicas.map((r) => r.grpc).join(','),
      start,
      async kill(r) {
        const p = r.proc;
        r.proc = undefined;
        await p?.stop(0);
      },
      async leaseHolder() {
        leases ??= await new Kvm(nc!).open(LEASE_BUCKET);
        const e = await leases.get(hubId).catch(() => null);
        return e?.operation === 'PUT' ? e.json<{ holder: string }>().holder : undefined;
      },
      consumerName: (r) => `${STATUS_CONSUMER}-${hubId}-${r.name}`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Agent events in the events stream (subjects flotilla.events.>), by kind. */
export async function storedAgentEvents(jsm: JetStreamManager): Promise<Record<string, number>> {
  const info = await jsm.streams.info(EVENTS_STREAM, { subjects_filter: 'flotilla.events.>' });
  const out: Record<string, number> = {};
  for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
    const kind = subject.slice(subject.lastIndexOf('.') + 1);
    out[kind] = (out[kind] ?? 0) + n;
  }
  return out;
}

/** Agent events of one kind in the events stream, per cluster (from the stream's subject counts). */
export async function storedPerCluster(
  jsm: JetStreamManager,
  kind: string,
): Promise<Map<string, number>> {
  const info = await jsm.streams.info(EVENTS_STREAM, {
    subjects_filter: `flotilla.events.*.${kind}`,
  });
  const out = new Map<string, number>();
  for (const [subject, n] of Object.entries(info.state.subjects ?? {}))
    out.set(subject.split('.')[2] ?? subject, n);
  return out;
}
