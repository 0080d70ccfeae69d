import assert from 'node:assert/strict';
import test from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { silentLogger } from '@flotilla/common';
import type { FleetServiceClient } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { FleetStatus } from '../status/fleet-status.js';
import { startGrpcServer } from '../stream/grpc-server.js';
import { fleetServiceHandlers } from './grpc-fleet.js';
import { startHttpApi } from './http.js';

function fleet(): FleetStatus {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  status.setFleet([
    { name: 'edge-1', labels: { env: 'prod' }, desired: { revision: 'r1', digest: 'sha256:d1' } },
    { name: 'edge-2', labels: { env: 'dev' }, desired: undefined },
  ]);
  return status;
}

async function api(ready = true) {
  const srv = await startHttpApi('127.0.0.1', 0, {
    status: fleet(),
    sources: {
      sources: () => [
        {
          name: 'fleet',
          url: 'https://x',
          branch: 'main',
          revision: 'r1',
          lastFetched: null,
          renderedRevision: 'r1',
          error: '',
        },
      ],
    },
    readiness: { check: () => ({ ready, reasons: ready ? [] : ['NATS is not connected'] }) },
    logger: silentLogger(),
  });
  const get = async (path: string, method = 'GET') => {
    const res = await fetch(`http://127.0.0.1:${srv.port}${path}`, { method });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { srv, get };
}

test('http-lists-clusters-with-selector-and-gets-one', async () => {
  const { srv, get } = await api();
  try {
    const all = await get('/api/v1/clusters');
    assert.equal(all.status, 200);
    assert.deepEqual(
      (all.body.clusters as { name: string }[]).map((c) => c.name),
      ['edge-1', 'edge-2'],
    );
    const prod = await get(`/api/v1/clusters?selector=${encodeURIComponent('env in (prod)')}`);
    assert.deepEqual(
      (prod.body.clusters as { name: string }[]).map((c) => c.name),
      ['edge-1'],
    );
    const one = await get('/api/v1/clusters/edge-1');
    assert.equal(one.body.state, 'Pending');
    assert.equal((await get('/api/v1/sources')).body.sources instanceof Array, true);
    assert.deepEqual(await get('/healthz'), { status: 200, body: { status: 'ok' } });
  } finally {
    await srv.stop();
  }
});

test('http-errors-are-json-with-code', async () => {
  const { srv, get } = await api(false);
  try {
    const missing = await get('/api/v1/clusters/nope');
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as { code: string }).code, 'NOT_FOUND');
    const bad = await get('/api/v1/clusters?selector=env%20in%20(');
    assert.equal(bad.status, 400);
    assert.equal((bad.body.error as { code: string }).code, 'VALIDATION_FAILED');
    assert.equal((await get('/api/v1/clusters', 'DELETE')).status, 400);
    const notReady = await get('/readyz');
    assert.equal(notReady.status, 503);
    assert.deepEqual(notReady.body.reasons, ['NATS is not connected']);
  } finally {
    await srv.stop();
  }
});

test('grpc-list-clusters-filters-by-selector', async () => {
  const status = fleet();
  const server = await startGrpcServer('127.0.0.1:0', {
    agentStream: { Connect: (call) => call.end() },
    fleet: fleetServiceHandlers(status),
  });
  const client = new (loadFlotillaProto().FleetService)(
    `127.0.0.1:${server.port}`,
    credentials.createInsecure(),
  ) as FleetServiceClient;
  const list = (req: { selector?: string }) =>
    new Promise<{ names?: string[]; code?: number }>((resolve) =>
      client.ListClusters(req, (err, res) =>
        resolve(err ? { code: err.code } : { names: res?.clusters.map((c) => c.name) }),
      ),
    );
  try {
    assert.deepEqual(await list({ selector: 'env=dev' }), { names: ['edge-2'] });
    assert.deepEqual(await list({}), { names: ['edge-1', 'edge-2'] });
    assert.deepEqual(await list({ selector: '!!' }), { code: 3 });
  } finally {
    client.close();
    await server.stop(1000);
  }
});
