import assert from 'node:assert/strict';
import test from 'node:test';
import { createEvent, silentLogger } from '@flotilla/common';
import { jsonText } from './cluster-json.js';
import type { JsonBytes } from './cluster-json.js';
import { FleetStatus } from './fleet-status.js';
import type { DriftFacts } from './event-data.js';
import { appliedEvent, driftEvent } from './testing.js';

const REV = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

function model() {
  const clock = { now: Date.parse('2026-11-26T12:00:00Z') };
  const status = new FleetStatus({
    offlineAfterMs: 45_000,
    logger: silentLogger(),
    now: () => clock.now,
  });
  const bundles = [
    { name: 'app', digest: 'sha256:app1' },
    { name: 'db', digest: 'sha256:db1' },
  ];
  status.setFleet(
    ['edge-1', 'edge-2', 'edge-3'].map((name) => ({
      name,
      labels: { env: 'prod' },
      desired: { revision: REV, digest: 'sha256:d1', bundles },
    })),
  );
  for (const c of ['edge-1', 'edge-2'])
    status.connected(c, `s-${c}`, {
      cluster: c,
      agentVersion: '',
      appliedDigest: '',
      appliedRevision: '',
      protocolVersion: 1,
    });
  return { status, clock };
}

const at = (s: number) => new Date(Date.parse('2026-11-26T11:00:00Z') + s * 1000);

test('deployments-show-per-bundle-state-and-drift', () => {
  const { status } = model();
  status.foldEvent(
    'applied',
    appliedEvent('edge-1', REV, 'sha256:d1', { app: 'sha256:app1', db: 'sha256:db1' }, at(1)),
  );
  status.foldEvent('drift-detected', driftEvent('edge-1', 'app', at(2)));
  status.foldEvent(
    'health-changed',
    createEvent('edge-1', 'health-changed', { bundle: 'db', health: 'Degraded' }, at(3)),
  );
  const d = status.describe('edge-1');
  assert.equal(d?.cluster.state, 'Ready');
  assert.deepEqual(
    d?.deployments.map((x) => [x.bundle, x.state, x.drifted, x.health]),
    [
      ['app', 'Drifted', 1, ''],
      ['db', 'Degraded', 0, 'Degraded'],
    ],
  );
  assert.equal(d?.cluster.lastConverged, at(1).toISOString());
  status.foldEvent(
    'drift-corrected',
    driftEvent('edge-1', 'app', at(4), { kind: 'drift-corrected' }),
  );
  assert.equal(status.describe('edge-1')?.deployments[0]?.state, 'Ready');
});

test('a-redelivered-drift-event-is-counted-once', () => {
  const { status } = model();
  const ev = driftEvent('edge-1', 'app', at(2));
  const seen: DriftFacts[] = [];
  status.onDrift((_c, d) => seen.push(d));
  assert.equal(status.foldEvent('drift-detected', ev), 'folded');
  assert.equal(status.foldEvent('drift-detected', ev), 'stale');
  assert.equal(
    status.foldEvent('drift-detected', driftEvent('edge-1', 'app', at(1))),
    'stale',
    'older event',
  );
  assert.equal(status.describe('edge-1')?.deployments[0]?.driftEvents, 1);
  assert.equal(seen.length, 1);
});

// The hub's estimate of an agent's clock moves with each session (a hello delayed by a
// busy hub reads as an offset): a drift event folded again after it moved (redelivered, or
// folded again by a restarted replica) must not look newer than itself.
test('a-drift-event-folded-again-after-the-clock-estimate-moved-is-counted-once', () => {
  const { status, clock } = model();
  const hello = { cluster: 'edge-1', agentVersion: '', appliedDigest: '', appliedRevision: '' };
  status.connected('edge-1', 's1', { ...hello, protocolVersion: 1, sentAtMs: clock.now });
  const first = driftEvent('edge-1', 'app', at(2), { name: 'web' });
  status.foldEvent('drift-detected', first);
  status.foldEvent('drift-detected', driftEvent('edge-1', 'app', at(3), { name: 'api' }));
  // A new session whose hello waited 5 s in a busy hub: the estimate is now 5 s.
  status.connected('edge-1', 's2', { ...hello, protocolVersion: 1, sentAtMs: clock.now - 5_000 });
  assert.equal(status.foldEvent('drift-detected', first), 'stale');
  assert.equal(status.describe('edge-1')?.deployments[0]?.driftEvents, 2);
  // The estimate moves back: a new detection a second after the last one still counts.
  status.connected('edge-1', 's3', { ...hello, protocolVersion: 1, sentAtMs: clock.now });
  status.foldEvent('drift-detected', driftEvent('edge-1', 'app', at(4), { name: 'api' }));
  assert.equal(status.describe('edge-1')?.deployments[0]?.driftEvents, 3);
});

