// Agent sessions as durable history, end to end with a real nats-server and the real
// hub app (fake source and renderer, our interfaces): an agent (a real grpc-js client)
// connects and drops; both appear in /api/v1/history with agent version and reason and
// in `flotilla describe cluster`; the hub closing a live session on shutdown is recorded
// too; after a restart the history and the last-disconnect facts are all still there.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { silentLogger } from '@flotilla/common';
import { HubApp, compileHubConfig, runCli } from '@flotilla/hub';
import type { AgentStreamClient, HubMessage__Output } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { requireEnv, startNats, waitFor } from '@flotilla/test-env';
import { OneCommit, REV, desired, oneBundleRenderer } from './one-commit-fleet.js';

const skip = await requireEnv(['nats']);
const CLUSTER = 'edge-00';

const renderer = oneBundleRenderer(new Map([[CLUSTER, { env: 'prod' }]]));

interface Entry {
  id: string;
  kind: string;
  cluster: string;
  message: string;
  session?: { id: string; agentVersion: string; reason: string; hub: string };
}

async function api<T>(hub: HubApp, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}${path}`);
  return (await res.json()) as T;
}

const sessions = async (hub: HubApp): Promise<Entry[]> =>
  (
    await api<{ entries: Entry[] }>(
      hub,
      `/api/v1/history?kind=connected,disconnected&cluster=${CLUSTER}`,
    )
  ).entries;

/** An agent session: hello, then heartbeats answered; cancel() drops it. */
function agent(hub: HubApp, version: string) {
  const client = new (loadFlotillaProto().AgentStream)(
    `127.0.0.1:${hub.grpcPort}`,
    credentials.createInsecure(),
  ) as AgentStreamClient;
  const call = client.Connect();
  call.on('error', () => {}); // cancelled by the test, or closed by the hub
  call.on('data', (m: HubMessage__Output) => {
    if (m.heartbeat) call.write({ heartbeat: {} });
  });
  const d = desired(CLUSTER);
  call.write({
    hello: {
      cluster: CLUSTER,
      agentVersion: version,
      appliedDigest: d.digest,
      appliedRevision: REV,
      protocolVersion: 1,
    },
  });
  return { call, close: () => client.close() };
}

test('agent-sessions-are-durable-history-across-a-hub-restart', { skip }, async () => {
  const nats = await startNats();
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-sessions-it-'));
  const cfg = compileHubConfig(
    {
      sources: [{ name: 'fleet', url: 'https://git.invalid/fleet.git' }],
      grpc: { listen: '127.0.0.1:0' },
      http: { listen: '127.0.0.1:0' },
      nats: { url: nats.url },
      insecure: true,
      hubId: 'it-sessions',
      heartbeatInterval: '300ms',
    },
    'hub.yaml',
    { defaultCacheDir: join(dir, 'cache') },
  );
  const newHub = () =>
    new HubApp(cfg, {
      createSource: async () => new OneCommit(),
      renderer,
      logger: silentLogger(),
    });
  let hub = newHub();
  const agents: { close(): void }[] = [];
  try {
    await hub.start();
    const first = agent(hub, 'v1.4.0');
    agents.push(first);
    await waitFor(async () => (await sessions(hub)).length === 1, { what: 'connected in history' });
    first.call.cancel();
    await waitFor(async () => (await sessions(hub)).length === 2, {
      what: 'disconnected in history',
    });
    const [ended, started] = await sessions(hub);
    assert.equal(started?.kind, 'connected');
    assert.equal(started?.session?.agentVersion, 'v1.4.0');
    assert.equal(started?.session?.hub, 'it-sessions');
    assert.equal(ended?.kind, 'disconnected');
    assert.equal(ended?.session?.id, started?.session?.id, 'the end names the session it ends');
    assert.equal(ended?.session?.agentVersion, 'v1.4.0');
    assert.match(ended?.session?.reason ?? '', /cancelled by agent|stream closed|ended the stream/);

    const out = { stdout: '', stderr: '' };
    const io = {
      stdout: { write: (t: string) => (out.stdout += t) },
      stderr: { write: (t: string) => (out.stderr += t) },
      env: {},
      cwd: '/',
    };
    const hubUrl = `http://127.0.0.1:${hub.httpPort}`;
    assert.equal(await runCli(['describe', 'cluster', CLUSTER, '--hub-url', hubUrl], io), 0);
    assert.match(out.stdout, /\nAgent version: +v1\.4\.0\n/);
    assert.match(out.stdout, /\nLast disconnected: +\S+ \(\d+s ago\): \S/);
    assert.ok(out.stdout.includes(`: ${ended?.session?.reason ?? '?'}\n`), 'with the reason');
    assert.match(out.stdout, /\nRecent sessions:\n +AGE +EVENT +SESSION +AGENT +REASON\n/);
    assert.match(out.stdout, / disconnected +\S+ +v1\.4\.0 +\S/);

    // A session still open when the hub stops is ended by the hub, and recorded.
    const second = agent(hub, 'v1.5.0');
    agents.push(second);
    await waitFor(async () => (await sessions(hub)).length === 3, { what: 'second session' });
    await hub.stop(1_000);

    hub = newHub();
    await hub.start();
    await waitFor(async () => (await sessions(hub)).length === 4, {
      what: 'the history replayed after the restart, with the shutdown disconnect',
      // The replay waits for agents dialling back (1 s quiet, 15 s at most), then runs.
      timeoutMs: 60_000,
    });
    const after = await sessions(hub);
    assert.deepEqual(
      after.map((e) => [e.kind, e.session?.agentVersion, e.session?.reason]),
      [
        ['disconnected', 'v1.5.0', 'hub shutting down'],
        ['connected', 'v1.5.0', ''],
        ['disconnected', 'v1.4.0', ended?.session?.reason],
        ['connected', 'v1.4.0', ''],
      ],
    );
    assert.equal(after[3]?.id, started?.id, 'the same events, not copies');
    const cluster = await api<{
      connected: boolean;
      agentVersion: string;
      lastDisconnectReason: string;
      lastConnected: string | null;
    }>(hub, `/api/v1/clusters/${CLUSTER}`);
    assert.equal(cluster.connected, false, 'nobody is connected to a fresh hub');
    assert.equal(cluster.agentVersion, 'v1.5.0');
    assert.equal(cluster.lastDisconnectReason, 'hub shutting down');
    assert.notEqual(cluster.lastConnected, null);
    const metrics = await (await fetch(`http://127.0.0.1:${hub.httpPort}/metrics`)).text();
    assert.match(metrics, /flotilla_session_events_total\{outcome="dropped"\} 0/);
    assert.match(metrics, /# TYPE flotilla_event_lag_seconds histogram/);
  } finally {
    for (const a of agents) a.close();
    await hub.stop(1_000);
    await nats.stop({ kill: true, removeStore: true });
    await rm(dir, { recursive: true, force: true });
  }
});
