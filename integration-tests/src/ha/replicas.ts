// Hub replicas as real processes for the HA scenarios: one hub.yaml per replica (the same
// but for listen ports and, where a test says so, the NATS node it reaches), each named by
// FLOTILLA_HUB_REPLICA as a pod would be, and the lease holder read from NATS KV.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { FlotillaEvent } from '@flotilla/common';
import { createEvent, eventSubject } from '@flotilla/common';
import { LEASE_BUCKET } from '@flotilla/hub';
import { freePort, spawnServer, waitFor } from '@flotilla/test-env';
import type { ManagedProcess } from '@flotilla/test-env';
import { FLOTILLA_BIN } from '../system/fleet.js';

/** One hub replica process. */
export interface Replica {
  replica: string;
  httpUrl: string;
  grpc: string;
  config: string;
  log: string;
  proc: ManagedProcess | undefined;
}

/** Options of writeReplicas(). */
export interface ReplicaOptions {
  work: string;
  hubId: string;
  /** The NATS URL each replica is given (one per replica). */
  natsUrls: string[];
  /** hub.yaml lines every replica shares (sources, auth, …). */
  lines: string[];
}

/**
 * Writes one hub.yaml per replica (hub-a, hub-b, …). Each lists every replica's HTTP
 * address as `peers` (its own too, as a headless Service would), asked before a replica
 * cut from NATS sends its agents away.
 */
export async function writeReplicas(o: ReplicaOptions): Promise<Replica[]> {
  const ports: Array<[number, number]> = [];
  for (let i = 0; i < o.natsUrls.length; i++) ports.push([await freePort(), await freePort()]);
  const peers = `peers: [${ports.map(([, http]) => `"127.0.0.1:${http}"`).join(', ')}]`;
  const out: Replica[] = [];
  for (const [i, natsUrl] of o.natsUrls.entries()) {
    const replica = `hub-${String.fromCharCode(97 + i)}`;
    const [grpcPort, httpPort] = ports[i] as [number, number];
    const config = join(o.work, `${replica}.yaml`);
    await writeFile(
      config,
      [
        ...o.lines,
        `grpc:\n  listen: 127.0.0.1:${grpcPort}`,
        `http:\n  listen: 127.0.0.1:${httpPort}`,
        `nats:\n  url: ${natsUrl}\n  replicas: 3`,
        `hubId: ${o.hubId}`,
        peers,
        `cacheDir: ${join(o.work, `cache-${replica}`)}`,
        '',
      ].join('\n'),
    );
    out.push({
      replica,
      httpUrl: `http://127.0.0.1:${httpPort}`,
      grpc: `127.0.0.1:${grpcPort}`,
      config,
      log: join(o.work, `${replica}.log`),
      proc: undefined,
    });
  }
  return out;
}

/** Starts a replica and waits for /readyz. */
export async function startReplica(h: Replica): Promise<void> {
  const p = spawnServer(h.replica, process.execPath, [FLOTILLA_BIN, 'hub', '--config', h.config], {
    logFile: h.log,
    env: { ...process.env, FLOTILLA_HUB_REPLICA: h.replica },
  });
  h.proc = p;
  await waitFor(
    async () => {
      if (!p.isRunning()) throw new Error(`${h.replica} exited; log:\n${p.logTail()}`);
      return (await fetch(`${h.httpUrl}/readyz`)).ok;
    },
    { what: `${h.replica} ready (log in ${h.log})`, timeoutMs: 60_000, intervalMs: 200 },
  );
}

/** Reads who holds the once-only work lease of `hubId` (undefined: nobody). */
export function leaseHolder(nc: NatsConnection, hubId: string): () => Promise<string | undefined> {
  // Bound once the hubs made the bucket (opening it first would make it with one copy).
  let kv: Promise<KV> | undefined;
  return async () => {
    try {
      // A short timeout: a read waiting on a stream leader moving off a stopped node must
      // not add seconds to a measured takeover.
      kv ??= new Kvm(jetstream(nc, { timeout: 1_000 })).open(LEASE_BUCKET, { bindOnly: true });
      const e = await (await kv).get(hubId);
      return e?.operation === 'PUT' ? e.json<{ holder: string }>().holder : undefined;
    } catch {
      kv = undefined; // not made yet, or its leader is moving: asked again next time
      return undefined;
    }
  };
}