test('bundle-summaries-count-every-cluster-per-state', () => {
  const { status } = model();
  status.foldEvent(
    'applied',
    appliedEvent('edge-1', REV, 'sha256:d1', { app: 'sha256:app1', db: 'sha256:db1' }, at(1)),
  );
  status.foldEvent(
    'apply-failed',
    appliedEvent('edge-2', REV, 'sha256:d1', { app: 'sha256:app1', db: 'sha256:db1' }, at(1), {
      result: 'partial',
      failures: { db: ['StatefulSet/apps/db: invalid'] },
    }),
  );
  const summaries = status.bundleSummaries();
  assert.deepEqual(
    summaries.map((b) => b.name),
    ['app', 'db'],
  );
  const app = summaries[0]?.states;
  const db = summaries[1]?.states;
  assert.equal(summaries[0]?.clusters, 3);
  // Only db failed on edge-2: app's objects there are as desired.
  assert.deepEqual([app?.Ready, app?.Failed, app?.Pending], [2, 0, 1]);
  assert.deepEqual([db?.Ready, db?.Failed, db?.Pending], [1, 1, 1]);
  const failed = status.deployments({ state: 'Failed', bundle: 'db' });
  assert.deepEqual(
    failed.map((d) => [d.cluster, d.lastError]),
    [['edge-2', 'StatefulSet/apps/db: invalid']],
  );
});

test('clusters-can-be-found-by-revision-and-bundle-digest', () => {
  const { status } = model();
  status.foldEvent(
    'applied',
    appliedEvent('edge-1', REV, 'sha256:d1', { app: 'sha256:app1', db: 'sha256:db1' }, at(1)),
  );
  assert.deepEqual(
    status.list({ revision: REV.slice(0, 7) }).map((c) => c.name),
    ['edge-1'],
  );
  assert.deepEqual(
    status.list({ bundleDigest: 'sha256:db1' }).map((c) => c.name),
    ['edge-1'],
  );
  assert.deepEqual(status.list({ bundleDigest: 'sha256:nope' }), []);
});

