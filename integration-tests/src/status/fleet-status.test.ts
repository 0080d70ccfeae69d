// Fleet status end to end with a real nats-server: the hub (fake source and renderer,
// our interfaces) folds events published to JetStream, survives a restart mid-stream,
// shows a cluster offline and back, alerts a local webhook receiver, and `flotilla
// wait` gates on a revision. The agent is played by a real grpc-js client.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AppliedData, EventKind, FlotillaEvent } from '@flotilla/common';
import { createEvent, eventSubject, silentLogger } from '@flotilla/common';
import { HubApp, compileHubConfig, ensureEventsStream, runCli } from '@flotilla/hub';
import type { AgentStreamClient, HubMessage__Output } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { requireEnv, startNats, waitFor } from '@flotilla/test-env';
import { OneCommit, REV, desired, oneBundleRenderer } from './one-commit-fleet.js';
import type { TestNats } from '@flotilla/test-env';

const skip = await requireEnv(['nats']);
const CLUSTERS = Array.from({ length: 50 }, (_, i) => `edge-${String(i).padStart(2, '0')}`);

const renderer = oneBundleRenderer(
  new Map(CLUSTERS.map((c, i) => [c, { env: i % 2 ? 'dev' : 'prod' }])),
);

interface World {
  nats: TestNats;
  dir: string;
  hookUrl: string;
  posts: { text: string }[];
  newHub(): HubApp;
  stop(): Promise<void>;
}

async function world(): Promise<World> {
  const nats = await startNats();
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-status-it-'));
  const posts: { text: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      posts.push(JSON.parse(body) as { text: string });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/slack`;
  const cfg = compileHubConfig(
    {
      sources: [{ name: 'fleet', url: 'https://git.invalid/fleet.git' }],
      grpc: { listen: '127.0.0.1:0' },
      http: { listen: '127.0.0.1:0' },
      nats: { url: nats.url },
      insecure: true,
      hubId: 'it',
      heartbeatInterval: '300ms',
      offlineAfter: '1500ms',
      notify: { webhooks: [{ name: 'ops', url: hookUrl, format: 'slack' }] },
    },
    'hub.yaml',
    { defaultCacheDir: join(dir, 'cache') },
  );
  return {
    nats,
    dir,
    hookUrl,
    posts,
    newHub: () =>
      new HubApp(cfg, {
        createSource: async () => new OneCommit(),
        renderer,
        logger: silentLogger(),
      }),
    stop: async () => {
      await new Promise<void>((r) => receiver.close(() => r()));
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function applied(
  cluster: string,
  digest: string,
  time: Date,
  generation = 1,
): FlotillaEvent<AppliedData> {
  const data: AppliedData = {
    revision: REV,
    digest,
    generation,
    result: 'applied',
    durationMs: 50,
    bundles: [
      {
        name: 'app',
        digest: `sha256:${cluster}-${generation}`,
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

async function publish(
  nc: NatsConnection,
  kind: EventKind,
  ev: FlotillaEvent,
  msgID = ev.id,
): Promise<void> {
  await jetstream(nc).publish(eventSubject(ev.flotillacluster, kind), JSON.stringify(ev), {
    msgID,
  });
}

async function api<T>(hub: HubApp, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}${path}`);
  return (await res.json()) as T;
}

type ClusterView = {
  name: string;
  state: string;
  connected: boolean;
  bundles: { digest: string }[];
};

