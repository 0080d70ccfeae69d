// Health facts per bundle: the commit and digest they are about, how late and redelivered
// events fold, records written before the fields existed, and "healthy at the applied
// content" for a commit that changed nothing on a cluster.
import assert from 'node:assert/strict';
import test from 'node:test';
import { createEvent, silentLogger } from '@flotilla/common';
import { FleetStatus } from './fleet-status.js';
import { healthyAtApplied } from './health.js';
import type { ClusterRecord } from './model.js';
import { appliedEvent, healthEvent } from './testing.js';

const REV1 = '1111111111111111111111111111111111111111';
const REV2 = '2222222222222222222222222222222222222222';
const REV3 = '3333333333333333333333333333333333333333';
const at = (s: number) => new Date(Date.parse('2026-11-26T11:00:00Z') + s * 1000);

function fleet(revision: string, digest: string, status?: FleetStatus) {
  const s =
    status ??
    new FleetStatus({
      offlineAfterMs: 45_000,
      logger: silentLogger(),
      now: () => Date.parse('2026-11-26T12:00:00Z'),
    });
  s.setFleet([
    {
      name: 'edge-1',
      labels: {},
      desired: { revision, digest, bundles: [{ name: 'app', digest: `${digest}-app` }] },
    },
  ]);
  return s;
}

const hello = { cluster: 'edge-1', agentVersion: '', appliedDigest: '', appliedRevision: '' };

function app(status: FleetStatus) {
  const d = status.describe('edge-1');
  const dep = d?.deployments.find((x) => x.bundle === 'app');
  assert.ok(d && dep);
  return { cluster: d.cluster, dep, healthy: healthyAtApplied(dep, d.cluster) };
}

test('deployments-carry-the-revision-and-digest-of-their-health', () => {
  const status = fleet(REV1, 'sha256:d1');
  status.connected('edge-1', 's1', { ...hello, protocolVersion: 1 });
  status.foldEvent('applied', appliedEvent('edge-1', REV1, 'sha256:d1', { app: 'x' }, at(1)));
  status.foldEvent(
    'health-changed',
    healthEvent('edge-1', 'app', 'Ready', at(2), { revision: REV1, digest: 'sha256:d1' }),
  );
  const { dep, healthy } = app(status);
  assert.deepEqual(
    [dep.health, dep.healthRevision, dep.healthDigest, healthy],
    ['Ready', REV1, 'sha256:d1', true],
  );
});

test('a-late-health-event-about-other-content-does-not-replace-the-desired-one', () => {
  const status = fleet(REV2, 'sha256:d2');
  status.connected('edge-1', 's1', { ...hello, protocolVersion: 1 });
  status.foldEvent('applied', appliedEvent('edge-1', REV2, 'sha256:d2', { app: 'x' }, at(1)));
  status.foldEvent(
    'health-changed',
    healthEvent('edge-1', 'app', 'Progressing', at(2), { revision: REV2, digest: 'sha256:d2' }),
  );
  // An agent's previous instance still reporting the previous commit, with a later time.
  assert.equal(
    status.foldEvent(
      'health-changed',
      healthEvent('edge-1', 'app', 'Ready', at(3), { revision: REV1, digest: 'sha256:d1' }),
    ),
    'stale',
  );
  assert.deepEqual([app(status).dep.health, app(status).healthy], ['Progressing', false]);
  // The same content, later: wins; an earlier one (redelivered) does not.
  const ready = healthEvent('edge-1', 'app', 'Ready', at(4), {
    revision: REV2,
    digest: 'sha256:d2',
  });
  assert.equal(status.foldEvent('health-changed', ready), 'folded');
  assert.equal(status.foldEvent('health-changed', ready), 'folded', 'redelivery is idempotent');
  assert.equal(
    status.foldEvent(
      'health-changed',
      healthEvent('edge-1', 'app', 'Degraded', at(3), { revision: REV2, digest: 'sha256:d2' }),
    ),
    'stale',
  );
  assert.deepEqual([app(status).dep.health, app(status).healthy], ['Ready', true]);
});

test('health-of-the-next-commit-folds-before-its-applied-event', () => {
  const status = fleet(REV1, 'sha256:d1');
  status.connected('edge-1', 's1', { ...hello, protocolVersion: 1 });
  status.foldEvent('applied', appliedEvent('edge-1', REV1, 'sha256:d1', { app: 'x' }, at(1)));
  status.foldEvent(
    'health-changed',
    healthEvent('edge-1', 'app', 'Ready', at(2), { revision: REV1, digest: 'sha256:d1' }),
  );
  fleet(REV2, 'sha256:d2', status);
  assert.equal(app(status).cluster.state, 'Progressing');
  // The agent states health while it waits for its watches, before it reports the apply.
  status.foldEvent(
    'health-changed',
    healthEvent('edge-1', 'app', 'Ready', at(3), { revision: REV2, digest: 'sha256:d2' }),
  );
  assert.equal(app(status).healthy, false, 'about content the cluster has not applied yet');
  status.foldEvent('applied', appliedEvent('edge-1', REV2, 'sha256:d2', { app: 'y' }, at(4)));
  assert.equal(app(status).healthy, true);
});

