// The query interfaces over one model: HTTP routes, SSE watch, /metrics, and gRPC.
import assert from 'node:assert/strict';
import test from 'node:test';
import { credentials } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { silentLogger } from '@flotilla/common';
import type { FleetServiceClient, WatchEvent__Output } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { HistoryLog } from '../history/history-log.js';
import { HubMetrics } from '../metrics/hub-metrics.js';
import { FleetStatus } from '../status/fleet-status.js';
import { sessionEvent } from '../status/session-events.js';
import { appliedEvent, driftEvent } from '../status/testing.js';
import { startGrpcServer } from '../stream/grpc-server.js';
import { fleetServiceHandlers } from './grpc-fleet.js';
import { startHttpApi } from './http.js';

const REV = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

// What a grpc-js client receives (proto-loader objects: unset messages are null).
type WireCluster = NonNullable<WatchEvent__Output['cluster']>;
interface WireEntry {
  kind: string;
  cluster: string;
  message: string;
  bundleDigests: string[];
  session: { id: string; agentVersion: string; reason: string; hubId: string } | null;
}

function world() {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const history = new HistoryLog({ retentionMs: 7 * 86_400_000 });
  const bundles = [{ name: 'app', digest: 'sha256:a1' }];
  status.setFleet(
    ['edge-1', 'edge-2'].map((name, i) => ({
      name,
      labels: { env: i ? 'dev' : 'prod' },
      desired: { revision: REV, digest: 'sha256:d1', bundles },
    })),
  );
  status.connected('edge-1', 's1', {
    cluster: 'edge-1',
    agentVersion: '',
    appliedDigest: '',
    appliedRevision: '',
    protocolVersion: 1,
  });
  const fold = (
    kind: Parameters<FleetStatus['foldEvent']>[0],
    ev: Parameters<FleetStatus['foldEvent']>[1],
  ) => {
    history.add(kind, ev);
    status.foldEvent(kind, ev);
  };
  fold(
    'applied',
    appliedEvent('edge-1', REV, 'sha256:d1', { app: 'sha256:a1' }, new Date(Date.now() - 60_000)),
  );
  fold(
    'drift-detected',
    driftEvent('edge-1', 'app', new Date(Date.now() - 30_000), { revision: REV }),
  );
  return { status, history, fold };
}

