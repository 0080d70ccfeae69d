import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger } from '@flotilla/common';
import type { Hello__Output } from '@flotilla/proto';
import { jsonText } from './cluster-json.js';
import type { JsonBytes } from './cluster-json.js';
import { FleetStatus } from './fleet-status.js';
import { sessionEvent } from './session-events.js';
import { appliedEvent, driftEvent, healthEvent } from './testing.js';

const REV = 'feedc0de'.padEnd(40, '0');
const BUNDLES = { app: 'sha256:a', web: 'sha256:w' };
const hello = (cluster: string): Hello__Output => ({
  cluster,
  agentVersion: '1.2.3',
  capabilities: null,
  appliedDigest: '',
  appliedRevision: '',
  protocolVersion: 1,
  sentAtMs: 0,
});

// The cached JSON must be exactly what serializing list() gives, after every kind of
// change the model knows, and as time alone turns a cluster Offline.
test('cached-cluster-json-follows-every-change-and-the-clock', () => {
  const clock = { now: 1_000_000 };
  const status = new FleetStatus({
    offlineAfterMs: 45_000,
    logger: silentLogger(),
    now: () => clock.now,
  });
  const at = () => new Date(clock.now);
  const same = (step: string) => {
    assert.deepEqual(
      status.listBytes().map(jsonText),
      status.list().map((c) => JSON.stringify(c)),
      step,
    );
    clock.now += 1_000;
  };
  const desired = (digest: string) => ({
    revision: REV,
    digest,
    bundles: Object.entries(BUNDLES).map(([name, d]) => ({ name, digest: d })),
  });
  status.setFleet([
    { name: 'edge-1', labels: { env: 'prod' }, desired: desired('sha256:d1') },
    { name: 'edge-2', labels: { env: 'dev' }, desired: desired('sha256:d1') },
  ]);
  same('declared');
  status.listBytes(); // cached now: every step below must invalidate or keep it right
  status.connected('edge-1', 's1', hello('edge-1'));
  same('connected');
  status.seen('edge-1', 's1');
  same('heartbeat');
  status.foldEvent('applied', appliedEvent('edge-1', REV, 'sha256:d1', BUNDLES, at()));
  same('applied');
  // Changes that leave state, message and last seen as they were: only the stamp tells.
  status.foldEvent(
    'applied',
    appliedEvent('edge-1', REV, 'sha256:d1', { ...BUNDLES, extra: 'sha256:x' }, at()),
  );
  same('applied again, another bundle list');
  status.setFleet([
    { name: 'edge-1', labels: { env: 'prod', tier: 'gold' }, desired: desired('sha256:d1') },
    { name: 'edge-2', labels: { env: 'dev' }, desired: desired('sha256:d1') },
  ]);
  same('labels changed');
  status.foldEvent('drift-detected', driftEvent('edge-1', 'app', at(), { revision: REV }));
  same('drift');
  status.foldEvent('health-changed', healthEvent('edge-1', 'web', 'Degraded', at()));
  same('health');
  status.foldEvent(
    'apply-failed',
    appliedEvent('edge-1', REV, 'sha256:d1', BUNDLES, at(), {
      result: 'failed',
      kind: 'apply-failed',
    }),
  );
  same('apply failed');
  const session = {
    session: 's0',
    agentVersion: '1.2.2',
    reason: 'agent stopped',
    hub: 'main',
    appliedRevision: '',
    appliedDigest: '',
  };
  status.foldEvent('disconnected', sessionEvent('edge-2', 'disconnected', session, at()));
  same('session event');
  status.setFleet([{ name: 'edge-1', labels: { env: 'prod' }, desired: desired('sha256:d2') }]);
  same('new desired state, edge-2 no longer declared');
  status.disconnected('edge-1', 's1', 'stream closed');
  same('disconnected');
  clock.now += 60_000;
  same('offline by the clock alone');
  status.restore([]);
  same('after restore');
  assert.equal(JSON.parse(jsonText(status.listBytes()[0] as JsonBytes)).state, 'Offline');
});
