import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger, sleep } from '@flotilla/common';
import type { ClusterCapabilities } from '@flotilla/common';
import type { KubeHttpRequest } from '../kube/http.js';
import { CapabilitiesMonitor } from './monitor.js';

// An API server whose served groups the test changes (a CRD installed), and that can be down.
class FakeServer {
  groups = [{ metadata: { name: 'apps' }, versions: [{ version: 'v1', resources: [] }] }];
  down = false;
  reads = 0;
  get = async (req: KubeHttpRequest): Promise<unknown> => {
    if (req.path === '/version') this.reads++;
    if (this.down) throw new Error('connect ECONNREFUSED');
    if (req.path === '/version') return { gitVersion: 'v1.35.4' };
    if (req.path === '/api')
      return {
        kind: 'APIGroupDiscoveryList',
        items: [{ metadata: {}, versions: [{ version: 'v1' }] }],
      };
    return { kind: 'APIGroupDiscoveryList', items: this.groups };
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await sleep(10);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('a-refresh-reads-again-and-only-a-change-is-handed-on', async () => {
  const server = new FakeServer();
  const changes: ClusterCapabilities[] = [];
  const monitor = new CapabilitiesMonitor({
    get: server.get,
    intervalMs: 3_600_000,
    logger: silentLogger(),
    onChange: (c) => changes.push(c),
  });
  try {
    await monitor.start();
    assert.deepEqual(monitor.current, { kubeVersion: 'v1.35.4', apiVersions: ['apps/v1', 'v1'] });
    assert.equal(changes.length, 1);
    monitor.refresh();
    await until(() => server.reads === 2, 'a second reading');
    assert.equal(changes.length, 1, 'same capabilities: nothing handed on');
    server.groups.push({
      metadata: { name: 'monitoring.coreos.com' },
      versions: [{ version: 'v1', resources: [] }],
    });
    monitor.refresh();
    await until(() => changes.length === 2, 'the change');
    assert.deepEqual(changes[1]?.apiVersions, ['apps/v1', 'monitoring.coreos.com/v1', 'v1']);
  } finally {
    await monitor.stop();
  }
});

test('readings-repeat-every-interval-and-a-failed-one-keeps-the-last', async () => {
  const server = new FakeServer();
  const changes: ClusterCapabilities[] = [];
  const monitor = new CapabilitiesMonitor({
    get: server.get,
    intervalMs: 20,
    logger: silentLogger(),
    onChange: (c) => changes.push(c),
  });
  try {
    await monitor.start();
    server.down = true;
    const before = server.reads;
    await until(() => server.reads >= before + 2, 'two failed readings');
    assert.deepEqual(monitor.current?.apiVersions, ['apps/v1', 'v1']);
    server.down = false;
    server.groups = [];
    await until(() => changes.length === 2, 'the change found by a periodic reading');
    assert.deepEqual(monitor.current?.apiVersions, ['v1']);
  } finally {
    await monitor.stop();
  }
});

test('a-first-reading-that-fails-leaves-no-capabilities', async () => {
  const server = new FakeServer();
  server.down = true;
  const monitor = new CapabilitiesMonitor({
    get: server.get,
    intervalMs: 3_600_000,
    logger: silentLogger(),
    onChange: () => assert.fail('nothing to hand on'),
  });
  await monitor.start();
  assert.equal(monitor.current, undefined);
  await monitor.stop();
});
