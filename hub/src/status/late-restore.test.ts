// A restore of the saved status that finishes after the first render and the first
// sessions (the hub bounds its restore by a short window): what the saved records hold —
// apply results, drift counts — is kept, and what the live records learned since wins.
import assert from 'node:assert/strict';
import test from 'node:test';
import type { AppliedData, DriftDetectedData } from '@flotilla/common';
import { createEvent, silentLogger } from '@flotilla/common';
import type { Hello__Output } from '@flotilla/proto';
import { FleetStatus } from './fleet-status.js';
import type { ClusterRecord } from './model.js';

const REV = 'rev-2'.padEnd(40, '0');
const DIGEST = 'sha256:d2';
const T0 = 1_000_000;

function hub(now: { ms: number }): FleetStatus {
  const status = new FleetStatus({
    offlineAfterMs: 45_000,
    logger: silentLogger(),
    now: () => now.ms,
  });
  status.setFleet([
    {
      name: 'edge-1',
      labels: { env: 'prod' },
      desired: {
        revision: REV,
        digest: DIGEST,
        bundles: [{ name: 'app', digest: 'sha256:b1' }],
      },
    },
  ]);
  return status;
}

const hello = (appliedDigest: string, appliedRevision: string): Hello__Output => ({
  cluster: 'edge-1',
  agentVersion: 't',
  capabilities: null,
  appliedDigest,
  appliedRevision,
  protocolVersion: 1,
  sentAtMs: 0,
});

function applied(atMs: number) {
  const data: AppliedData = {
    revision: REV,
    digest: DIGEST,
    generation: 1,
    result: 'applied',
    durationMs: 5,
    bundles: [
      {
        name: 'app',
        digest: 'sha256:b1',
        created: 0,
        configured: 2,
        unchanged: 0,
        deleted: 0,
        failed: 0,
        failures: [],
      },
    ],
  };
  return createEvent('edge-1', 'applied', data, new Date(atMs));
}

function drift(object: string, atMs: number) {
  const data: DriftDetectedData = {
    bundle: 'app',
    revision: REV,
    object: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'app', name: object },
    deleted: false,
    changes: [{ path: '/data/x', old: 'a', new: 'b' }],
    manager: 'kubectl-edit',
    mode: 'warn',
    heals: 0,
    fight: false,
  };
  return createEvent('edge-1', 'drift-detected', data, new Date(atMs));
}

const driftEvents = (s: FleetStatus): number =>
  s.deployments({ cluster: 'edge-1' }).reduce((n, d) => n + d.driftEvents, 0);

test('a-restore-finishing-after-the-first-render-and-sessions-keeps-the-saved-drift-counts-and-apply', () => {
  const now = { ms: T0 };
  const before = hub(now);
  before.connected('edge-1', 's1', hello('', ''));
  before.foldEvent('applied', applied(T0 + 10));
  before.foldEvent('drift-detected', drift('a', T0 + 20));
  before.foldEvent('drift-detected', drift('b', T0 + 30));
  assert.equal(driftEvents(before), 2);
  // What the KV bucket holds is the record as JSON.
  const saved = JSON.parse(JSON.stringify(before.takeDirty())) as ClusterRecord[];

  // The restarted replica renders and takes the agent back before its restore is read.
  now.ms = T0 + 60_000;
  const after = hub(now);
  after.connected('edge-1', 's2', hello(DIGEST, REV));
  after.restore(saved);

  assert.equal(driftEvents(after), 2, 'drift detections counted before the restart');
  const c = after.get('edge-1');
  assert.equal(c?.connected, true, 'the live session wins over the saved "not connected"');
  assert.equal(c?.appliedRevision, REV);
  assert.equal(c?.state, 'Ready');
  assert.deepEqual(
    c?.bundles.map((b) => [b.name, b.configured]),
    [['app', 2]],
    'the last apply result comes from the saved record',
  );
  // A redelivered event the saved record already holds is not counted again.
  after.foldEvent('drift-detected', drift('b', T0 + 30));
  assert.equal(driftEvents(after), 2);
  // The merged record is saved again by whoever persists.
  assert.ok(
    after.takeDirty().some((r) => r.name === 'edge-1' && r.bundleFacts?.app?.driftEvents === 2),
  );
});

test('a-restore-before-anything-else-loads-the-saved-records-as-they-are', () => {
  const now = { ms: T0 };
  const before = hub(now);
  before.foldEvent('applied', applied(T0 + 10));
  before.foldEvent('drift-detected', drift('a', T0 + 20));
  const saved = JSON.parse(JSON.stringify(before.takeDirty())) as ClusterRecord[];
  const after = new FleetStatus({
    offlineAfterMs: 45_000,
    logger: silentLogger(),
    now: () => now.ms,
  });
  after.restore(saved);
  assert.equal(driftEvents(after), 1);
  assert.equal(after.get('edge-1')?.connected, false);
  assert.equal(after.get('edge-1')?.appliedRevision, REV);
});