test('a-commit-that-changes-nothing-is-healthy-through-the-earlier-commits-event', () => {
  const status = fleet(REV1, 'sha256:d1');
  status.connected('edge-1', 's1', { ...hello, protocolVersion: 1 });
  status.foldEvent('applied', appliedEvent('edge-1', REV1, 'sha256:d1', { app: 'x' }, at(1)));
  status.foldEvent(
    'health-changed',
    healthEvent('edge-1', 'app', 'Ready', at(2), { revision: REV1, digest: 'sha256:d1' }),
  );
  // REV3 renders the same content for edge-1: nothing is applied, no event follows.
  fleet(REV3, 'sha256:d1', status);
  const { cluster, dep, healthy } = app(status);
  assert.equal(cluster.appliedRevision, REV3);
  assert.equal(dep.healthRevision, REV1);
  assert.equal(healthy, true);
  // Another health event at REV1 still folds: it is about the desired content.
  assert.equal(
    status.foldEvent(
      'health-changed',
      healthEvent('edge-1', 'app', 'Degraded', at(5), { revision: REV1, digest: 'sha256:d1' }),
    ),
    'folded',
  );
  assert.equal(app(status).healthy, false);
});

test('health-without-a-digest-is-matched-by-commit', () => {
  const status = fleet(REV1, 'sha256:d1');
  status.connected('edge-1', 's1', { ...hello, protocolVersion: 1 });
  status.foldEvent('applied', appliedEvent('edge-1', REV1, 'sha256:d1', { app: 'x' }, at(1)));
  // An agent that predates digests, and one that predates revisions in health events.
  status.foldEvent('health-changed', healthEvent('edge-1', 'app', 'Ready', at(2)));
  assert.deepEqual([app(status).dep.healthRevision, app(status).healthy], ['', false]);
  status.foldEvent(
    'health-changed',
    healthEvent('edge-1', 'app', 'Ready', at(3), { revision: REV1 }),
  );
  assert.deepEqual([app(status).dep.healthDigest, app(status).healthy], ['', true]);
  // The older readers' field names still fold (no revision, health under `health`).
  status.foldEvent(
    'health-changed',
    createEvent('edge-1', 'health-changed', { bundle: 'app', health: 'Degraded' }, at(4)),
  );
  assert.deepEqual([app(status).dep.health, app(status).healthy], ['Degraded', false]);
});

test('records-written-before-health-revisions-load-and-fold', () => {
  // A persisted record as an older hub wrote it: facts without healthRevision/healthDigest.
  const old = JSON.parse(
    JSON.stringify({
      name: 'edge-1',
      labels: {},
      inFleet: true,
      desiredRevision: REV1,
      desiredDigest: 'sha256:d1',
      connected: false,
      session: '',
      lastSeenMs: Date.parse('2026-11-26T11:59:50Z'),
      appliedDigest: 'sha256:d1',
      appliedRevision: REV1,
      appliedAtMs: 1,
      lastAttempt: undefined,
      lastEventMs: 1,
      bundles: [],
      desiredBundles: [{ name: 'app', digest: 'sha256:d1-app' }],
      bundleFacts: {
        app: {
          drifted: 0,
          driftEvents: 0,
          lastDriftMs: 0,
          lastDriftId: '',
          health: 'Ready',
          lastHealthMs: at(1).getTime(),
          lastError: '',
          lastTransitionMs: 0,
        },
      },
    }),
  ) as ClusterRecord;
  const restored = new FleetStatus({
    offlineAfterMs: 45_000,
    logger: silentLogger(),
    now: () => Date.parse('2026-11-26T12:00:00Z'),
  });
  restored.restore([old]);
  assert.deepEqual(
    [app(restored).dep.health, app(restored).dep.healthRevision, app(restored).healthy],
    ['Ready', '', false],
  );
  restored.foldEvent(
    'health-changed',
    healthEvent('edge-1', 'app', 'Ready', at(2), { revision: REV1, digest: 'sha256:d1' }),
  );
  assert.equal(app(restored).healthy, true);
  assert.equal(restored.takeDirty()[0]?.bundleFacts?.app?.healthDigest, 'sha256:d1');
});
