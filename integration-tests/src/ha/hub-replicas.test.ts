// Three hub replicas (one hub.yaml, one hubId, a replicaId each) on a three-node NATS
// JetStream cluster, as real processes: a real agent on a real kube-apiserver, a smart-HTTP
// Git server, a webhook receiver, and events published to JetStream as agents publish them
// for twenty more clusters, and thirty simulated agents (the fleet simulator: the real
// protocol, churn and drift) given all three hubs. The replica holding the once-only work
// lease is SIGKILLed right after a push: another takes the lease within 5 s, every replica
// and every simulated cluster converges, no event is lost and no alert is sent twice. Then
// one NATS node is killed: nothing is lost.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { EVENTS_STREAM } from '@flotilla/common';
import { ensureEventsStream, LEASE_BUCKET } from '@flotilla/hub';
import {
  createWorkRepo,
  freePort,
  requireEnv,
  spawnServer,
  startCluster,
  startGitServer,
  startNatsCluster,
  waitFor,
} from '@flotilla/test-env';
import type { ManagedProcess } from '@flotilla/test-env';
import { simClusterName } from '../sim/config.js';
import { appConfigMap, appFleetFiles, driftEvent, publishDrift } from './replicas.js';
import { Simulator } from '../sim/simulator.js';
import { FLOTILLA_BIN } from '../system/fleet.js';

const skip = await requireEnv(['cluster', 'nats', 'git']);
const HUB_ID = 'fleet-hub';
const REAL = 'real';
const SIMULATED = Array.from({ length: 20 }, (_, i) => `sim-${String(i).padStart(2, '0')}`);
const PUBLISHED_FOR = new Set(SIMULATED);
/** Simulated agents (the fleet simulator) beside the real one: simagent-00000 … */
const SIM_PREFIX = 'simagent';
const SIM_AGENTS = Array.from({ length: 30 }, (_, i) => simClusterName(i, SIM_PREFIX));
interface Hub {
  replica: string;
  httpUrl: string;
  grpc: string;
  config: string;
  proc: ManagedProcess | undefined;
}

type Row = { name: string; appliedRevision?: string; state: string };
type Deployment = { cluster: string; driftEvents: number };

/** Agent events of the simulated agents stored in the events stream (all kinds). */
async function storedSimEvents(nc: NatsConnection): Promise<number> {
  const info = await (
    await jetstreamManager(nc)
  ).streams.info(EVENTS_STREAM, { subjects_filter: 'flotilla.events.>' });
  return Object.entries(info.state.subjects ?? {})
    .filter(([subject]) => subject.split('.')[2]?.startsWith(`${SIM_PREFIX}-`))
    .reduce((n, [, count]) => n + count, 0);
}