test('hub-restart-mid-stream-loses-nothing-and-duplicates-are-harmless', { skip }, async () => {
  const w = await world();
  const nc = await connect({ servers: w.nats.url });
  await ensureEventsStream(nc);
  let hub = w.newHub();
  try {
    await hub.start();
    const t0 = Date.now() - 60_000;
    // Three generations per cluster, in time order; the last one is what must show.
    const events = [1, 2, 3].flatMap((g) =>
      CLUSTERS.map((c, i) => applied(c, `sha256:${c}-g${g}`, new Date(t0 + g * 1000 + i), g)),
    );
    const half = events.length / 2;
    for (const ev of events.slice(0, half)) await publish(nc, 'applied', ev);
    await waitFor(
      async () =>
        (await api<{ entries: unknown[] }>(hub, '/api/v1/history?limit=10000')).entries.length > 0,
      { what: 'first events folded' },
    );
    const stopping = hub.stop(1_000);
    for (const ev of events.slice(half)) await publish(nc, 'applied', ev);
    await stopping;

    hub = w.newHub();
    await hub.start();
    const last = (c: string) => `sha256:${c}-3`;
    await waitFor(
      async () => {
        const { clusters } = await api<{ clusters: ClusterView[] }>(hub, '/api/v1/clusters');
        return (
          clusters.length === CLUSTERS.length &&
          clusters.every((c) => c.bundles[0]?.digest === last(c.name))
        );
      },
      { what: 'every cluster at its newest event after the restart', timeoutMs: 20_000 },
    );
    // Redelivery (new message ids defeat JetStream's de-duplication) and late, older events.
    for (const ev of events.slice(0, 20)) await publish(nc, 'applied', ev, `${ev.id}-again`);
    const marker = applied('edge-00', 'sha256:marker', new Date(t0 + 10_000), 9);
    await publish(nc, 'applied', marker);
    await waitFor(
      async () =>
        (await api<{ bundles: { digest: string }[] }>(hub, '/api/v1/clusters/edge-00')).bundles[0]
          ?.digest === 'sha256:edge-00-9',
      {
        what: 'marker folded',
      },
    );
    const { clusters } = await api<{ clusters: ClusterView[] }>(hub, '/api/v1/clusters');
    assert.deepEqual(
      clusters
        .filter((c) => c.name !== 'edge-00' && c.bundles[0]?.digest !== last(c.name))
        .map((c) => c.name),
      [],
      'duplicates and out-of-order events changed nothing',
    );
    // The restarted hub replays its history once agents stopped dialling back; until then
    // history answers are marked partial.
    const history = await waitFor(
      async () => {
        const h = await api<{ entries: unknown[]; partial?: string }>(
          hub,
          '/api/v1/history?limit=10000',
        );
        if (h.partial !== undefined) assert.match(h.partial, /^history loading: /);
        return h.partial === undefined ? h : undefined;
      },
      { what: 'the history replayed after the restart', timeoutMs: 30_000 },
    );
    assert.equal(
      history.entries.length,
      events.length + 1,
      'the history holds every event once, replayed across the restart',
    );
  } finally {
    await hub.stop(1_000);
    await nc.close();
    await w.stop();
  }
});

test(
  'agent-stops-cluster-goes-offline-alerts-and-comes-back-then-wait-gates-on-revision',
  { skip },
  async () => {
    const w = await world();
    const hub = w.newHub();
    const clients: AgentStreamClient[] = [];
    const client = () => {
      const c = new (loadFlotillaProto().AgentStream)(
        `127.0.0.1:${hub.grpcPort}`,
        credentials.createInsecure(),
      ) as AgentStreamClient;
      clients.push(c);
      return c;
    };
    const agent = (c: AgentStreamClient) => {
      const call = c.Connect();
      call.on('error', () => {}); // cancelled by the test
      call.on('data', (m: HubMessage__Output) => {
        if (m.heartbeat) call.write({ heartbeat: {} });
      });
      const d = desired('edge-00');
      call.write({
        hello: {
          cluster: 'edge-00',
          agentVersion: 'it',
          appliedDigest: d.digest,
          appliedRevision: REV,
          protocolVersion: 1,
        },
      });
      return call;
    };
    const state = async () => (await api<ClusterView>(hub, '/api/v1/clusters/edge-00')).state;
    try {
      await hub.start();
      await waitFor(async () => (await api<{ ready: boolean }>(hub, '/readyz')).ready, {
        what: 'hub ready',
      });
      const first = agent(client());
      await waitFor(async () => (await state()) === 'Ready', { what: 'edge-00 Ready' });
      const hubUrl = `http://127.0.0.1:${hub.httpPort}`;
      const out = { stdout: '', stderr: '' };
      const io = {
        stdout: { write: (t: string) => (out.stdout += t) },
        stderr: { write: (t: string) => (out.stderr += t) },
        env: {},
        cwd: '/',
      };
      assert.equal(
        await runCli(
          [
            'wait',
            '--for',
            `revision=${REV}`,
            '-l',
            'env=prod,name=edge-00',
            '--hub-url',
            hubUrl,
            '--timeout',
            '0s',
          ],
          io,
        ),
        1,
        'no cluster has a name label',
      );
      assert.equal(
        await runCli(
          [
            'wait',
            '--for',
            `revision=${REV.slice(0, 8)}`,
            '-l',
            'env=prod',
            '--hub-url',
            hubUrl,
            '--timeout',
            '1s',
            '--interval',
            '200ms',
          ],
          io,
        ),
        1,
      );
      assert.match(
        out.stderr,
        /timed out after 1s waiting for revision c0ffee01; not there yet:\n {2}edge-02: Pending/,
      );
      first.cancel();
      await waitFor(async () => (await state()) === 'Offline', {
        what: 'edge-00 Offline after the timeout',
        timeoutMs: 10_000,
      });
      await waitFor(() => w.posts.some((p) => /edge-00 is offline/.test(p.text)), {
        what: 'offline alert at the webhook',
      });
      agent(client());
      await waitFor(async () => (await state()) === 'Ready', { what: 'edge-00 back online' });
      out.stdout = '';
      const waited = runCli(
        [
          'wait',
          '--for',
          `revision=${REV}`,
          '-l',
          'env=prod',
          '--hub-url',
          hubUrl,
          '--timeout',
          '30s',
          '--interval',
          '200ms',
        ],
        io,
      );
      // The other prod clusters report in while wait polls.
      const nc = await connect({ servers: w.nats.url });
      await ensureEventsStream(nc);
      for (const c of CLUSTERS.filter((_, i) => i % 2 === 0 && i > 0))
        await publish(nc, 'applied', applied(c, desired(c).digest, new Date()));
      await nc.close();
      // Events alone do not make a never-connected cluster Ready: it needs an agent session.
      for (const c of CLUSTERS.filter((_, i) => i % 2 === 0 && i > 0)) {
        const call = client().Connect();
        call.on('error', () => {});
        call.write({
          hello: {
            cluster: c,
            agentVersion: 'it',
            appliedDigest: desired(c).digest,
            appliedRevision: REV,
            protocolVersion: 1,
          },
        });
      }
      assert.equal(await waited, 0, out.stderr);
      assert.match(out.stdout, /25 cluster\(s\) Ready at c0ffee/);
    } finally {
      for (const c of clients) c.close();
      await hub.stop(1_000);
      await w.stop();
    }
  },
);

