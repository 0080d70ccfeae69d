// A hub PROCESS killed with SIGKILL in the middle of an event stream loses nothing: the
// hub acks an event only after the status holding it is saved in JetStream KV, so the
// events it folded but had not saved are redelivered to the restarted hub. Real parts:
// nats-server, a smart-HTTP Git server with a fleet repo, and `flotilla hub` processes.
// The proof is the per-deployment drift-event count: every drift-detected event adds
// one exactly once, so a count below the number published means an event was lost.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AppliedData, EventKind, FlotillaEvent } from '@flotilla/common';
import { createEvent, eventSubject } from '@flotilla/common';
import { ensureEventsStream } from '@flotilla/hub';
import {
  createWorkRepo,
  freePort,
  requireEnv,
  spawnServer,
  startGitServer,
  startNats,
  waitFor,
} from '@flotilla/test-env';
import type { ManagedProcess } from '@flotilla/test-env';

const skip = await requireEnv(['nats', 'git']);
const FLOTILLA_BIN = join(
  dirname(fileURLToPath(import.meta.resolve('@flotilla/hub'))),
  'cli',
  'main.js',
);
const REV = 'deadbeef0123456789abcdef0123456789abcdef';
const CLUSTERS = Array.from({ length: 100 }, (_, i) => `edge-${String(i).padStart(3, '0')}`);
/** Drift-detected events per cluster, one per round. */
const ROUNDS = 20;

function applied(cluster: string, time: Date): FlotillaEvent<AppliedData> {
  const data: AppliedData = {
    revision: REV,
    digest: `sha256:${cluster}`,
    generation: 1,
    result: 'applied',
    durationMs: 50,
    bundles: [
      {
        name: 'app',
        digest: 'sha256:app',
        created: 1,
        configured: 0,
        unchanged: 0,
        deleted: 0,
        failed: 0,
        failures: [],
      },
    ],
  };
  return createEvent(cluster, 'applied', data, time);
}

// The agent's DriftDetectedData: one object, changed fields, the manager that changed them.
function drift(cluster: string, time: Date): FlotillaEvent {
  const data = {
    bundle: 'app',
    revision: REV,
    object: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'apps', name: 'web' },
    deleted: false,
    changes: [{ path: '/spec/replicas', old: 1, new: 2 }],
    manager: 'kubectl-edit',
    mode: 'enforce',
    heals: 1,
    fight: false,
  };
  return createEvent(cluster, 'drift-detected', data, time);
}

async function publishRound(
  nc: NatsConnection,
  events: FlotillaEvent[],
  kind: EventKind,
): Promise<void> {
  const js = jetstream(nc);
  await Promise.all(
    events.map((ev) =>
      js.publish(eventSubject(ev.flotillacluster, kind), JSON.stringify(ev), { msgID: ev.id }),
    ),
  );
}

type Deployment = { cluster: string; driftEvents: number };

test('hub-killed-mid-stream-loses-no-event', { skip }, async () => {
  const nats = await startNats();
  const git = await startGitServer();
  const work = await mkdtemp(join(tmpdir(), 'flotilla-hub-crash-'));
  const nc = await connect({ servers: nats.url });
  let hub: ManagedProcess | undefined;
  try {
    const repoUrl = await git.createRepo('fleet');
    const repo = await createWorkRepo(repoUrl);
    // A declared cluster without bundles has no deployments: the event clusters stay undeclared.
    await repo.writeFiles({
      'clusters/lab.yaml':
        'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: lab\n',
    });
    await repo.commitAndPush('one cluster');
    await repo.dispose();
    const httpPort = await freePort();
    const config = join(work, 'hub.yaml');
    await writeFile(
      config,
      [
        'sources:',
        '  - name: fleet',
        `    url: ${repoUrl}`,
        'grpc:',
        `  listen: 127.0.0.1:${await freePort()}`,
        'http:',
        `  listen: 127.0.0.1:${httpPort}`,
        'nats:',
        `  url: ${nats.url}`,
        'insecure: true',
        'hubId: crash',
        `cacheDir: ${join(work, 'cache')}`,
        '',
      ].join('\n'),
    );
    const startHub = async (n: number): Promise<ManagedProcess> => {
      const p = spawnServer(
        `hub-${n}`,
        process.execPath,
        [FLOTILLA_BIN, 'hub', '--config', config],
        { logFile: join(work, `hub-${n}.log`) },
      );
      await waitFor(
        async () => {
          if (!p.isRunning()) throw new Error(`hub exited; log:\n${p.logTail()}`);
          return (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok;
        },
        { what: `hub ${n} answering`, timeoutMs: 30_000, intervalMs: 100 },
      );
      return p;
    };
    const deployments = async (): Promise<Deployment[]> => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/deployments?bundle=app`);
      return ((await res.json()) as { deployments: Deployment[] }).deployments;
    };
    const folded = async (): Promise<number> =>
      (await deployments()).reduce((n, d) => n + d.driftEvents, 0);

    await ensureEventsStream(nc);
    hub = await startHub(1);
    const t0 = Date.now() - 3_600_000;
    const at = (round: number, i: number) => new Date(t0 + round * 1_000 + i);
    await publishRound(
      nc,
      CLUSTERS.map((c, i) => applied(c, at(0, i))),
      'applied',
    );
    const half = ROUNDS / 2;
    for (let r = 1; r <= half; r++)
      await publishRound(
        nc,
        CLUSTERS.map((c, i) => drift(c, at(r, i))),
        'drift-detected',
      );
    // Kill while the hub is folding: what it folded in the last moments is not saved yet.
    await waitFor(async () => (await folded()) >= (half / 2) * CLUSTERS.length, {
      what: 'the first hub folding drift events',
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    const rest = (async () => {
      for (let r = half + 1; r <= ROUNDS; r++)
        await publishRound(
          nc,
          CLUSTERS.map((c, i) => drift(c, at(r, i))),
          'drift-detected',
        );
    })();
    process.kill(hub.pid, 'SIGKILL');
    assert.equal(await hub.exited, 'SIGKILL');
    await rest;

    hub = await startHub(2);
    const total = CLUSTERS.length * ROUNDS;
    // A lost event never arrives, so give the restarted hub time, then compare per cluster.
    await waitFor(async () => (await folded()) >= total, {
      what: `${total} drift events folded after the restart`,
      timeoutMs: 30_000,
      intervalMs: 200,
    }).catch(() => undefined);
    const short = (await deployments())
      .filter((d) => d.driftEvents !== ROUNDS)
      .map((d) => `${d.cluster}: ${d.driftEvents}`);
    assert.equal(
      (await deployments()).length,
      CLUSTERS.length,
      `a deployment per cluster; hub log:\n${hub.logTail(15)}`,
    );
    assert.deepEqual(short, [], `every cluster has all ${ROUNDS} drift events folded once`);
  } finally {
    await hub?.stop(5_000);
    await nc.close();
    await git.stop();
    await nats.stop();
    await rm(work, { recursive: true, force: true });
  }
});