test(
  'three-hub-replicas-survive-the-lease-holder-killed-mid-fan-out-and-a-nats-node-lost',
  { skip, timeout: 420_000 },
  async (t) => {
    const work = await mkdtemp(join(tmpdir(), 'flotilla-hub-replicas-'));
    const [nats, git, cluster] = await Promise.all([
      startNatsCluster(),
      startGitServer(),
      startCluster({ name: REAL, logDir: work }),
    ]);
    // Every alert the webhook receives, as the json format posts it.
    const alerts: { kind: string; cluster: string; objects?: { name: string }[] }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        alerts.push(JSON.parse(body) as (typeof alerts)[number]);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const nc = await connect({ servers: nats.url.split(','), reconnectTimeWait: 250 });
    const hubs: Hub[] = [];
    let agent: ManagedProcess | undefined;
    let sim: Simulator | undefined;
    try {
      const repoUrl = await git.createRepo('fleet');
      const repo = await createWorkRepo(repoUrl);
      await repo.writeFiles(appFleetFiles([REAL, ...SIMULATED, ...SIM_AGENTS], 'first'));
      const first = await repo.commitAndPush('first');
      const token = join(work, 'agent-token');
      await writeFile(token, 'hub-replicas-token', { mode: 0o600 });
      await ensureEventsStream(nc, 3);

      for (const replica of ['hub-a', 'hub-b', 'hub-c']) {
        const [grpcPort, httpPort] = [await freePort(), await freePort()];
        const config = join(work, `${replica}.yaml`);
        // One hub.yaml but for the listen ports (three processes on one machine).
        await writeFile(
          config,
          [
            'sources:',
            '  - name: fleet',
            `    url: ${repoUrl}`,
            '    pollInterval: 1s',
            `grpc:\n  listen: 127.0.0.1:${grpcPort}`,
            `http:\n  listen: 127.0.0.1:${httpPort}`,
            'nats:',
            `  url: ${nats.url}`,
            '  replicas: 3',
            'insecure: true',
            `auth:\n  tokenFile: ${token}`,
            `hubId: ${HUB_ID}`,
            'notify:',
            '  webhooks:',
            `    - { name: ops, url: "${hookUrl}", format: json, events: [drift] }`,
            `cacheDir: ${join(work, `cache-${replica}`)}`,
            'heartbeatInterval: 2s',
            'offlineAfter: 10s',
            '',
          ].join('\n'),
        );
        hubs.push({
          replica,
          httpUrl: `http://127.0.0.1:${httpPort}`,
          grpc: `127.0.0.1:${grpcPort}`,
          config,
          proc: undefined,
        });
      }
      const start = async (h: Hub): Promise<void> => {
        const p = spawnServer(
          h.replica,
          process.execPath,
          [FLOTILLA_BIN, 'hub', '--config', h.config],
          {
            logFile: join(work, `${h.replica}.log`),
            env: { ...process.env, FLOTILLA_HUB_REPLICA: h.replica },
          },
        );
        h.proc = p;
        await waitFor(
          async () => {
            if (!p.isRunning()) throw new Error(`${h.replica} exited; log:\n${p.logTail()}`);
            return (await fetch(`${h.httpUrl}/readyz`)).ok;
          },
          { what: `${h.replica} ready (log in ${work})`, timeoutMs: 60_000, intervalMs: 200 },
        );
      };
      await Promise.all(hubs.map(start));

      // One consumer per replica, and three copies of what the hubs store.
      const jsm = await jetstreamManager(nc);
      // Readiness does not wait for the status consumer (it is made in the background, with
      // retries): wait for the three durables rather than list them once.
      const missingDurables = async (): Promise<string[]> => {
        const durables: string[] = [];
        for await (const c of jsm.consumers.list(EVENTS_STREAM)) durables.push(c.name);
        return hubs
          .map((h) => `flotilla-hub-status-${HUB_ID}-${h.replica}`)
          .filter((d) => !durables.includes(d));
      };
      await waitFor(async () => (await missingDurables()).length === 0, {
        what: 'one durable status consumer per replica',
        timeoutMs: 30_000,
      });
      assert.deepEqual(await missingDurables(), []);
      for (const stream of [EVENTS_STREAM, `KV_${LEASE_BUCKET}`, 'KV_flotilla-status'])
        assert.equal((await jsm.streams.info(stream)).config.num_replicas, 3, stream);
      const leases = await new Kvm(nc).open(LEASE_BUCKET);
      const holder = async (): Promise<string | undefined> => {
        const e = await leases.get(HUB_ID).catch(() => null);
        return e?.operation === 'PUT' ? e.json<{ holder: string }>().holder : undefined;
      };
      const leader = await waitFor(holder, { what: 'a lease holder', timeoutMs: 20_000 });
      const followers = hubs.filter((h) => h.replica !== leader);
      const leaderHub = hubs.find((h) => h.replica === leader);
      assert.ok(leaderHub && followers.length === 2);

      // The real agent dials a follower (agents failing over between hubs is not built yet).
      const kc = new KubeConfig();
      kc.loadFromFile(cluster.kubeconfigPath);
      await kc
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: 'flotilla-system' } } })
        .catch(() => undefined);
      const bufferDir = join(work, 'agent-buffer');
      await mkdir(bufferDir, { recursive: true });
      agent = spawnServer(
        'agent',
        process.execPath,
        [
          FLOTILLA_BIN,
          'agent',
          '--cluster',
          REAL,
          '--hub',
          followers[0]!.grpc,
          '--nats',
          nats.url,
          '--kubeconfig',
          cluster.kubeconfigPath,
          '--token-file',
          token,
          '--insecure',
          '--event-buffer-dir',
          bufferDir,
        ],
        { logFile: join(work, 'agent.log') },
      );

      const rows = async (h: Hub): Promise<Row[]> =>
        ((await (await fetch(`${h.httpUrl}/api/v1/clusters`)).json()) as { clusters: Row[] })
          .clusters;
      const applied = async (h: Hub, rev: string): Promise<boolean> =>
        (await rows(h)).some((r) => r.name === REAL && r.appliedRevision === rev);
      const driftIn = async (h: Hub, clusters: (c: string) => boolean): Promise<number> =>
        (
          (await (await fetch(`${h.httpUrl}/api/v1/deployments?bundle=app`)).json()) as {
            deployments: Deployment[];
          }
        ).deployments
          .filter((d) => clusters(d.cluster))
          .reduce((n, d) => n + d.driftEvents, 0);
      const folded = (h: Hub): Promise<number> => driftIn(h, (c) => PUBLISHED_FOR.has(c));
      const simAt = async (h: Hub, rev: string): Promise<boolean> =>
        (await rows(h)).filter(
          (r) => r.name.startsWith(`${SIM_PREFIX}-`) && r.appliedRevision === rev,
        ).length === SIM_AGENTS.length;
      // Alerts of the drift published above (the simulated agents' drift is alerted too).
      const ours = (): typeof alerts => alerts.filter((a) => PUBLISHED_FOR.has(a.cluster));
      // Simulated agents get every hub, each starting at a different one: a third of them
      // are on the lease holder when it is killed.
      sim = await Simulator.start({
        hub: hubs.map((h) => h.grpc).join(','),
        nats: nats.url,
        agents: SIM_AGENTS.length,
        prefix: SIM_PREFIX,
        auth: { kind: 'token', token: 'hub-replicas-token' },
        driftPerMinute: 2,
        churnPerMinute: 1,
        logDir: join(work, 'sim'),
      });
      for (const h of hubs)
        await waitFor(() => applied(h, first), {
          what: `${h.replica} showing ${REAL} at the first commit (logs in ${work})`,
          timeoutMs: 90_000,
          intervalMs: 250,
        });
      await sim.allAt(first, 90_000);

      // Round 1: drift in eight simulated clusters, folded and alerted before the kill.
      await publishDrift(
        nc,
        SIMULATED.slice(0, 8).map((c) => driftEvent(c, first, 'round-1')),
      );
      const publishedAt = Date.now();
      const seenMs = await Promise.all(
        hubs.map(async (h) => {
          await waitFor(async () => (await folded(h)) === 8, {
            what: `${h.replica} folding the first 8 drift events`,
            timeoutMs: 20_000,
            intervalMs: 20,
          });
          return Date.now() - publishedAt;
        }),
      );
      t.diagnostic(`status on every replica ${seenMs.join(' / ')} ms after the events were stored`);
      await waitFor(async () => ours().length >= 8, {
        what: 'the first eight drift alerts delivered',
        timeoutMs: 20_000,
      });

      // A push, and the lease holder SIGKILLed while the fleet takes it in.
      const second = await repo.commitAndPush('second', {
        'bundles/app/manifests/config.yaml': appConfigMap('second'),
      });
      const roundTwo = publishDrift(
        nc,
        SIMULATED.slice(8, 16).map((c) => driftEvent(c, first, 'round-2')),
      );
      const killedAt = Date.now();
      process.kill(leaderHub.proc!.pid, 'SIGKILL');
      assert.equal(await leaderHub.proc!.exited, 'SIGKILL');
      await roundTwo;
      const next = await waitFor(
        async () => {
          const h = await holder();
          return h && h !== leader ? h : undefined;
        },
        // The product's bound is 5 s (lease TTL 3 s + polling); a test does not fail on
        // wall-clock time on a loaded machine, so the time is reported (the soak program
        // measures it: 2.1-3.5 s over 7 kills).
        { what: 'another replica holding the lease', timeoutMs: 30_000, intervalMs: 50 },
      );
      const takeoverMs = Date.now() - killedAt;
      t.diagnostic(`${next} took the lease ${takeoverMs} ms after ${leader} was killed`);

      for (const h of followers)
        await waitFor(() => applied(h, second), {
          what: `${h.replica} showing ${REAL} at the second commit`,
          timeoutMs: 60_000,
          intervalMs: 250,
        });
      await sim.allAt(second, 90_000);
      for (const h of followers)
        await waitFor(() => simAt(h, second), {
          what: `${h.replica} showing every simulated cluster at the second commit`,
          timeoutMs: 60_000,
          intervalMs: 250,
        });
      for (const h of followers)
        await waitFor(async () => (await folded(h)) === 16, {
          what: `${h.replica} folding all 16 drift events`,
          timeoutMs: 20_000,
        });
      await waitFor(async () => ours().length >= 16, {
        what: 'all 16 drift alerts delivered',
        timeoutMs: 20_000,
      });

      // One NATS node lost: events keep coming in and nothing is lost.
      const node = nats.nodes[2]!;
      await node.stop({ kill: true });
      await publishDrift(
        nc,
        SIMULATED.slice(16).map((c) => driftEvent(c, first, 'round-3')),
      );
      const third = await repo.commitAndPush('third', {
        'bundles/app/manifests/config.yaml': appConfigMap('third'),
      });
      for (const h of followers) {
        await waitFor(async () => (await folded(h)) === 20, {
          what: `${h.replica} folding all 20 drift events with a NATS node down`,
          timeoutMs: 30_000,
        });
        await waitFor(() => applied(h, third), {
          what: `${h.replica} showing ${REAL} at the third commit with a NATS node down`,
          timeoutMs: 60_000,
          intervalMs: 250,
        });
      }
      await sim.allAt(third, 90_000);
      for (const h of followers)
        await waitFor(() => simAt(h, third), {
          what: `${h.replica} showing every simulated cluster at the third commit`,
          timeoutMs: 60_000,
          intervalMs: 250,
        });
      // No simulated agent's event lost: what they published is stored, and every drift
      // detection is counted in the status of every replica still running.
      const final = await sim.stop();
      sim = undefined;
      assert.ok(final, 'the simulator reported its counters');
      assert.equal(final.pending, 0, 'simulated events still waiting to be published');
      assert.equal(final.dropped, 0, 'simulated events dropped');
      assert.equal(await storedSimEvents(nc), final.published, 'simulated events stored');
      const simDrift = final.publishedByKind['drift-detected'] ?? 0;
      assert.ok(simDrift > 0, 'the simulated agents detected drift');
      t.diagnostic(
        `simulated agents: ${final.published} events published and stored, ${simDrift} drift detections`,
      );
      for (const h of followers)
        await waitFor(
          async () => (await driftIn(h, (c) => c.startsWith(`${SIM_PREFIX}-`))) === simDrift,
          {
            what: `${h.replica} counting all ${simDrift} simulated drift detections`,
            timeoutMs: 30_000,
          },
        );
      await waitFor(async () => ours().length >= 20, {
        what: 'all 20 drift alerts delivered',
        timeoutMs: 20_000,
      });
      // Give a duplicate time to arrive before counting.
      await new Promise((r) => setTimeout(r, 2_000));
      const keys = ours().map((a) => `${a.cluster}/${a.objects?.[0]?.name ?? ''}`);
      assert.deepEqual(
        keys.filter((k, i) => keys.indexOf(k) !== i),
        [],
        'no alert sent twice',
      );
      assert.equal(new Set(keys).size, 20, 'every drift alerted once');
      await node.start();
    } finally {
      await sim?.stop();
      await agent?.stop();
      for (const h of hubs) await h.proc?.stop();
      await nc.close().catch(() => undefined);
      receiver.close();
      await Promise.all([nats.stop(), git.stop(), cluster.stop()]);
    }
  },
);