test('offline-transitions-are-notified-by-the-sweep', async () => {
  const { status, clock } = model();
  const seen: string[] = [];
  status.onChange((c, prev) => seen.push(`${c.name}:${prev ?? '-'}>${c.state}`));
  status.disconnected('edge-1', 's-edge-1', 'closed');
  await new Promise((r) => setImmediate(r));
  clock.now += 46_000;
  status.sweep();
  status.sweep();
  assert.deepEqual(seen, ['edge-1:Progressing>OutOfSync', 'edge-1:OutOfSync>Offline']);
  status.connected('edge-1', 's2', {
    cluster: 'edge-1',
    agentVersion: '',
    appliedDigest: 'sha256:d1',
    appliedRevision: REV,
    protocolVersion: 1,
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(seen.at(-1), 'edge-1:Offline>Ready');
});

test('drift-per-object-ends-the-same-in-any-delivery-order', () => {
  const events = [
    ['drift-detected', driftEvent('edge-1', 'app', at(1), { name: 'a' })],
    ['drift-detected', driftEvent('edge-1', 'app', at(2), { name: 'b' })],
    ['drift-corrected', driftEvent('edge-1', 'app', at(3), { name: 'a', kind: 'drift-corrected' })],
  ] as const;
  for (const order of [
    [0, 1, 2],
    [2, 1, 0],
    [1, 2, 0, 0, 2],
  ]) {
    const { status } = model();
    for (const i of order) status.foldEvent(events[i]![0], events[i]![1]);
    const app = status.describe('edge-1')?.deployments[0];
    assert.equal(app?.drifted, 1, `order ${order.join(',')}: only b is drifted`);
  }
});

test('a-waiting-bundle-is-a-waiting-deployment-and-its-cluster-is-progressing-until-applied', () => {
  const { status } = model();
  const waiting = appliedEvent(
    'edge-1',
    REV,
    'sha256:d1',
    { app: 'sha256:app1', db: 'sha256:db1' },
    at(1),
    { result: 'waiting', kind: 'applied' },
  );
  const app = waiting.data.bundles.find((b) => b.name === 'app')!;
  Object.assign(app, {
    created: 0,
    unchanged: 0,
    waiting: {
      for: 'db',
      reason: 'waiting for bundle db: Progressing (Deployment/db/db: 0 of 1 replicas available)',
    },
  });
  waiting.data.message = 'bundle app waits for bundle db';
  status.foldEvent('applied', waiting);
  const d = status.describe('edge-1');
  assert.deepEqual(
    [d?.cluster.state, d?.cluster.message],
    ['Progressing', 'bundle app waits for bundle db'],
  );
  assert.deepEqual(
    d?.deployments.map((x) => [x.bundle, x.state, x.waitingFor, x.reason]),
    [
      [
        'app',
        'Waiting',
        'db',
        'waiting for bundle db: Progressing (Deployment/db/db: 0 of 1 replicas available)',
      ],
      ['db', 'Ready', undefined, ''],
    ],
  );
  assert.equal(status.bundleSummaries().find((b) => b.name === 'app')?.states.Waiting, 1);
  assert.deepEqual(
    status.deployments({ state: 'Waiting' }).map((x) => x.cluster),
    ['edge-1'],
  );
  // The agent applies it once db is healthy: the next applied event clears the wait.
  status.foldEvent(
    'applied',
    appliedEvent('edge-1', REV, 'sha256:d1', { app: 'sha256:app1', db: 'sha256:db1' }, at(2)),
  );
  const after = status.describe('edge-1');
  assert.equal(after?.cluster.state, 'Ready');
  assert.deepEqual(
    after?.deployments.map((x) => [x.bundle, x.state]),
    [
      ['app', 'Ready'],
      ['db', 'Ready'],
    ],
  );
});

test('a-waiting-ack-shows-the-cluster-progressing-with-the-agents-message', () => {
  const { status } = model();
  status.acked('edge-2', {
    generation: 1,
    digest: 'sha256:d1',
    revision: REV,
    result: 'ACK_RESULT_WAITING',
    message: 'bundle app waits for pre-install hook Job/app/migrate',
    objectsApplied: 3,
    objectsFailed: 0,
  });
  assert.deepEqual(
    [status.get('edge-2')?.state, status.get('edge-2')?.message],
    ['Progressing', 'bundle app waits for pre-install hook Job/app/migrate'],
  );
});

test('deployment-rows-are-cached-until-their-cluster-changes-and-time-turns-it-offline', () => {
  const { status, clock } = model();
  const order = (rows: JsonBytes[]) =>
    rows.map((j) => {
      const d = JSON.parse(jsonText(j)) as { bundle: string; cluster: string; state: string };
      return `${d.bundle}/${d.cluster}/${d.state}`;
    });
  const first = status.deploymentsBytes();
  // Sorted by bundle, then cluster; the JSON is the deployments' own.
  assert.deepEqual(order(first), [
    'app/edge-1/Progressing',
    'app/edge-2/Progressing',
    'app/edge-3/Pending',
    'db/edge-1/Progressing',
    'db/edge-2/Progressing',
    'db/edge-3/Pending',
  ]);
  assert.deepEqual(
    first.map(jsonText),
    status.deployments().map((d) => JSON.stringify(d)),
  );
  // Unchanged clusters give the very same bytes (cached, not serialized again).
  const again = status.deploymentsBytes();
  assert.ok(first.every((j, i) => j === again[i]));
  status.foldEvent(
    'applied',
    appliedEvent('edge-2', REV, 'sha256:d1', { app: 'sha256:app1', db: 'sha256:db1' }, at(1)),
  );
  const changed = status.deploymentsBytes({ bundle: 'app' });
  assert.deepEqual(order(changed), [
    'app/edge-1/Progressing',
    'app/edge-2/Ready',
    'app/edge-3/Pending',
  ]);
  assert.equal(changed[0], first[0]);
  // Time alone turns a silent cluster Offline: its cached rows must not hide that.
  clock.now += 10 * 60_000;
  status.disconnected('edge-1', 's-edge-1', 'gone');
  clock.now += 10 * 60_000;
  assert.deepEqual(order(status.deploymentsBytes({ cluster: 'edge-1' })), [
    'app/edge-1/Offline',
    'db/edge-1/Offline',
  ]);
});
