// A render failure over the wire: gRPC FleetService carries it as RenderFailure fields,
// and /metrics counts it, as the HTTP API shows it.
import assert from 'node:assert/strict';
import test from 'node:test';
import { credentials } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { silentLogger } from '@flotilla/common';
import type { FleetServiceClient } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { HubMetrics } from '../metrics/hub-metrics.js';
import { FleetStatus } from '../status/fleet-status.js';
import { renderFailureRecord } from '../status/render-failures.js';
import { startGrpcServer } from '../stream/grpc-server.js';
import { fleetServiceHandlers } from './grpc-fleet.js';
import { startHttpApi } from './http.js';

const REV = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const OLD = '0f0e0d0c0b0a09080706050403020100f0e0d0c0';
const WEB = renderFailureRecord('web', REV, ['bundles/web/manifests/cm.yaml:5: bad'], OLD);

function world(): FleetStatus {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  status.setFleet([
    {
      name: 'edge-1',
      labels: {},
      desired: { revision: REV, digest: 'sha256:d1', bundles: [{ name: 'web', digest: 'w0' }] },
      renderFailures: [WEB],
    },
    { name: 'edge-2', labels: {}, desired: { revision: REV, digest: 'sha256:d2', bundles: [] } },
  ]);
  status.connected('edge-1', 's1', {
    cluster: 'edge-1',
    agentVersion: '',
    appliedDigest: 'sha256:d1',
    appliedRevision: REV,
    protocolVersion: 1,
  });
  return status;
}

test('grpc-carries-render-failures-of-clusters-and-deployments', async () => {
  const status = world();
  const server = await startGrpcServer('127.0.0.1:0', {
    agentStream: { Connect: (call) => call.end() },
    fleet: fleetServiceHandlers(status),
  });
  const client = new (loadFlotillaProto().FleetService)(
    `127.0.0.1:${server.port}`,
    credentials.createInsecure(),
  ) as FleetServiceClient;
  const call = <T>(fn: (cb: (err: ServiceError | null, res?: unknown) => void) => void) =>
    new Promise<T>((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as T))));
  type Failure = typeof WEB;
  try {
    const got = await call<{
      cluster: { state: string; renderFailures: Failure[] };
      deployments: {
        bundle: string;
        state: string;
        reason: string;
        renderFailure: Failure | null;
      }[];
    }>((cb) => client.GetCluster({ name: 'edge-1' }, cb));
    assert.equal(got.cluster.state, 'Failed');
    assert.deepEqual(got.cluster.renderFailures, [WEB]);
    assert.deepEqual(got.deployments[0]?.renderFailure, WEB);
    assert.equal(got.deployments[0]?.state, 'Failed');
    const failed = await call<{
      deployments: { cluster: string; renderFailure: Failure | null }[];
    }>((cb) => client.ListDeployments({ state: 'Failed' }, cb));
    assert.deepEqual(
      failed.deployments.map((d) => [d.cluster, d.renderFailure?.servingRevision]),
      [['edge-1', OLD]],
    );
    const listed = await call<{ clusters: { name: string; renderFailures: Failure[] }[] }>((cb) =>
      client.ListClusters({}, cb),
    );
    assert.deepEqual(
      listed.clusters.map((c) => [c.name, c.renderFailures.length]),
      [
        ['edge-1', 1],
        ['edge-2', 0],
      ],
    );
  } finally {
    client.close();
    await server.stop(1000);
  }
});

test('metrics-count-render-failures-and-the-failed-cluster', async () => {
  const status = world();
  const srv = await startHttpApi('127.0.0.1', 0, {
    status,
    metrics: new HubMetrics(status),
    sources: { sources: () => [] },
    readiness: { check: () => ({ ready: true, reasons: [] }) },
    logger: silentLogger(),
  });
  try {
    const text = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text();
    assert.match(text, /^flotilla_render_failures 1$/m);
    assert.match(text, /^flotilla_clusters\{state="Failed"\} 1$/m);
    // edge-2's agent never connected: Pending wins for a cluster, as documented.
    assert.match(text, /^flotilla_clusters\{state="Pending"\} 1$/m);
  } finally {
    await srv.stop();
  }
});