test('drift-is-alerted-and-queryable-through-the-cli', { skip }, async () => {
  const w = await world();
  const hub = w.newHub();
  const nc = await connect({ servers: w.nats.url });
  await ensureEventsStream(nc);
  try {
    await hub.start();
    // DriftDetectedData, as the agent publishes it.
    const drift = createEvent('edge-01', 'drift-detected', {
      bundle: 'app',
      revision: REV,
      object: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'web', name: 'podinfo' },
      deleted: false,
      changes: [{ path: '/spec/replicas', old: 2, new: 5 }],
      manager: 'kubectl-scale',
      mode: 'enforce',
      heals: 1,
      fight: false,
    });
    await publish(nc, 'drift-detected', drift);
    await publish(nc, 'drift-detected', drift, `${drift.id}-redelivered`);
    await publish(nc, 'applied', createEvent('edge-01', 'applied', { nonsense: true }));
    await waitFor(
      () => w.posts.some((p) => /Drift on bundle app on cluster edge-01/.test(p.text)),
      { what: 'drift alert at the webhook' },
    );
    const post = w.posts.find((p) => /Drift/.test(p.text));
    assert.match(
      post?.text ?? '',
      /Deployment web\/podinfo: \/spec\/replicas \(by kubectl-scale\)/,
    );
    const out = { stdout: '', stderr: '' };
    const io = {
      stdout: { write: (t: string) => (out.stdout += t) },
      stderr: { write: (t: string) => (out.stderr += t) },
      env: {},
      cwd: '/',
    };
    const hubUrl = `http://127.0.0.1:${hub.httpPort}`;
    assert.equal(await runCli(['drift', '--since', '1h', '--hub-url', hubUrl], io), 0);
    assert.match(
      out.stdout,
      /edge-01 +app +detected +Deployment\/web\/podinfo +\/spec\/replicas +kubectl-scale/,
    );
    assert.equal(out.stdout.trim().split('\n').length, 2, 'the redelivered event is one entry');
    assert.equal(await runCli(['describe', 'cluster', 'nope', '--hub-url', hubUrl], io), 1);
    assert.match(
      out.stderr,
      /flotilla describe: hub answered 404 NOT_FOUND: cluster "nope" not found/,
    );
    assert.equal(
      await runCli(['get', 'deployments', '-l', 'env in (', '--hub-url', hubUrl], io),
      2,
    );
    const metrics = await (await fetch(`${hubUrl}/metrics`)).text();
    assert.match(metrics, /flotilla_events_total\{kind="unknown",outcome="malformed"\} 1/);
    assert.match(metrics, /flotilla_drift_events_total 1/);
    assert.match(metrics, /flotilla_notifications_total\{outcome="sent",webhook="ops"\} 1/);
  } finally {
    await nc.close();
    await hub.stop(1_000);
    await w.stop();
  }
});