/** GET a JSON body from a replica's HTTP API. */
export async function getJson<T>(h: Replica, path: string): Promise<T> {
  const res = await fetch(`${h.httpUrl}${path}`);
  if (!res.ok) throw new Error(`${h.replica} GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A drift-detected event as an agent publishes it: one ConfigMap field changed by kubectl. */
export function driftEvent(
  cluster: string,
  revision: string,
  object = 'app-config',
): FlotillaEvent {
  return createEvent(cluster, 'drift-detected', {
    bundle: 'app',
    revision,
    object: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'app', name: object },
    deleted: false,
    changes: [{ path: '/data/message', old: 'a', new: 'b' }],
    manager: 'kubectl-edit',
    mode: 'warn',
    heals: 0,
    fight: false,
  });
}

/**
 * Publishes drift events to JetStream, de-duplicated by id, retrying each for up to 30 s as
 * the agent's publisher does while a stream leader moves to another node.
 */
export async function publishDrift(nc: NatsConnection, events: FlotillaEvent[]): Promise<void> {
  const js = jetstream(nc);
  for (const ev of events)
    for (let attempt = 0; ; attempt++) {
      try {
        await js.publish(eventSubject(ev.flotillacluster, 'drift-detected'), JSON.stringify(ev), {
          msgID: ev.id,
          timeout: 2_000,
        });
        break;
      } catch (err) {
        if (attempt >= 120) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
}

/** Options of startRealAgent(). */
export interface RealAgentOptions {
  /** The test's work directory: the agent's log and event buffer go there. */
  work: string;
  cluster: string;
  /** The replicas the agent is given, in the order it tries them. */
  hubs: Replica[];
  natsUrl: string;
  kubeconfigPath: string;
  /** The shared agent token the replicas accept (`auth.tokenFile`). */
  tokenFile: string;
}

/**
 * Starts the real agent against the replicas given (insecure, with the shared token), its
 * event buffer in the work directory, after creating its namespace on the cluster.
 */
export async function startRealAgent(o: RealAgentOptions): Promise<ManagedProcess> {
  const kc = new KubeConfig();
  kc.loadFromFile(o.kubeconfigPath);
  await kc
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name: 'flotilla-system' } } })
    .catch(() => undefined);
  const bufferDir = join(o.work, 'agent-buffer');
  await mkdir(bufferDir, { recursive: true });
  return spawnServer(
    'agent',
    process.execPath,
    [
      FLOTILLA_BIN,
      'agent',
      '--cluster',
      o.cluster,
      '--hub',
      o.hubs.map((h) => h.grpc).join(','),
      '--nats',
      o.natsUrl,
      '--kubeconfig',
      o.kubeconfigPath,
      '--token-file',
      o.tokenFile,
      '--insecure',
      '--event-buffer-dir',
      bufferDir,
    ],
    { logFile: join(o.work, 'agent.log') },
  );
}

/** True when the replica shows the cluster applied at the revision. */
export async function showsApplied(h: Replica, cluster: string, rev: string): Promise<boolean> {
  const { clusters } = await getJson<{
    clusters: Array<{ name: string; appliedRevision?: string }>;
  }>(h, '/api/v1/clusters');
  return clusters.some((r) => r.name === cluster && r.appliedRevision === rev);
}

/** Waits until every replica shows the cluster applied at the revision. */
export async function waitAppliedOnEvery(
  hubs: Replica[],
  cluster: string,
  rev: string,
  logs: string,
): Promise<void> {
  for (const h of hubs)
    await waitFor(() => showsApplied(h, cluster, rev), {
      what: `${h.replica} showing ${cluster} at ${rev.slice(0, 12)} (logs in ${logs})`,
      timeoutMs: 90_000,
      intervalMs: 250,
    });
}

/** The app bundle's ConfigMap, saying `message`: a new message is a new commit's change. */
export function appConfigMap(message: string): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  message: ${message}\n`;
}

/**
 * The fleet of the HA tests: every cluster declared, and one bundle "app" for all of them
 * (a Namespace and the ConfigMap saying `message`).
 */
export function appFleetFiles(clusters: string[], message: string): Record<string, string> {
  return {
    ...Object.fromEntries(
      clusters.map((n) => [
        `clusters/${n}.yaml`,
        `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${n}\n`,
      ]),
    ),
    'bundles/app/bundle.yaml':
      'apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: app\nspec:\n  source:\n    path: manifests\n  namespace: app\n  targets:\n    - clusterSelector: {}\n',
    'bundles/app/manifests/namespace.yaml':
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n',
    'bundles/app/manifests/config.yaml': appConfigMap(message),
  };
}
