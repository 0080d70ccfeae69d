// One hub replica cut from NATS: three hub replicas, each reaching ONE node of a
// three-node NATS JetStream cluster, a real agent on a real kube-apiserver given all three
// hubs, first connected to the lease holder. The holder's NATS node is stopped: another
// replica takes the lease within 5 s; the cut replica turns unready, closes its agents'
// streams and refuses new ones, so the agent moves to a replica that reaches NATS and
// converges there on the next commit; every event published meanwhile is folded. Once its
// node is back, the cut replica is ready again.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { connect } from '@nats-io/transport-node';
import { ensureEventsStream } from '@flotilla/hub';
import {
  createWorkRepo,
  requireEnv,
  startCluster,
  startGitServer,
  startNatsCluster,
  waitFor,
} from '@flotilla/test-env';
import type { ManagedProcess } from '@flotilla/test-env';
import {
  appConfigMap,
  appFleetFiles,
  driftEvent,
  getJson,
  leaseHolder,
  publishDrift,
  showsApplied,
  startRealAgent,
  startReplica,
  waitAppliedOnEvery,
  writeReplicas,
} from './replicas.js';
import type { Replica } from './replicas.js';

const skip = await requireEnv(['cluster', 'nats', 'git']);
const HUB_ID = 'partition-hub';
const REAL = 'real';
const SIMULATED = Array.from({ length: 10 }, (_, i) => `sim-${i}`);
/** Agent sessions a replica opened since it started (its own, not the fleet's). */
async function sessionsOpened(h: Replica): Promise<number> {
  const text = await (await fetch(`${h.httpUrl}/metrics`)).text();
  const m = /^flotilla_stream_sessions_total(?:\{\})? (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

type Deployment = { cluster: string; driftEvents: number };

test(
  'a-hub-replica-cut-from-nats-stops-its-once-only-work-and-its-agents-move-to-the-others',
  { skip, timeout: 360_000 },
  async (t) => {
    const work = await mkdtemp(join(tmpdir(), 'flotilla-hub-partition-'));
    // Nodes do not advertise each other to clients: a hub given one node stays on it.
    const [nats, git, cluster] = await Promise.all([
      startNatsCluster({ advertise: false }),
      startGitServer(),
      startCluster({ name: REAL, logDir: work }),
    ]);
    const nc = await connect({ servers: nats.url.split(','), reconnectTimeWait: 250 });
    let hubs: Replica[] = [];
    let agent: ManagedProcess | undefined;
    try {
      const repoUrl = await git.createRepo('fleet');
      const repo = await createWorkRepo(repoUrl);
      await repo.writeFiles(appFleetFiles([REAL, ...SIMULATED], 'first'));
      const first = await repo.commitAndPush('first');
      const token = join(work, 'agent-token');
      await writeFile(token, 'hub-partition-token', { mode: 0o600 });
      await ensureEventsStream(nc, 3);

      // Each replica reaches one NATS node only: stopping that node cuts it off.
      hubs = await writeReplicas({
        work,
        hubId: HUB_ID,
        natsUrls: nats.nodes.map((n) => n.url),
        lines: [
          'sources:',
          '  - name: fleet',
          `    url: ${repoUrl}`,
          '    pollInterval: 1s',
          'insecure: true',
          `auth:\n  tokenFile: ${token}`,
          'heartbeatInterval: 2s',
          'offlineAfter: 10s',
        ],
      });
      await Promise.all(hubs.map(startReplica));
      const holderOf = leaseHolder(nc, HUB_ID);
      const holder = await waitFor(holderOf, { what: 'a lease holder', timeoutMs: 20_000 });
      const cut = hubs.find((h) => h.replica === holder)!;
      const node = nats.nodes[hubs.indexOf(cut)]!;
      const others = hubs.filter((h) => h !== cut);

      // The agent knows every hub and starts on the lease holder.
      agent = await startRealAgent({
        work,
        cluster: REAL,
        hubs: [cut, ...others],
        natsUrl: nats.url,
        kubeconfigPath: cluster.kubeconfigPath,
        tokenFile: token,
      });
      await waitAppliedOnEvery(hubs, REAL, first, work);
      assert.equal(await sessionsOpened(cut), 1, `the agent is on ${cut.replica}`);
      const before = await Promise.all(others.map(sessionsOpened));
      assert.deepEqual(before, [0, 0]);

      // The lease holder's NATS node goes away.
      const stoppedAt = Date.now();
      await node.stop({ kill: true });
      const next = await waitFor(
        async () => {
          const h = await holderOf();
          return h && h !== holder ? h : undefined;
        },
        // The product's bound is 5 s (lease TTL 3 s + polling); a test does not fail on
        // wall-clock time on a loaded machine, so the time is reported, and the soak
        // program and this diagnostic give the figures (2-4 s on a quiet machine).
        { what: 'another replica holding the lease', timeoutMs: 30_000, intervalMs: 50 },
      );
      const takeoverMs = Date.now() - stoppedAt;
      t.diagnostic(`${next} took the lease ${takeoverMs} ms after ${holder}'s NATS node stopped`);
      await waitFor(
        async () => /lease lost: once-only work stopped/.test(await readFile(cut.log, 'utf8')),
        { what: `${holder} saying it stopped its once-only work`, timeoutMs: 20_000 },
      );

      // Events keep coming while the replica is cut off.
      await publishDrift(
        nc,
        SIMULATED.map((c) => driftEvent(c, first)),
      );

      // The cut replica turns unready and sends its agent away; the agent moves on.
      const refused = await waitFor(
        async () => {
          const res = await fetch(`${cut.httpUrl}/readyz`);
          const body = await res.text();
          return res.status === 503 && /cut from NATS/.test(body) ? body : undefined;
        },
        { what: `${cut.replica} unready, cut from NATS`, timeoutMs: 30_000, intervalMs: 250 },
      );
      t.diagnostic(`${cut.replica} /readyz: ${refused.slice(0, 200)}`);
      await waitFor(
        async () => (await Promise.all(others.map(sessionsOpened))).some((n) => n > 0),
        { what: `the agent connected to another replica (logs in ${work})`, timeoutMs: 30_000 },
      );
      t.diagnostic(`agent moved ${Date.now() - stoppedAt} ms after the NATS node stopped`);

      // A new commit reaches the agent through the replica it moved to.
      const second = await repo.commitAndPush('second', {
        'bundles/app/manifests/config.yaml': appConfigMap('second'),
      });
      for (const h of others)
        await waitFor(() => showsApplied(h, REAL, second), {
          what: `${h.replica} showing ${REAL} at the second commit`,
          timeoutMs: 60_000,
          intervalMs: 250,
        });
      // No event lost: every drift published during the cut is folded by the others.
      const folded = async (h: Replica): Promise<number> =>
        (
          await getJson<{ deployments: Deployment[] }>(h, '/api/v1/deployments?bundle=app')
        ).deployments
          .filter((d) => d.cluster !== REAL)
          .reduce((n, d) => n + d.driftEvents, 0);
      for (const h of others)
        await waitFor(async () => (await folded(h)) === SIMULATED.length, {
          what: `${h.replica} folding all ${SIMULATED.length} drift events`,
          timeoutMs: 20_000,
        });

      // Its node back, the cut replica is ready again.
      await node.start();
      await waitFor(async () => (await fetch(`${cut.httpUrl}/readyz`)).ok, {
        what: `${cut.replica} ready again once its NATS node is back`,
        timeoutMs: 30_000,
        intervalMs: 250,
      });
    } finally {
      await agent?.stop();
      for (const h of hubs) await h.proc?.stop();
      await nc.close().catch(() => undefined);
      await Promise.all([nats.stop(), git.stop(), cluster.stop()]);
    }
  },
);