test('http-answers-bundles-deployments-history-drift-and-metrics', async () => {
  const { status, history } = world();
  const srv = await startHttpApi('127.0.0.1', 0, {
    status,
    history,
    metrics: new HubMetrics(status),
    sources: { sources: () => [] },
    readiness: { check: () => ({ ready: true, reasons: [] }) },
    logger: silentLogger(),
  });
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${srv.port}${path}`);
    const text = await res.text();
    return {
      status: res.status,
      text,
      body: res.headers.get('content-type')?.includes('json')
        ? (JSON.parse(text) as Record<string, unknown>)
        : ({} as Record<string, unknown>),
    };
  };
  try {
    const b = await get('/api/v1/bundles');
    assert.deepEqual(b.body.bundles, [
      {
        name: 'app',
        clusters: 2,
        states: {
          Ready: 0,
          Progressing: 0,
          Waiting: 0,
          Pending: 1,
          OutOfSync: 0,
          Drifted: 1,
          Degraded: 0,
          Failed: 0,
          Offline: 0,
        },
      },
    ]);
    const d = await get('/api/v1/deployments?state=Drifted');
    assert.deepEqual(
      (d.body.deployments as { cluster: string }[]).map((x) => x.cluster),
      ['edge-1'],
    );
    const one = await get('/api/v1/clusters/edge-1');
    assert.equal((one.body.deployments as unknown[]).length, 1);
    assert.equal(
      ((await get(`/api/v1/clusters?revision=${REV.slice(0, 8)}`)).body.clusters as unknown[])
        .length,
      1,
    );
    const drift = await get('/api/v1/drift?since=1h&cluster=edge-1');
    assert.equal((drift.body.entries as { kind: string }[])[0]?.kind, 'drift-detected');
    assert.equal(
      ((await get(`/api/v1/history?revision=${REV}&kind=applied`)).body.entries as unknown[])
        .length,
      1,
    );
    for (const [path, code] of [
      ['/api/v1/drift?cluster=nope', 404],
      ['/api/v1/history?kind=exploded', 400],
      ['/api/v1/history?since=yesterday', 400],
      ['/api/v1/clusters?revision=xyz', 400],
      ['/api/v1/deployments?state=Happy', 400],
      ['/api/v1/bundles/nope', 404],
    ] as const) {
      const r = await get(path);
      assert.equal(r.status, code, path);
      assert.ok((r.body.error as { message: string }).message.length > 0);
    }
    const m = await get('/metrics');
    assert.match(
      m.text,
      /flotilla_clusters\{state="Drifted"\}|flotilla_clusters\{state="Ready"\} 1/,
    );
    assert.match(m.text, /flotilla_stream_sessions 1/);
  } finally {
    await srv.stop();
  }
});

test('http-watch-streams-snapshot-then-changes', async () => {
  const { status, fold } = world();
  const srv = await startHttpApi('127.0.0.1', 0, {
    status,
    sources: { sources: () => [] },
    readiness: { check: () => ({ ready: true, reasons: [] }) },
    logger: silentLogger(),
  });
  const ac = new AbortController();
  try {
    const res = await fetch(`http://127.0.0.1:${srv.port}/api/v1/watch?selector=env%3Dprod`, {
      signal: ac.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const until = async (re: RegExp) => {
      while (!re.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await until(/event: synced/);
    assert.equal(text.match(/event: snapshot/g)?.length, 1, 'only edge-1 matches the selector');
    fold('drift-corrected', driftEvent('edge-1', 'app', new Date(), { kind: 'drift-corrected' }));
    await until(/event: changed\ndata: .*\n\n/);
    // The JSON sent (the status model's cached JSON of the view) is the view as it is now.
    const sent = /event: changed\ndata: (.*)\n\n/.exec(text)?.[1] as string;
    assert.deepEqual(JSON.parse(sent), JSON.parse(JSON.stringify(status.get('edge-1'))));
  } finally {
    ac.abort();
    await srv.stop();
  }
});

test('grpc-fleet-service-get-list-history-watch', async () => {
  const { status, history, fold } = world();
  const server = await startGrpcServer('127.0.0.1:0', {
    agentStream: { Connect: (call) => call.end() },
    fleet: fleetServiceHandlers(status, history),
  });
  const client = new (loadFlotillaProto().FleetService)(
    `127.0.0.1:${server.port}`,
    credentials.createInsecure(),
  ) as FleetServiceClient;
  const call = <T>(fn: (cb: (err: ServiceError | null, res?: unknown) => void) => void) =>
    new Promise<{ res?: T; code?: number }>((resolve) =>
      fn((err, res) => resolve(err ? { code: err.code } : { res: res as T })),
    );
  try {
    const got = await call<{ deployments: { state: string }[]; cluster: { state: string } }>((cb) =>
      client.GetCluster({ name: 'edge-1' }, cb),
    );
    assert.equal(got.res?.deployments[0]?.state, 'Drifted');
    assert.equal((await call((cb) => client.GetCluster({ name: 'nope' }, cb))).code, 5);
    const bundles = await call<{ bundles: { name: string; states: Record<string, number> }[] }>(
      (cb) => client.ListBundles({}, cb),
    );
    assert.equal(bundles.res?.bundles[0]?.states.Drifted, 1);
    assert.equal((await call((cb) => client.ListDeployments({ state: 'Bogus' }, cb))).code, 3);
    const h = await call<{ entries: { drift: { changedBy: string[] }[] }[] }>((cb) =>
      client.QueryHistory({ kinds: ['drift-detected'] }, cb),
    );
    assert.deepEqual(h.res?.entries[0]?.drift[0]?.changedBy, ['kubectl-edit']);
    const session = {
      agentVersion: '1.4.0',
      hub: 'hub-a',
      appliedRevision: REV,
      appliedDigest: '',
    };
    const droppedAt = new Date(Date.now() - 10_000);
    fold(
      'disconnected',
      sessionEvent(
        'edge-1',
        'disconnected',
        { ...session, session: 's0', reason: 'stream closed' },
        droppedAt,
      ),
    );
    const s = await call<{ entries: WireEntry[] }>((cb) =>
      client.QueryHistory({ cluster: 'edge-1', kinds: ['connected', 'disconnected'] }, cb),
    );
    assert.deepEqual(s.res?.entries, [
      {
        ...s.res?.entries[0],
        kind: 'disconnected',
        cluster: 'edge-1',
        message: 'session s0 ended: stream closed',
        session: { id: 's0', agentVersion: '1.4.0', reason: 'stream closed', hubId: 'hub-a' },
      },
    ]);
    const applies = await call<{ entries: WireEntry[] }>((cb) =>
      client.QueryHistory({ kinds: ['applied'] }, cb),
    );
    assert.deepEqual(applies.res?.entries[0]?.bundleDigests, ['sha256:a1']);
    assert.equal(applies.res?.entries[0]?.session, null, 'no session on an apply');
    status.connected('edge-2', 's2', {
      cluster: 'edge-2',
      agentVersion: '1.5.0',
      appliedDigest: '',
      appliedRevision: '',
      protocolVersion: 1,
    });
    const listed = await call<{ clusters: WireCluster[] }>((cb) => client.ListClusters({}, cb));
    const wire = (name: string) => listed.res?.clusters.find((c) => c.name === name);
    const isoMs = (iso: string | null | undefined) => (iso ? Date.parse(iso) : 0);
    for (const name of ['edge-1', 'edge-2']) {
      const model = status.get(name);
      assert.deepEqual(
        {
          agentVersion: wire(name)?.agentVersion,
          lastConnectedMs: wire(name)?.lastConnectedMs,
          lastDisconnectedMs: wire(name)?.lastDisconnectedMs,
          lastDisconnectReason: wire(name)?.lastDisconnectReason,
        },
        {
          agentVersion: model?.agentVersion,
          lastConnectedMs: isoMs(model?.lastConnected),
          lastDisconnectedMs: isoMs(model?.lastDisconnected),
          lastDisconnectReason: model?.lastDisconnectReason,
        },
        `${name}: gRPC carries the session facts the HTTP API shows`,
      );
    }
    assert.equal(wire('edge-1')?.lastDisconnectedMs, droppedAt.getTime());
    assert.equal(wire('edge-1')?.lastDisconnectReason, 'stream closed');
    assert.equal(wire('edge-2')?.agentVersion, '1.5.0');
    assert.ok((wire('edge-2')?.lastConnectedMs ?? 0) > 0, 'edge-2 has connected');
    const detail = await call<{ cluster: WireCluster }>((cb) =>
      client.GetCluster({ name: 'edge-1' }, cb),
    );
    assert.equal(detail.res?.cluster.lastDisconnectReason, 'stream closed');
    assert.equal((await call((cb) => client.ListClusters({ selector: 'env in (' }, cb))).code, 3);
    const stream = client.Watch({ selector: 'env=prod' });
    const events: WatchEvent__Output[] = [];
    stream.on('error', () => {}); // cancel() below ends the call with CANCELLED: expected
    await new Promise<void>((resolve) => {
      stream.on('data', (e: WatchEvent__Output) => {
        events.push(e);
        if (events.length === 1)
          fold(
            'drift-corrected',
            driftEvent('edge-1', 'app', new Date(), { kind: 'drift-corrected' }),
          );
        if (e.type === 'changed') resolve();
      });
    });
    stream.cancel();
    assert.deepEqual(
      events.map((e) => `${e.type}:${e.cluster?.name}:${e.cluster?.state}`),
      ['snapshot:edge-1:Ready', 'changed:edge-1:Ready'],
    );
  } finally {
    client.close();
    await server.stop(1000);
  }
});
