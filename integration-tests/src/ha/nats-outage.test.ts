// NATS down for every hub replica: three replicas, each reaching one node of a three-node
// NATS JetStream cluster, a real agent on a real kube-apiserver given all three hubs. All
// three nodes are stopped: past the partition grace each replica asks the others over HTTP,
// none reaches NATS, so none sends its agents away — they stay ready, say NATS is
// degraded, and the agent keeps its stream and still receives a new commit (over gRPC).
// Once NATS is back, what the agent buffered meanwhile (the apply, a drift and its heal)
// is folded by every replica: nothing lost.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
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
  getJson,
  showsApplied,
  startRealAgent,
  startReplica,
  waitAppliedOnEvery,
  writeReplicas,
} from './replicas.js';
import type { Replica } from './replicas.js';

const skip = await requireEnv(['cluster', 'nats', 'git']);
const HUB_ID = 'outage-hub';
const REAL = 'real';
/** A counter or gauge of a replica's /metrics (0 when absent). */
async function metric(h: Replica, name: string): Promise<number> {
  const text = await (await fetch(`${h.httpUrl}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{\\})? (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

type Deployment = { cluster: string; driftEvents: number };
type Readyz = { ready: boolean; degraded: string[] };

test(
  'nats-down-for-every-replica-keeps-agents-on-their-hubs-and-nothing-is-lost-when-it-returns',
  { skip, timeout: 420_000 },
  async (t) => {
    const work = await mkdtemp(join(tmpdir(), 'flotilla-nats-outage-'));
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
      await repo.writeFiles(appFleetFiles([REAL], 'first'));
      const first = await repo.commitAndPush('first');
      const token = join(work, 'agent-token');
      await writeFile(token, 'nats-outage-token', { mode: 0o600 });
      await ensureEventsStream(nc, 3);
      await nc.close();

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
          'offlineAfter: 60s',
        ],
      });
      await Promise.all(hubs.map(startReplica));
      const [home, ...others] = hubs as [Replica, ...Replica[]];

      agent = await startRealAgent({
        work,
        cluster: REAL,
        hubs: hubs,
        natsUrl: nats.url,
        kubeconfigPath: cluster.kubeconfigPath,
        tokenFile: token,
      });
      await waitAppliedOnEvery(hubs, REAL, first, work);
      const kc = new KubeConfig();
      kc.loadFromFile(cluster.kubeconfigPath);
      const api = kc.makeApiClient(CoreV1Api);
      assert.equal(await metric(home, 'flotilla_stream_sessions'), 1, `agent on ${home.replica}`);

      // Every NATS node goes away.
      const stoppedAt = Date.now();
      await Promise.all(nats.nodes.map((n) => n.stop({ kill: true })));
      for (const h of hubs)
        await waitFor(
          async () =>
            /no other replica reaches it: keeping agent streams/.test(
              await readFile(h.log, 'utf8'),
            ),
          {
            what: `${h.replica} deciding to keep its agents (log in ${h.log})`,
            timeoutMs: 60_000,
            intervalMs: 250,
          },
        );
      t.diagnostic(`every replica kept its agents ${Date.now() - stoppedAt} ms after NATS stopped`);

      // Ready, and saying NATS is degraded and why the agents stay.
      for (const h of hubs) {
        const res = await fetch(`${h.httpUrl}/readyz`);
        const body = (await res.json()) as Readyz;
        assert.equal(res.status, 200, `${h.replica} stays ready: ${JSON.stringify(body)}`);
        assert.ok(body.degraded.includes('nats'), `${h.replica} names nats as degraded`);
        const hub = await getJson<{ degraded: { reason: string; message: string }[] }>(
          h,
          '/api/v1/hub',
        );
        assert.match(
          hub.degraded.find((d) => d.reason === 'nats')?.message ?? '',
          /no other hub replica reaches NATS either: this replica keeps its agents/,
        );
      }

      // The agent still has its stream on the same replica, and receives a new commit.
      const second = await repo.commitAndPush('second', {
        'bundles/app/manifests/config.yaml': appConfigMap('second'),
      });
      const message = async (): Promise<string | undefined> =>
        (await api.readNamespacedConfigMap({ name: 'app-config', namespace: 'app' })).data?.message;
      await waitFor(async () => (await message()) === 'second', {
        what: `the second commit applied in ${REAL} while NATS is down (logs in ${work})`,
        timeoutMs: 60_000,
        intervalMs: 250,
      });
      // Someone edits the object: the agent heals it and keeps the drift to report.
      const cm = await api.readNamespacedConfigMap({ name: 'app-config', namespace: 'app' });
      await api.replaceNamespacedConfigMap({
        name: 'app-config',
        namespace: 'app',
        body: { ...cm, data: { ...cm.data, message: 'edited' } },
      });
      await waitFor(async () => (await message()) === 'second', {
        what: 'the drift healed while NATS is down',
        timeoutMs: 60_000,
        intervalMs: 250,
      });
      assert.equal(await metric(home, 'flotilla_stream_sessions'), 1, 'still on its replica');
      assert.equal(await metric(home, 'flotilla_stream_sessions_total'), 1, 'never reconnected');
      for (const h of others)
        assert.equal(await metric(h, 'flotilla_stream_sessions_total'), 0, `none on ${h.replica}`);

      // NATS back: events flow again, and what the agent buffered reaches every replica.
      await Promise.all(nats.nodes.map((n) => n.start()));
      const restartedAt = Date.now();
      for (const h of hubs)
        await waitFor(() => showsApplied(h, REAL, second), {
          what: `${h.replica} showing ${REAL} at the second commit once NATS is back (logs in ${work})`,
          timeoutMs: 120_000,
          intervalMs: 250,
        });
      const drift = async (h: Replica): Promise<number> =>
        (
          await getJson<{ deployments: Deployment[] }>(h, '/api/v1/deployments?bundle=app')
        ).deployments
          .filter((d) => d.cluster === REAL)
          .reduce((n, d) => n + d.driftEvents, 0);
      for (const h of hubs)
        await waitFor(async () => (await drift(h)) >= 1, {
          what: `${h.replica} counting the drift made while NATS was down`,
          timeoutMs: 60_000,
          intervalMs: 250,
        });
      for (const h of hubs)
        await waitFor(
          async () => {
            const r = (await (await fetch(`${h.httpUrl}/readyz`)).json()) as Readyz;
            return r.ready && !r.degraded.includes('nats');
          },
          { what: `${h.replica} no longer degraded on NATS`, timeoutMs: 30_000 },
        );
      t.diagnostic(`every replica caught up ${Date.now() - restartedAt} ms after NATS restarted`);
      assert.equal(await metric(home, 'flotilla_stream_sessions_total'), 1, 'never sent away');
    } finally {
      await agent?.stop();
      for (const h of hubs) await h.proc?.stop();
      await nc.close().catch(() => undefined);
      await Promise.all([nats.stop(), git.stop(), cluster.stop()]);
    }
  },
);
