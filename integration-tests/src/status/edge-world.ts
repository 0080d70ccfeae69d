// The world of the edge-bounds tests: a real nats-server in operator mode, the real hub
// app (fake source and renderer, our interfaces) with its own NATS credentials, and
// agents publishing with their own cluster's user JWT on their permitted subjects, as
// an attacker holding one cluster's valid credentials would.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { PubAck } from '@nats-io/jetstream';
import { connect, credsAuthenticator, jwtAuthenticator } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { createUser } from '@nats-io/nkeys';
import type { AppliedData, EventKind, FlotillaEvent } from '@flotilla/common';
import { EVENTS_STREAM, createEvent, eventSubject, silentLogger } from '@flotilla/common';
import {
  HubApp,
  STATUS_CONSUMER,
  agentInboxPrefix,
  agentUserJwt,
  compileHubConfig,
  createNatsAuthSetup,
} from '@flotilla/hub';
import { startNats, waitFor } from '@flotilla/test-env';
import type { TestNats } from '@flotilla/test-env';
import { REV, desired, oneBundleRenderer } from './one-commit-fleet.js';
import { OneCommit } from './one-commit-fleet.js';

/** A cluster that behaves. */
export const GOOD = 'good-1';
/** The cluster whose credentials the attacker holds. */
export const ROGUE = 'rogue';
const HUB_ID = 'edge';

/** What a test works with. */
export interface EdgeWorld {
  /** The hub's own connection (all subjects), for JetStream state. */
  hubNc: NatsConnection;
  newHub(): HubApp;
  /** A connection with cluster's own user JWT (publishes only under its subjects). */
  agent(cluster: string): Promise<NatsConnection>;
  /** Where the hub's durable consumer has acked up to (stream sequence). */
  ackFloor(): Promise<number>;
  /** The NATS server (its URL and port, for clients that speak the protocol themselves). */
  nats: TestNats;
  /** A user JWT and seed of cluster, as the hub issues them to its agent. */
  agentCredentials(cluster: string): { jwt: string; seed: Uint8Array };
  stop(): Promise<void>;
}

/** Starts NATS (operator mode) and prepares the hub's config. */
export async function edgeWorld(): Promise<EdgeWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-edge-it-'));
  const setup = createNatsAuthSetup({ resolverDir: join(dir, 'nats-jwt') });
  const nats: TestNats = await startNats({ config: setup.serverConfig });
  const credsFile = join(dir, 'hub.creds');
  await writeFile(credsFile, setup.hubCreds);
  // The system user lets the hub hear of agents' connections NATS closed over a limit.
  const secret = async (name: string, content: string): Promise<string> => {
    await writeFile(join(dir, name), content, { mode: 0o600 });
    return join(dir, name);
  };
  const natsAuth = {
    credsFile,
    accountSeedFile: await secret('account.seed', setup.accountSeed),
    systemCredsFile: await secret('system.creds', setup.systemCreds),
    operatorSigningKeyFile: await secret('operator.seed', setup.operatorSigningSeed),
  };
  const hubNc = await connect({
    servers: nats.url,
    authenticator: credsAuthenticator(new TextEncoder().encode(setup.hubCreds)),
  });
  const cfg = compileHubConfig(
    {
      sources: [{ name: 'fleet', url: 'https://git.invalid/fleet.git' }],
      grpc: { listen: '127.0.0.1:0' },
      http: { listen: '127.0.0.1:0' },
      nats: { url: nats.url, ...natsAuth },
      insecure: true,
      hubId: HUB_ID,
    },
    join(dir, 'hub.yaml'),
    { defaultCacheDir: join(dir, 'cache') },
  );
  const renderer = oneBundleRenderer(new Map([GOOD, ROGUE].map((c) => [c, { env: 'prod' }])));
  const agents: NatsConnection[] = [];
  const agentCredentials = (cluster: string) => {
    const user = createUser();
    return {
      jwt: agentUserJwt(setup.accountSeed, cluster, user.getPublicKey()),
      seed: user.getSeed(),
    };
  };
  return {
    hubNc,
    nats,
    agentCredentials,
    newHub: () =>
      new HubApp(cfg, {
        createSource: async () => new OneCommit(),
        renderer,
        logger: silentLogger(),
      }),
    async agent(cluster) {
      const { jwt, seed } = agentCredentials(cluster);
      const nc = await connect({
        servers: nats.url,
        authenticator: jwtAuthenticator(jwt, seed),
        inboxPrefix: agentInboxPrefix(cluster),
      });
      agents.push(nc);
      return nc;
    },
    async ackFloor() {
      const jsm = await jetstreamManager(hubNc);
      const info = await jsm.consumers.info(EVENTS_STREAM, `${STATUS_CONSUMER}-${HUB_ID}`);
      return info.ack_floor.stream_seq;
    },
    async stop() {
      await Promise.all(agents.map((nc) => nc.close()));
      await hubNc.close();
      await nats.stop({ kill: true, removeStore: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Publishes an event as its cluster's agent; resolves with the ack, or the refusal. */
export async function publishAs(
  nc: NatsConnection,
  kind: EventKind,
  event: FlotillaEvent,
): Promise<PubAck | Error> {
  const subject = eventSubject(event.flotillacluster, kind);
  return jetstream(nc)
    .publish(subject, JSON.stringify(event), { msgID: event.id, timeout: 10_000 })
    .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
}

/** An applied event of GOOD at REV with the given desired-state digest. */
export function goodApplied(digest = desired(GOOD).digest): FlotillaEvent<AppliedData> {
  const data: AppliedData = {
    revision: REV,
    digest,
    generation: 1,
    result: 'applied',
    durationMs: 10,
    bundles: [
      {
        name: 'app',
        digest: desired(GOOD).bundles[0]?.digest ?? '',
        created: 1,
        configured: 0,
        unchanged: 0,
        deleted: 0,
        failed: 0,
        failures: [],
      },
    ],
  };
  return createEvent(GOOD, 'applied', data);
}

/** A drift-detected event of cluster about object `name` of bundle app, with `paths` changed fields. */
export function driftOf(cluster: string, name: string, paths: string[]): FlotillaEvent {
  return createEvent(cluster, 'drift-detected', {
    bundle: 'app',
    revision: REV,
    object: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'apps', name },
    deleted: false,
    changes: paths.map((path) => ({ path, old: 'a', new: 'b' })),
    manager: 'kubectl-edit',
    mode: 'warn',
    heals: 0,
    fight: false,
  });
}

/** GET a JSON path of the hub's HTTP API. */
export async function api<T>(hub: HubApp, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}${path}`);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Waits until the hub's durable consumer acked everything up to seq (persist, then ack). */
export async function untilAcked(w: EdgeWorld, seq: number, what: string): Promise<void> {
  await waitFor(async () => (await w.ackFloor()) >= seq, { what, timeoutMs: 20_000 });
}

/** Waits until the hub has rendered (both clusters listed). */
export async function untilServing(hub: HubApp): Promise<void> {
  await waitFor(
    async () =>
      (await api<{ clusters: { name: string }[] }>(hub, '/api/v1/clusters')).clusters.length === 2,
    { what: 'the hub listing both clusters', timeoutMs: 15_000 },
  );
}
